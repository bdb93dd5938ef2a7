"""The transactional outbox: a workflow row or a message written through the caller's own open
connection on the system database, so it commits or rolls back together with the caller's rows.

Accepted connections: a ``sqlite3.Connection``, a psycopg 3 ``Connection``, a SQLAlchemy
``Connection`` or ``Session`` (on either database). Rules every write keeps:

- The connection must be on this store's database (SQLite: the same file; Postgres: the same
  database, with the ``transact`` schema in it) and inside a transaction, or about to open one
  implicitly (a connection in autocommit mode with no open transaction is refused: the write
  would commit on its own). It is checked before anything is written.
- Statements never fail inside the caller's transaction on a duplicate: inserts ignore conflicts
  and the miss is explained by a read, so a refused write leaves the caller's transaction usable
  (a Postgres error would abort it).
- Nothing is hinted: the rows are invisible until the caller commits. Postgres wakes other
  processes from the tables' triggers, whose NOTIFY is delivered at commit (never on rollback);
  SQLite processes see the commit through their ``data_version`` poll.

Must not import the engine or the facade.
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import psycopg
from psycopg import pq

from transact.storage._base import DriverBase
from transact.storage.errors import Conflict, NotFound, StorageError
from transact.storage.rows import WORKFLOW_COLUMN_COUNT, WORKFLOW_COLUMNS, WorkflowRow
from transact.storage.workflows import to_workflow, workflow_values

try:
    from sqlalchemy.engine import Connection as _SaConnection
    from sqlalchemy.ext.asyncio import AsyncConnection as _SaAsyncConnection
    from sqlalchemy.ext.asyncio import AsyncSession as _SaAsyncSession
    from sqlalchemy.orm import Session as _SaSession
except ImportError:  # pragma: no cover - sqlalchemy is a dependency; kept optional for slim installs
    _SaConnection = _SaSession = _SaAsyncConnection = _SaAsyncSession = None  # type: ignore[assignment,misc]

T = TypeVar("T")

PG_SCHEMA = "transact"  # the schema of the system tables (the caller's search_path may not have it)

_ACCEPTED = "a sqlite3.Connection, a psycopg Connection, or a SQLAlchemy Connection or Session"


class BadConnection(StorageError):
    """The caller's connection cannot carry an outbox write (closed, another database, not in a
    transaction, an unsupported type); the message says which and what to do."""


class DedupConflict(Conflict):
    """The deduplication id is held by an active workflow: ``holder`` (as the caller's
    transaction sees it; None if it finished in between)."""

    def __init__(self, message: str, holder: str | None) -> None:
        super().__init__(message)
        self.holder = holder


def _insert_workflow(prefix: str) -> str:
    # No conflict target: a duplicate id and an active deduplication id are both ignored, then
    # told apart by a read (an error would abort the caller's Postgres transaction).
    marks = ", ".join("?" * WORKFLOW_COLUMN_COUNT)
    return f"INSERT INTO {prefix}workflow_status ({WORKFLOW_COLUMNS}) VALUES ({marks}) ON CONFLICT DO NOTHING"


def _select_workflow(prefix: str) -> str:
    return f"SELECT {WORKFLOW_COLUMNS} FROM {prefix}workflow_status WHERE workflow_id = ?"


def _send(prefix: str) -> str:
    return (
        f"INSERT INTO {prefix}notifications (destination_id, topic, message, idempotency_key, created_at) "
        f"SELECT ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM {prefix}workflow_status WHERE workflow_id = ?) "
        "ON CONFLICT DO NOTHING"
    )


def _exists(prefix: str) -> str:
    return f"SELECT 1 FROM {prefix}workflow_status WHERE workflow_id = ?"


def _holder(prefix: str) -> str:
    return (
        f"SELECT workflow_id FROM {prefix}workflow_status WHERE queue_name = ? AND deduplication_id = ?"
        " AND status IN ('ENQUEUED', 'PENDING', 'DELAYED')"
    )


_PREFIX = {"sqlite": "", "postgres": "{schema}."}  # the caller's search_path may not have the schema


@functools.cache
def _statements(dialect: str, schema: str) -> dict[str, str]:
    prefix = _PREFIX[dialect].format(schema=schema)
    return {
        "insert": _insert_workflow(prefix),
        "select": _select_workflow(prefix),
        "send": _send(prefix),
        "exists": _exists(prefix),
        "holder": _holder(prefix),
    }


def pg_identity(schema: str) -> str:
    """The caller's database, and whether it holds the system tables in ``schema``."""
    return f"SELECT current_database(), to_regclass('{schema}.workflow_status') IS NOT NULL"


