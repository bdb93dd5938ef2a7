"""A dedicated Postgres session for a long run of autocommit statements (a garbage collection).

The pool's connections are shared, so settings and session locks cannot live on them; a session
opens its own connection, runs its setup statement there, and keeps both until it closes. An
outage is retried like any unit (back-off, the store's outage log): the session connects again and
runs its setup again, whose answer may now be no (another process took the lock meanwhile). A
statement of the session that the server cancels (``statement_timeout``) raises ``Cancelled`` at
once and keeps the session; a cancelled setup is retried on a new connection, as contention.
Statements run on the lean libpq path (``_pgfast``). Must not import the engine or the facade.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

import psycopg

from transact.storage import _pgfast
from transact.storage._base import DriverBase, Withdrawn
from transact.storage.errors import Cancelled, Unavailable, first_line


class PgSession:
    """``_base.Session`` on Postgres."""

    def __init__(
        self,
        store: DriverBase,
        connect: Callable[[], psycopg.Connection[Any]],
        setup: str,
        params: Sequence[Any],
    ) -> None:
        self._store = store
        self._connect = connect
        self._setup = setup
        encoded = _pgfast.encode(params)
        if encoded is None:
            raise TypeError("a session's setup takes str, int, bool or bytes parameters")
        self._setup_params = encoded
        self._conn: psycopg.Connection[Any] | None = None

    def open(self) -> bool:
        """Connect and run the setup (retrying outages); whether it granted the session."""
        try:
            self._store._retrying(self._ensure)
        except Withdrawn:
            return False
        return True

    def texts(self, sql: str, params: Sequence[Any]) -> list[tuple[str | None, ...]]:
        """One autocommit statement's rows as text, retried (on a new connection) across outages;
        ``Withdrawn`` when the new connection's setup says no; ``Cancelled`` (not retried) when the
        server cancels the statement. Only for statements that are safe to run again after a
        failure whose outcome is unknown."""
        encoded = _pgfast.encode(params)
        if encoded is None:
            raise TypeError("a session's statements take str, int, bool or bytes parameters")

        def attempt() -> list[tuple[str | None, ...]]:
            if self._store._closed.is_set():  # its connection is not the pool's: closing the store stops it here
                raise Unavailable("the system database store is closed", outage=False)
            return self._run(self._ensure(), sql, encoded)

        return self._store._retrying(attempt)

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()  # session locks and settings end with the connection

    def _ensure(self) -> psycopg.Connection[Any]:
        if self._conn is not None and not self._conn.closed:
            return self._conn
        self.close()
        conn = self._conn = self._connect()  # raises Unavailable (retried) or Misconfigured
        try:
            granted = self._run(conn, self._setup, self._setup_params)[0][0] == "t"
        except Cancelled as exc:
            # A lock the cancelled setup took may outlive it on this connection: a new one retries.
            self.close()
            raise Unavailable(str(exc), outage=False) from exc
        except BaseException:
            self.close()  # a connection without its setup must not run the session's statements
            raise
        if not granted:
            self.close()
            raise Withdrawn
        return conn

    def _run(
        self, conn: psycopg.Connection[Any], sql: str, encoded: tuple[list[bytes | None], list[int]]
    ) -> list[tuple[str | None, ...]]:
        """One statement, its driver error mapped as the store maps them; after an outage the
        connection is closed (its state is unknown: the next attempt connects afresh)."""
        self._store.count_round_trip()
        try:
            return _pgfast.text_rows(_pgfast.execute(conn, sql, encoded))
        except psycopg.errors.QueryCanceled as exc:
            # Not retried here (the same statement meets the same statement_timeout); the
            # connection stays, and with it the session's locks.
            raise Cancelled(f"the database cancelled the statement: {first_line(exc, type(exc).__name__)}") from exc
        except Exception as exc:
            mapped = self._store._map_error(exc)
            if mapped is None:
                raise
            if isinstance(mapped, Unavailable) and mapped.outage:
                self.close()
            raise mapped from exc
