"""The user's application database: a SQLAlchemy engine plus one outcome row per workflow transaction.

The outcome row commits in the same transaction as the user's writes, so a transaction that
committed is never applied again: a replay finds its row. SQLAlchemy Core only; this feature's SQL
lives here, and so does the mapping of driver errors to "retry" (conflict, outage) or "user error".
Must not import the engine or the facade.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import psycopg
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    bindparam,
    create_engine,
    event,
    select,
    text,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.schema import CreateSchema

from transact._lib.backoff import Backoff
from transact._lib.urls import POSTGRES_PREFIXES, Kind, redact
from transact.storage.errors import Unavailable, first_line
from transact.storage.postgres import _MIGRATION_LOCK

__all__ = ["AppDatabase", "AppOutcome", "OutcomeTable", "classify", "dialect_of", "redact", "sqlalchemy_url"]

log = logging.getLogger("transact.storage")

PG_SCHEMA = "transact"
PG_TABLE = "transaction_outputs"
SQLITE_TABLE = "transact_transaction_outputs"  # SQLite has no schemas: a prefix keeps it apart
SQLITE_BUSY_TIMEOUT_S = 30.0

Retry = Literal["conflict", "outage"]
# 40001 serialization_failure, 40P01 deadlock_detected: the transaction was rolled back, run it again.
_PG_CONFLICT = frozenset({"40001", "40P01"})
# Server going away (admin/crash shutdown, not accepting connections yet).
_PG_OUTAGE = frozenset({"57P01", "57P02", "57P03"})


@dataclass(frozen=True, slots=True)
class AppOutcome:
    """What a workflow transaction recorded: pickled output, or pickled error."""

    function_name: str
    output: bytes | None
    error: bytes | None


def sqlalchemy_url(url: str) -> str:
    """Postgres URLs use the psycopg 3 dialect (the driver Transact ships with); SQLite as given."""
    if url.startswith(POSTGRES_PREFIXES):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def _outcomes_table(name: str, schema: str | None) -> Table:
    return Table(
        name,
        MetaData(schema=schema),
        Column("workflow_id", Text, primary_key=True),
        Column("function_id", Integer, primary_key=True),
        Column("function_name", Text, nullable=False),
        Column("output", LargeBinary, nullable=True),
        Column("error", LargeBinary, nullable=True),
        Column("created_at", BigInteger, nullable=False),
    )


def _sqlite_engine(url: str, pool_size: int, extra: dict[str, Any]) -> Engine:
    options: dict[str, Any] = {
        "pool_size": pool_size,
        "max_overflow": 0,
        "connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_S},
    }
    engine = create_engine(url, **{**options, **extra})
    sqlite_events(engine)
    return engine


def sqlite_events(engine: Engine) -> None:
    """WAL and ``BEGIN IMMEDIATE`` on every connection of a SQLite engine (sync, or an async engine's
    ``sync_engine``)."""
    event.listen(engine, "connect", _sqlite_connect)
    event.listen(engine, "begin", _sqlite_begin)


def _postgres_engine(url: str, pool_size: int, extra: dict[str, Any]) -> Engine:
    # No pool_pre_ping: it would cost a round trip per transaction. A connection dropped by a
    # server restart fails as an "outage", which the engine retries where that is safe.
    options: dict[str, Any] = {"pool_size": pool_size, "max_overflow": 0, "connect_args": {"connect_timeout": 10}}
    return create_engine(url, **{**options, **extra})


def _no_prelude(conn: Connection, schema: str | None) -> None:
    """SQLite: BEGIN IMMEDIATE (see _sqlite_begin) already serializes concurrent launches."""


def _postgres_prelude(conn: Connection, schema: str | None) -> None:
    # The system database's migration lock: when the application database *is* the system
    # database, both migrations create schema "transact" and must not race.
    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK})
    if schema is not None:
        conn.execute(CreateSchema(schema, if_not_exists=True))


@dataclass(frozen=True)
class _Kind:
    """What the outcome table does differently per kind of application database."""

    insert: Callable[[Table], Any]  # the dialect's INSERT, which knows ON CONFLICT DO NOTHING
    engine: Callable[[str, int, dict[str, Any]], Engine]
    # Isolation level per transaction (Postgres: psycopg puts it in its BEGIN). False: the
    # database is always serializable (SQLite) and ignores the level.
    levels: bool
    prelude: Callable[[Connection, str | None], None]  # runs first in the migration transaction
    table: Callable[[str | None, str | None], Table]  # the outcome table for (table_name, schema)
    async_options: dict[str, Any]  # create_async_engine options of this kind
    async_setup: Callable[[Engine], None]  # on an async engine's sync_engine


def _sqlite_table(table_name: str | None, schema: str | None) -> Table:
    # No schemas in SQLite: a name prefix keeps the table apart.
    return _outcomes_table(f"transact_{table_name}" if table_name else SQLITE_TABLE, None)


def _postgres_table(table_name: str | None, schema: str | None) -> Table:
    return _outcomes_table(table_name or PG_TABLE, schema or PG_SCHEMA)


def _nothing(engine: Engine) -> None:
    pass


_KINDS: dict[Kind, _Kind] = {
    "sqlite": _Kind(
        sqlite_insert,
        _sqlite_engine,
        False,
        _no_prelude,
        _sqlite_table,
        {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_S}},
        sqlite_events,
    ),
    "postgres": _Kind(pg_insert, _postgres_engine, True, _postgres_prelude, _postgres_table, {}, _nothing),
}


def kind_of(dialect: Kind) -> _Kind:
    return _KINDS[dialect]


def dialect_of(backend_name: str) -> Kind | None:
    """``sqlite`` or ``postgres`` for a SQLAlchemy backend name; None for any other database."""
    if backend_name == "sqlite":
        return "sqlite"
    if backend_name == "postgresql":
        return "postgres"
    return None


class OutcomeTable:
    """The outcome table of one application database and its two statements (shared by the sync and
    the asyncio database). ``table_name``/``schema`` default to the ``@DBOS.transaction`` table;
    SQLite has no schemas, so there the schema becomes a name prefix."""

    def __init__(self, dialect: Kind, *, table_name: str | None = None, schema: str | None = None) -> None:
        self.kind = _KINDS[dialect]
        self.table = self.kind.table(table_name, schema)
        c = self.table.c
        key = (c.workflow_id == bindparam("wid")) & (c.function_id == bindparam("fid"))
        self.select = select(c.function_name, c.output, c.error).where(key)
        # RETURNING says whether the row went in (rowcount is not reliable for INSERT through SQLAlchemy).
        self.insert = (
            self.kind.insert(self.table)
            .on_conflict_do_nothing(index_elements=["workflow_id", "function_id"])
            .returning(c.function_id)
        )

    def create(self, conn: Connection, create: bool) -> bool:
        """Create the table (``create``) or only look for it; returns whether it exists."""
        if not create:
            return sa_inspect(conn).has_table(self.table.name, schema=self.table.schema)
        self.kind.prelude(conn, self.table.schema)
        self.table.create(conn, checkfirst=True)
        return True


def outcome_row(
    workflow_id: str, function_id: int, function_name: str, output: bytes | None, error: bytes | None, now: int
) -> dict[str, Any]:
    return {
        "workflow_id": workflow_id,
        "function_id": function_id,
        "function_name": function_name,
        "output": output,
        "error": error,
        "created_at": now,
    }


class AppDatabase:
    """An engine on the application database and the outcome table in it.

    SQLite runs every transaction as ``BEGIN IMMEDIATE`` (the write lock is taken up front, so two
    writers queue on the busy timeout instead of failing to upgrade a read lock); SQLite is always
    serializable, so the isolation level is ignored there. Postgres gets the level per transaction
    (psycopg puts it in its BEGIN: no extra round trip).

    ``engine``: the caller's own engine (used as is, never disposed here); ``engine_kwargs`` are
    passed to ``create_engine`` over the defaults; ``table_name``/``schema`` place the outcome table."""

    def __init__(
        self,
        url: str | None = None,
        *,
        pool_size: int = 10,
        engine: Engine | None = None,
        engine_kwargs: dict[str, Any] | None = None,
        table_name: str | None = None,
        schema: str | None = None,
    ) -> None:
        self._owns_engine = engine is None
        if engine is not None:
            self.url = engine.url.render_as_string(hide_password=True)
            self.dialect: Kind = dialect_of(engine.url.get_backend_name()) or "postgres"
        else:
            if url is None:
                raise ValueError("AppDatabase needs a url or an engine")
            self.url = sqlalchemy_url(url)
            self.dialect = "sqlite" if self.url.startswith("sqlite") else "postgres"
        self.outcomes = outcomes = OutcomeTable(self.dialect, table_name=table_name, schema=schema)
        self._kind = kind = outcomes.kind
        self.engine: Engine = engine if engine is not None else kind.engine(self.url, pool_size, engine_kwargs or {})
        self.table = outcomes.table
        self._by_level: dict[str, Engine] = {}
        self._select = outcomes.select
        self._insert = outcomes.insert

    # -- transactions ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def transaction(self, isolation_level: str) -> Iterator[Connection]:
        """One transaction on a pooled connection: committed on exit, rolled back on an exception."""
        engine = self.engine
        if self._kind.levels:
            engine = self._by_level.get(isolation_level) or self._level(isolation_level)
        with engine.connect() as conn, conn.begin():
            yield conn

    def _level(self, isolation_level: str) -> Engine:
        engine = self.engine.execution_options(isolation_level=isolation_level)
        self._by_level[isolation_level] = engine
        return engine

    # -- outcome rows ---------------------------------------------------------------------------
    def outcome_get(self, conn: Connection, *, workflow_id: str, function_id: int) -> AppOutcome | None:
        """The recorded outcome, read inside the caller's transaction. Round trips: 1."""
        row = conn.execute(self._select, {"wid": workflow_id, "fid": function_id}).first()
        return AppOutcome(str(row[0]), row[1], row[2]) if row is not None else None

    def outcome_insert(
        self,
        conn: Connection,
        *,
        workflow_id: str,
        function_id: int,
        function_name: str,
        output: bytes | None,
        error: bytes | None,
        now: int,
    ) -> bool:
        """Record an outcome in the caller's transaction. False: one is already recorded (the caller
        must roll back and use it). Round trips: 1 — the whole bookkeeping cost of a transaction."""
        result = conn.execute(self._insert, outcome_row(workflow_id, function_id, function_name, output, error, now))
        return result.first() is not None

    def outcome_record(
        self, *, workflow_id: str, function_id: int, function_name: str, error: bytes, now: int
    ) -> AppOutcome | None:
        """Record a failed transaction's error in a small transaction of its own (the user's writes
        were rolled back). Returns the outcome recorded earlier instead, if there is one."""
        with self.engine.connect() as conn, conn.begin():
            if self.outcome_insert(
                conn,
                workflow_id=workflow_id,
                function_id=function_id,
                function_name=function_name,
                output=None,
                error=error,
                now=now,
            ):
                return None
            return self.outcome_get(conn, workflow_id=workflow_id, function_id=function_id)

    # -- schema ---------------------------------------------------------------------------------
    def migrate(self, *, retry_timeout_s: float | None = None, create: bool = True) -> bool:
        """Create the outcome table if missing; safe when several processes launch at once. With
        ``create`` off (``run_migrations=False``) only look: returns whether the table exists.

        Outages are retried with back-off (forever when ``retry_timeout_s`` is None, like the system
        database); other errors (bad password, missing database) raise ``Unavailable`` at once."""
        found = True

        def attempt() -> None:
            nonlocal found
            with self.engine.connect() as conn, conn.begin():
                found = self.outcomes.create(conn, create)

        backoff = Backoff(initial=0.05, cap=2.0, budget_s=retry_timeout_s)
        while True:
            try:
                attempt()
                return found
            except Exception as exc:
                if classify(exc) is None or _refused(exc) or not backoff.wait():
                    raise Unavailable(f"{type(exc).__name__}: {first_line(exc, type(exc).__name__)}") from exc
                if backoff.should_log():
                    log.warning(
                        "application database unavailable (%s); retrying (attempt %d)",
                        first_line(exc, type(exc).__name__),
                        backoff.attempts,
                    )

    def reset_outcomes(self) -> None:
        """Delete every outcome row (tests)."""
        with self.engine.connect() as conn, conn.begin():
            conn.execute(self.table.delete())

    def close(self) -> None:
        """Close pooled connections (of an engine made here; a caller's engine is the caller's). The
        engine stays usable: a straggling workflow that finishes during shutdown opens a fresh
        connection rather than failing."""
        if self._owns_engine:
            self.engine.dispose()