# Our SQL is written with ``?`` placeholders (never a literal ? or %); psycopg wants %s.
_PLACEHOLDERS = {"sqlite": lambda sql: sql, "postgres": lambda sql: sql.replace("?", "%s")}


class CallerTx:
    """The caller's connection, speaking ``?`` SQL: run and read inside the caller's transaction."""

    def __init__(self, conn: Any, dialect: str, kind: str) -> None:
        self.conn = conn
        self.dialect = dialect
        self.kind = kind  # "sqlite3", "psycopg" or "sqlalchemy"

    def _execute(self, sql: str, params: Sequence[Any]) -> Any:
        sql = _PLACEHOLDERS[self.dialect](sql)
        if self.kind == "sqlalchemy":
            return self.conn.exec_driver_sql(sql, tuple(params))
        return self.conn.execute(sql, tuple(params))

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        return int(self._execute(sql, params).rowcount)

    def one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        row = self._execute(sql, params).fetchone()
        return tuple(row) if row is not None else None

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self._execute(sql, params).fetchall()]


def _bind(conn: Any, what: str) -> CallerTx:
    """Wrap the caller's connection, refusing one that is closed, in autocommit mode outside a
    transaction, or of an unsupported type."""
    if _SaSession is not None and isinstance(conn, _SaSession):
        conn = conn.connection()  # the session's connection, in the session's transaction
    if _SaConnection is not None and isinstance(conn, _SaConnection):
        if conn.closed or conn.invalidated:
            raise BadConnection(f"{what}: the SQLAlchemy connection is closed; pass an open connection")
        name = conn.dialect.name
        if name not in ("sqlite", "postgresql"):
            raise BadConnection(f"{what}: a {name} connection cannot reach the system database (SQLite or Postgres)")
        level = conn.get_execution_options().get("isolation_level")
        if level == "AUTOCOMMIT" and not conn.in_transaction():
            raise BadConnection(f"{what}: the connection is in AUTOCOMMIT mode; the write would commit on its own")
        return CallerTx(conn, "postgres" if name == "postgresql" else "sqlite", "sqlalchemy")
    if isinstance(conn, sqlite3.Connection):
        try:
            in_tx = conn.in_transaction
        except sqlite3.ProgrammingError:
            raise BadConnection(f"{what}: the sqlite3 connection is closed; pass an open connection") from None
        if getattr(conn, "autocommit", False) is True or (conn.isolation_level is None and not in_tx):
            raise BadConnection(
                f"{what}: the sqlite3 connection is in autocommit mode outside a transaction, so the write would "
                "commit on its own; run BEGIN first or use the default isolation_level"
            )
        return CallerTx(conn, "sqlite", "sqlite3")
    if isinstance(conn, _AsyncPsycopg):
        _check_psycopg(conn.conn, what)
        return CallerTx(conn, "postgres", "psycopg-async")
    if isinstance(conn, psycopg.Connection):
        _check_psycopg(conn, what)
        return CallerTx(conn, "postgres", "psycopg")
    raise BadConnection(f"{what}: the connection must be {_ACCEPTED}, got {type(conn).__name__}")


def _check_psycopg(conn: psycopg.Connection[Any] | psycopg.AsyncConnection[Any], what: str) -> None:
    if conn.closed:
        raise BadConnection(f"{what}: the psycopg connection is closed; pass an open connection")
    status = conn.info.transaction_status
    if status == pq.TransactionStatus.INERROR:
        raise BadConnection(f"{what}: the psycopg connection's transaction has failed; roll it back first")
    if conn.autocommit and status == pq.TransactionStatus.IDLE:
        raise BadConnection(
            f"{what}: the psycopg connection is in autocommit mode outside a transaction, so the write would "
            "commit on its own; use `async with conn.transaction():` / `with conn.transaction():` or autocommit=False"
        )


