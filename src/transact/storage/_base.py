"""The driver contract: connection primitives, retry on outages, hints, migrations.

Every SQL-speaking mixin builds on ``DriverBase``; the concrete drivers (sqlite.py, postgres.py)
implement the few abstract primitives. Must not import the engine or the facade.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from importlib import resources
from typing import Any, Protocol, TypeVar

from transact.storage.errors import Unavailable

T = TypeVar("T")
Params = Sequence[Any]
HintHandler = Callable[[str, str, str], None]


@dataclass(frozen=True, slots=True, eq=False)  # module constants: identity is equality (cheap hash)
class SetForm:
    """The set form of a single-row write: one statement that writes many rows given as one JSON
    array of rows (its one ``?``; bytes hex-encoded, the SQL decodes them) and returns the key of
    every row it wrote. Group commit sends N concurrent calls of the row form as one execution of this
    (Postgres) instead of N statements; JSON because encoding it is one C call on the client.

    ``columns``: the row form's parameter positions, in the order of each JSON row's items;
    ``key``: the positions whose values make up a row's key; the set form's RETURNING yields
    them as ``k0, k1, ...`` (so several forms can share one statement).
    """

    sql: str
    columns: tuple[int, ...]
    key: tuple[int, ...]
    blobs: tuple[int, ...] = ()  # positions that may hold bytes (large ones go alone, as binary)
    lane: str = "checkpoints"  # forms in one lane share batches; lanes commit independently


log = logging.getLogger("transact.storage")


class Tx(Protocol):
    """One connection inside a read or write unit. SQL uses ``?`` placeholders on every driver."""

    def one(self, sql: str, params: Params = ()) -> tuple[Any, ...] | None: ...

    def all(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]: ...

    def run(self, sql: str, params: Params = ()) -> int: ...

    def many(self, sql: str, rows: Sequence[Params]) -> None: ...


class DriverBase(ABC):
    """Connection primitives every store method is written against."""

    dialect: str
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

    # -- primitives ---------------------------------------------------------------------------
    @abstractmethod
    def _writer(self) -> AbstractContextManager[Tx]:
        """A multi-statement write transaction, committed on exit (SQLite: BEGIN IMMEDIATE)."""

    @abstractmethod
    def _map_error(self, exc: Exception) -> Exception | None:
        """Translate a driver exception; return an ``Unavailable`` for retryable ones."""

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def start_listening(self) -> None:
        """Start delivering hints from other processes to the hint handler."""

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
        except Unavailable:
            return self._retrying(lambda: self._single(fn))

    def write(self, fn: Callable[[Tx], T], *, single: bool = False) -> T:
        """A write unit. ``single``: ``fn`` makes one write statement (plus reads on its miss path),
        atomic on its own, so no explicit transaction is needed."""
        if single:
            return self.read(fn)
        return self._retrying(lambda: self._in(self._writer(), fn))

    def write_grouped(self, sql: str, params: Params, set_form: SetForm) -> int:
        """One self-contained single-row write statement (safe to retry: conflict-ignoring or
        fenced); returns its row count. Drivers may commit concurrent calls together (group
        commit), as one ``set_form`` statement where given. Round trips: 1."""
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
        started = time.monotonic()
        delay = 0.02
        tries = 0
        while True:
            try:
                return attempt()
            except Unavailable as exc:
                tries += 1
                waited = time.monotonic() - started
                if self._closed.is_set() or (self.retry_timeout_s is not None and waited >= self.retry_timeout_s):
                    raise
                if tries in (1, 10) or tries % 50 == 0:
                    log.warning("system database unavailable (%s); retrying (attempt %d)", exc, tries)
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 2.0)

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
