"""The driver contract: connection primitives, retry on outages, hints, migrations.

Every SQL-speaking mixin builds on ``DriverBase``; the concrete drivers (sqlite.py, postgres.py)
implement the few abstract primitives and supply their dialect's statements as ``sql``
(``DialectSql``: sqlite_sql.py, postgres_sql.py). Must not import the engine or the facade.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from importlib import resources
from typing import Any, ClassVar, Protocol, TypeVar

from transact._lib.backoff import Backoff
from transact._lib.states import HintHandler
from transact.storage.dialect import ONE_ID, DialectSql, SetForm
from transact.storage.errors import Misconfigured, Unavailable
from transact.storage.outage import OutageLog

T = TypeVar("T")
EXISTING = "SELECT workflow_id FROM workflow_status WHERE workflow_id{match}"  # {match}: _ids_match's
Params = Sequence[Any]


log = logging.getLogger("transact.storage")


class Tx(Protocol):
    """One connection inside a read or write unit. SQL uses ``?`` placeholders on every driver."""

    def one(self, sql: str, params: Params = ()) -> tuple[Any, ...] | None: ...

    def all(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]: ...

    def run(self, sql: str, params: Params = ()) -> int: ...

    def texts(self, sql: str, params: Params = ()) -> list[tuple[str | None, ...]]:
        """The rows with every value as text (for text and integer columns; the caller knows
        their types). On Postgres one blocking call with the GIL released: bulk work beside a live
        workload (the collector) leaves the workload's threads the interpreter."""
        ...

    def many(self, sql: str, rows: Sequence[Params]) -> None: ...


class Session(Protocol):
    """A connection of its own for a long run of autocommit statements, with settings and locks
    (its setup statement's) that last until it closes; outages are retried on a new connection,
    whose setup runs again."""

    def open(self) -> bool:
        """Connect and run the setup; whether its answer (first value) granted the session."""
        ...

    def texts(self, sql: str, params: Params) -> list[tuple[str | None, ...]]:
        """One statement's rows, as ``Tx.texts``; raises ``Withdrawn`` when, after a reconnect,
        the setup no longer grants the session, and ``Cancelled`` (not retried) when the database
        cancels the statement."""
        ...

    def close(self) -> None: ...


class Withdrawn(Exception):
    """A session's setup no longer grants it after a reconnect (another process holds its lock)."""


def as_text(rows: Sequence[Sequence[Any]]) -> list[tuple[str | None, ...]]:
    """Rows as ``Tx.texts`` returns them, from rows of Python values."""
    return [tuple(None if v is None else str(v) for v in row) for row in rows]


