"""The lean statement path for Postgres: one blocking libpq call per statement.

psycopg's ``execute`` drives libpq without blocking, from Python: a statement costs several
generator steps and GIL hand-offs, more client CPU than the network calls themselves (bench/
measures it). The hot writes (start, checkpoint, finish) and every row-count statement go
through psycopg's own low-level ``pq`` wrapper instead: ``PQexecPrepared`` with the GIL released,
prepared once per connection with the parameter types inferred by the server, values sent as text
(bytes as binary). Whatever this path cannot encode goes through psycopg.

Must not import the engine or the facade.
"""

from __future__ import annotations

import contextlib
import itertools
import weakref
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg import pq
from psycopg.pq.abc import PGresult

from transact._lib.states import Hint, Status

_OK = (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK)
_TEXT, _BINARY = 0, 1

# Statement names prepared on each connection (a connection the pool replaces starts afresh).
_names = itertools.count()
_prepared: weakref.WeakKeyDictionary[Any, dict[str, bytes]] = weakref.WeakKeyDictionary()
_dollar: dict[str, bytes] = {}


def _numbered(sql: str) -> bytes:
    """``?`` placeholders (our SQL never holds a literal ?) as libpq's ``$1, $2, ...``."""
    out = _dollar.get(sql)
    if out is None:
        parts = sql.split("?")
        text = parts[0] + "".join(f"${n}{part}" for n, part in enumerate(parts[1:], start=1))
        out = _dollar[sql] = text.encode()
    return out


def _int(value: int) -> bytes:
    return str(value).encode()


def _bool(value: bool) -> bytes:
    return b"t" if value else b"f"


def _same(value: bytes) -> bytes:
    return value


def _null(value: None) -> None:
    return None


# Text format for everything but bytes (binary): the server parses text by the inferred type.
# Status and Hint members are str: the engine passes them as they are, so they take the lean path too.
_ENCODERS: dict[type, Any] = {
    str: str.encode,
    Status: str.encode,
    Hint: str.encode,
    int: _int,
    bytes: _same,
    bool: _bool,
    type(None): _null,
}


def encode(params: Sequence[Any]) -> tuple[list[bytes | None], list[int]] | None:
    """Parameter values and formats for libpq, or None if a value needs psycopg's adapters."""
    try:
        values: list[bytes | None] = [_ENCODERS[type(value)](value) for value in params]
    except KeyError:
        return None
    return values, [_BINARY if type(value) is bytes else _TEXT for value in params]


def execute(conn: psycopg.Connection[Any], sql: str, encoded: tuple[list[bytes | None], list[int]]) -> PGresult:
    """Run one statement on ``conn`` (autocommit, not in a pipeline) and return its result, or
    raise the psycopg error psycopg itself would have raised."""
    pgconn = conn.pgconn
    names = _prepared.get(pgconn)
    if names is None:
        names = _prepared[pgconn] = {}
    name = names.get(sql)
    if name is None:
        name = f"transact_{next(_names)}".encode()  # never reused: a stale entry cannot name another statement
        _check(conn, pgconn.prepare(name, _numbered(sql), None))
        names[sql] = name
    values, formats = encoded
    try:
        return _check(conn, pgconn.exec_prepared(name, values, formats))  # type: ignore[arg-type]  # None = NULL
    except pg_errors.InvalidSqlStatementName:
        # psycopg sends DEALLOCATE ALL after a rollback on a connection where it prepared statements
        # of its own, which drops ours too: forget them all, then prepare again.
        names.clear()
        if pgconn.transaction_status == pq.TransactionStatus.IDLE:  # autocommit: nothing to undo
            return execute(conn, sql, encoded)
        # Inside a transaction the failure aborted it: the unit is retried whole, like after an outage.
        raise psycopg.OperationalError("prepared statements were deallocated; running the unit again") from None


def command(conn: psycopg.Connection[Any], sql: bytes) -> None:
    """Run a parameterless statement (``BEGIN``, ``COMMIT``...) in one blocking libpq call."""
    _check(conn, conn.pgconn.exec_(sql))


_OPEN = (pq.TransactionStatus.INTRANS, pq.TransactionStatus.INERROR)  # a transaction to end


@contextlib.contextmanager
def transaction(conn: psycopg.Connection[Any]) -> Iterator[None]:
    """A transaction on an autocommit connection: BEGIN, then COMMIT when the block ends, or
    ROLLBACK when it raises. psycopg's ``transaction()`` costs the client about as much again as a
    short unit's own statements (its commands are driven from Python, GIL hand-offs included);
    these are one libpq call each. No savepoints: a unit is never nested in another. A unit that
    swallowed a failed statement cannot commit (the server would roll back in COMMIT's place):
    that raises."""
    command(conn, b"BEGIN")
    try:
        yield
    except BaseException:
        if not conn.closed and conn.pgconn.transaction_status in _OPEN:
            with contextlib.suppress(Exception):
                command(conn, b"ROLLBACK")
        raise
    if conn.pgconn.transaction_status == pq.TransactionStatus.INERROR:
        command(conn, b"ROLLBACK")
        raise pg_errors.InFailedSqlTransaction("a statement of the transaction failed; it was rolled back")
    command(conn, b"COMMIT")


def rowcount(result: PGresult) -> int:
    status = result.command_tuples
    return int(status) if status is not None else -1


def text_rows(result: PGresult) -> list[tuple[str | None, ...]]:
    """The result's rows with every value as text (the caller knows the columns' types). Built a
    column at a time: a comprehension per column costs about half of a Python loop per value."""
    get, count = result.get_value, result.ntuples
    columns = [[None if (v := get(r, c)) is None else v.decode() for r in range(count)] for c in range(result.nfields)]
    return list(zip(*columns, strict=True))


def _check(conn: psycopg.Connection[Any], result: PGresult) -> PGresult:
    if result.status in _OK:
        return result
    if conn.pgconn.status != pq.ConnStatus.OK:  # the connection is gone: retryable, like psycopg's
        message = (result.error_message or conn.pgconn.error_message).decode(errors="replace").strip()
        raise psycopg.OperationalError(message or "the connection to the server was lost")
    if result.status == pq.ExecStatus.FATAL_ERROR:
        raise pg_errors.error_from_result(result, encoding=conn.info.encoding)
    raise psycopg.OperationalError(f"unexpected result status {result.status!r}")


def run(conn: psycopg.Connection[Any], sql: str, params: Sequence[Any]) -> int:
    """A statement's row count, through the lean libpq path when its values allow."""
    encoded = encode(params)
    if encoded is None:
        return conn.execute(placeholders(sql), params).rowcount
    return rowcount(execute(conn, sql, encoded))


_converted: dict[str, str] = {}


def placeholders(sql: str) -> str:
    """Our SQL is written with ``?`` placeholders (and never a literal ? or %); psycopg wants %s."""
    out = _converted.get(sql)
    if out is None:
        out = sql.replace("?", "%s")
        _converted[sql] = out
    return out