class _Result:
    """A finished statement of the async bridge: what CallerTx reads of a cursor."""

    def __init__(self, rowcount: int, rows: list[Any]) -> None:
        self.rowcount, self._rows = rowcount, rows

    def fetchone(self) -> Any:
        return self._rows[0] if self._rows else None

    def fetchall(self) -> list[Any]:
        return self._rows


class _AsyncPsycopg:
    """A psycopg ``AsyncConnection`` seen from a worker thread: each statement runs on the
    connection's own event loop (which is free: its coroutine awaits this thread)."""

    def __init__(self, conn: psycopg.AsyncConnection[Any], loop: asyncio.AbstractEventLoop) -> None:
        self.conn, self.loop = conn, loop

    def execute(self, sql: str, params: tuple[Any, ...]) -> _Result:
        async def run() -> _Result:
            cur = await self.conn.execute(sql, params)
            rows = await cur.fetchall() if cur.description is not None else []
            return _Result(cur.rowcount, list(rows))

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result()


async def on_caller_async(conn: Any, fn: Callable[[Any], T], what: str) -> T:
    """Run ``fn`` (sync outbox work taking the caller's connection) on an async connection, in the
    caller's transaction: a SQLAlchemy ``AsyncConnection`` / ``AsyncSession`` through its
    ``run_sync``, a psycopg ``AsyncConnection`` from a worker thread bridged to its loop."""
    if _SaAsyncSession is not None and isinstance(conn, _SaAsyncSession | _SaAsyncConnection):
        return await conn.run_sync(fn)
    if isinstance(conn, psycopg.AsyncConnection):
        return await asyncio.to_thread(fn, _AsyncPsycopg(conn, asyncio.get_running_loop()))
    raise BadConnection(
        f"{what}: the connection must be a SQLAlchemy AsyncConnection or AsyncSession or a psycopg AsyncConnection, "
        f"got {type(conn).__name__} (use the synchronous form for a synchronous connection)"
    )


class OutboxSql(DriverBase):
    """``OutboxStore`` in SQL: the same rows the store writes, through the caller's connection."""

    def _caller(self, conn: Any, what: str) -> CallerTx:
        tx = _bind(conn, what)
        if tx.dialect != self.dialect:
            raise BadConnection(
                f"{what}: the connection is to a {tx.dialect} database; the system database is {self.dialect}"
            )
        self._outbox_same_database(tx, what)
        return tx

    _pg_schema = PG_SCHEMA  # the Postgres driver sets its configured schema

    def _outbox_same_database(self, tx: CallerTx, what: str) -> None:
        """Raise BadConnection unless ``tx`` is on this store's database (each driver checks its way)."""
        raise NotImplementedError

    def outbox_workflow_insert(self, conn: Any, row: WorkflowRow, *, what: str) -> tuple[WorkflowRow, bool]:
        tx = self._caller(conn, what)
        sql = _statements(tx.dialect, self._pg_schema)
        if tx.run(sql["insert"], workflow_values(row)) == 1:
            return row, True
        existing = tx.one(sql["select"], (row.workflow_id,))
        if existing is not None:
            return to_workflow(existing), False
        holder = tx.one(sql["holder"], (row.queue_name, row.deduplication_id))
        raise DedupConflict(
            f"deduplication id {row.deduplication_id!r} is active on queue {row.queue_name!r}",
            None if holder is None else str(holder[0]),
        )

    def outbox_message_send(
        self,
        conn: Any,
        *,
        destination_id: str,
        topic: str,
        message: bytes,
        idempotency_key: str | None,
        now: int,
        what: str,
    ) -> bool:
        tx = self._caller(conn, what)
        sql = _statements(tx.dialect, self._pg_schema)
        params = (destination_id, topic, message, idempotency_key, now, destination_id)
        if tx.run(sql["send"], params) == 1:
            return True
        if tx.one(sql["exists"], (destination_id,)) is None:
            raise NotFound(f"workflow {destination_id!r} does not exist")
        return False  # the idempotency key was used already