class DriverBase(ABC):
    """Connection primitives every store method is written against."""

    dialect: ClassVar[str]  # the driver's name; equals ``sql.name``
    sql: ClassVar[DialectSql]  # the statements this database spells its own way
    url: str

    def __init__(self, *, retry_timeout_s: float | None = None) -> None:
        # None: retry outages forever (the engine must never strand work); a number: give up
        # with Unavailable after that long (clients and the CLI want a prompt, clear error).
        self.retry_timeout_s = retry_timeout_s
        self.group_commit = False  # drivers that batch concurrent checkpoint writes turn it on
        self.round_trips = 0  # every thread's round trips (bench: idle cost)
        self._thread_trips = threading.local()
        self._hint_handler: HintHandler | None = None
        self._closed = threading.Event()
        # Until the first connection succeeds, errors retrying cannot fix raise ``Misconfigured``.
        self._reached = False
        self.outage = OutageLog("(not opened)")  # drivers name their database once they know it

    # -- primitives ---------------------------------------------------------------------------
    @abstractmethod
    def _writer(self) -> AbstractContextManager[Tx]:
        """A multi-statement write transaction, committed on exit (SQLite: BEGIN IMMEDIATE)."""

    @abstractmethod
    def _map_error(self, exc: Exception) -> Exception | None:
        """Translate a driver exception; return an ``Unavailable`` for retryable ones."""

    @abstractmethod
    def close(self) -> None: ...

    def _session(self, setup: str, params: Params) -> Session:
        """A ``Session`` (not yet open) whose setup is ``setup`` with ``params``. Drivers whose
        dialect has a ``collector_session`` provide it."""
        raise NotImplementedError(f"the {self.dialect} driver has no sessions of its own")

    @abstractmethod
    def start_listening(self) -> None:
        """Start delivering hints from other processes to the hint handler."""

    @property
    def pushes_wakeups(self) -> bool:
        return self.sql.pushes_wakeups

    def count_round_trip(self) -> None:
        self.round_trips += 1
        self._thread_trips.n = getattr(self._thread_trips, "n", 0) + 1

    def thread_round_trips(self) -> int:
        """Round trips made by the calling thread (budget tests, unaffected by background services)."""
        n: int = getattr(self._thread_trips, "n", 0)
        return n

    # -- hints --------------------------------------------------------------------------------
    def set_hint_handler(self, handler: HintHandler | None) -> None:
        self._hint_handler = handler

    def note_own_finish(self, workflow_id: str, finishing: bool) -> None:
        """This process is writing the workflow's final state and hints it locally (``finishing``),
        or its write missed (not ``finishing``); a driver whose notifications echo back to the
        writer may skip that echo."""
        return None

    def hint(self, kind: str, ident: str, key: str = "") -> None:
        """Deliver a wake-up hint in this process (after a commit). Tables stay the truth."""
        handler = self._hint_handler
        if handler is not None:
            handler(kind, ident, key)

    # -- retrying units -----------------------------------------------------------------------
    def read(self, fn: Callable[[Tx], T]) -> T:
        try:
            return self._single(fn)  # the hot path: no retry machinery until an outage happens
        except Misconfigured:
            raise
        except Unavailable:
            return self._retrying(lambda: self._single(fn))

    def write(self, fn: Callable[[Tx], T], *, single: bool = False) -> T:
        """A write unit. ``single``: ``fn`` makes one write statement (plus reads on its miss path),
        atomic on its own, so no explicit transaction is needed."""
        if single:
            return self.read(fn)
        return self._retrying(lambda: self._in(self._writer(), fn))

    def _ids_match(self, workflow_ids: Sequence[str]) -> tuple[str, object]:
        """A test of a workflow id column against these ids (written after the column) and its one
        parameter: one id as ``= ?`` (an equality's plan), more as the dialect's list parameter
        (any number: a statement of that many placeholders may exceed what the driver allows)."""
        if len(workflow_ids) == 1:
            return ONE_ID, workflow_ids[0]
        return self.sql.ids_match, self.sql.ids_param(workflow_ids)

    def _existing(self, tx: Tx, workflow_ids: Sequence[str]) -> set[str]:
        """Which of these workflows exist. Round trips: 1."""
        match, param = self._ids_match(workflow_ids)
        return {str(r[0]) for r in tx.all(EXISTING.format(match=match), (param,))}

    def _delete_owned(
        self,
        tx: Tx,
        workflow_ids: Sequence[str],
        statements: Sequence[str] | None = None,
        *,
        steps_of: Sequence[str] | None = None,
    ) -> None:
        """Inside the unit that deleted the listed workflows' rows, after that delete: delete what
        they own where no cascade does (``statements``: the dialect's ``owned_deletes`` unless
        given). ``steps_of``: for the steps table, these ids instead (a statement's last
        placeholder is the steps table's list)."""
        if workflow_ids:
            param = self.sql.ids_param(workflow_ids)
            steps = param if steps_of is None else self.sql.ids_param(steps_of)
            for statement in self.sql.owned_deletes if statements is None else statements:
                tx.run(statement, (param,) * (statement.count("?") - 1) + (steps,))

    def _sweep_owned(self, workflow_ids: Sequence[str], steps_of: Sequence[str] | None = None) -> None:
        """After the delete committed, the rows of the listed workflows that still have no
        workflow: a write whose existence check read a row just before its delete committed may
        land after it. ``steps_of``: sweep the steps of only these (a subset)."""
        if self.sql.owned_sweeps and workflow_ids:
            self.write(lambda tx: self._delete_owned(tx, workflow_ids, self.sql.owned_sweeps, steps_of=steps_of))

    def write_grouped(self, sql: str, params: Params, set_form: SetForm | None) -> int:
        """One self-contained single-row write statement (safe to retry: conflict-ignoring or
        fenced); returns its row count. Drivers may commit concurrent calls together (group
        commit), as one ``set_form`` statement where given (None: the dialect has none, the
        statement runs alone). Round trips: 1."""
        return self.write(lambda tx: tx.run(sql, params), single=True)

    @abstractmethod
    def _single(self, fn: Callable[[Tx], T]) -> T:
        """Run ``fn`` on a connection in autocommit mode (each statement commits by itself),
        mapping driver errors."""

    def _in(self, cm: AbstractContextManager[Tx], fn: Callable[[Tx], T]) -> T:
        try:
            with cm as tx:
                return fn(tx)
        except Exception as exc:
            mapped = self._map_error(exc)
            if mapped is None:
                raise
            raise mapped from exc

    def _retrying(self, attempt: Callable[[], T]) -> T:
        """Run ``attempt``, retrying outages with back-off until it succeeds, the store closes or
        ``retry_timeout_s`` (counted from the first attempt) runs out; then the last outage raises.
        No back-off state is built until an outage happens: this wraps every write transaction.
        ``Misconfigured`` raises at once. Outages are reported through ``self.outage`` (once per
        outage for the whole store), contention only when it persists."""
        started = time.monotonic()
        backoff: Backoff | None = None
        in_outage = False  # this call counts in self.outage
        while True:
            try:
                result = attempt()
            except Misconfigured:
                if in_outage:
                    self.outage.leave(reached=False)
                raise
            except Unavailable as exc:
                if backoff is None:
                    budget = self.retry_timeout_s
                    if budget is not None:
                        budget -= time.monotonic() - started
                    backoff = Backoff(initial=0.02, cap=2.0, budget_s=budget, cancel=self._closed)
                if exc.outage and not in_outage:
                    in_outage = True
                    self.outage.join(exc, self.retry_timeout_s)
                if self._closed.is_set() or not backoff.wait():
                    if in_outage:
                        self.outage.leave(reached=False)
                    raise
                if in_outage:
                    self.outage.tick(exc)
                elif backoff.attempts >= 10 and backoff.should_log():
                    log.warning("system database busy (%s); retrying (attempt %d)", exc, backoff.attempts)
                continue
            except BaseException:
                if in_outage:  # any other answer came from the database: the outage is over
                    self.outage.leave(reached=True)
                raise
            if in_outage:
                self.outage.leave(reached=True)
            return result

    # -- migrations ---------------------------------------------------------------------------
    def migration_scripts(self) -> Iterator[tuple[int, str]]:
        folder = resources.files("transact.storage").joinpath("migrations").joinpath(self.dialect)
        for entry in sorted(folder.iterdir(), key=lambda e: e.name):
            if entry.name.endswith(".sql"):
                yield int(entry.name.split("_", 1)[0]), entry.read_text(encoding="utf-8")

    def _apply_missing(self, query: Callable[[str, Params], list[Any]], run_script: Callable[[str], None]) -> int:
        """The migration step both drivers run inside their locked transaction: every version not
        in ``schema_version`` yet, not only those above the highest (migrations from parallel
        branches may land out of order). Returns the highest version installed."""
        query("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at BIGINT)", ())
        applied = {int(r[0]) for r in query("SELECT version FROM schema_version", ())}
        for version, script in self.migration_scripts():
            if version in applied:
                continue
            run_script(script)
            query("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)", (version, time.time_ns() // 10**6))
            applied.add(version)
        return max(applied, default=0)

    @abstractmethod
    def migrate(self) -> int:
        """Apply missing migrations under a lock; return the schema version now installed."""

    @abstractmethod
    def reset(self) -> None:
        """Drop every Transact table (tests and ``transact reset``)."""