def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event issue BEGIN IMMEDIATE instead of sqlite3's implicit BEGIN.
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    try:
        # WAL: readers never block the writer. synchronous stays at SQLite's default (FULL): the
        # application commit is on disk before the system database records the step, so even a power
        # loss cannot leave a recorded step whose writes are gone.
        cursor.execute("PRAGMA journal_mode=WAL")
    finally:
        cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


# -- error mapping ------------------------------------------------------------------------------
def classify(exc: BaseException) -> Retry | None:
    """Why a transaction failed, looking through wrapped causes: ``"conflict"`` (serialization
    failure, deadlock, SQLite locked: rolled back, safe to run again), ``"outage"`` (the connection
    failed; a commit may or may not have happened) or None (the user's error)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        kind = _classify_one(current)
        if kind is not None:
            return kind
        orig = getattr(current, "orig", None) if isinstance(current, sa_exc.DBAPIError) else None
        if isinstance(orig, BaseException) and id(orig) not in seen:
            current = orig
        else:
            current = current.__cause__ or current.__context__
    return None


def _classify_one(exc: BaseException) -> Retry | None:
    if isinstance(exc, sa_exc.TimeoutError):
        return "outage"  # no pooled connection came free in time: nothing was run
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return "outage"
    if isinstance(exc, sqlite3.OperationalError):
        message = str(exc).lower()
        if "locked" in message or "busy" in message:
            return "conflict"
        if "disk i/o" in message:
            return "outage"
        return None
    if isinstance(exc, psycopg.Error):
        state = exc.sqlstate
        if state in _PG_CONFLICT:
            return "conflict"
        if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError) and (
            state is None or state.startswith("08") or state in _PG_OUTAGE
        ):
            return "outage"
    return None


# A server that answers FATAL for these reasons may accept us in a moment; any other FATAL at connect
# (unknown database or role, failed authentication) will not get better by retrying.
_TRANSIENT_FATAL = ("starting up", "shutting down", "in recovery", "not yet accepting", "too many", "connection slots")


def _refused(exc: BaseException) -> bool:
    """The server was reached and refused the connection for good (psycopg gives no SQLSTATE here)."""
    message = str(getattr(exc, "orig", None) or exc)
    return "FATAL:" in message and not any(marker in message for marker in _TRANSIENT_FATAL)
