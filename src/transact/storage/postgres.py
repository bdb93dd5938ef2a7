"""Postgres driver: psycopg 3 with a psycopg_pool pool; LISTEN on one dedicated connection.

Statements are constant text so psycopg's automatic preparation hits after a few uses. Single
statements run in autocommit mode: one round trip, no BEGIN/COMMIT. Must not import the engine or
the facade.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import psycopg
import psycopg_pool
from psycopg import errors as pg_errors
from psycopg import sql as pg_sql
from psycopg.adapt import AdaptersMap
from psycopg.conninfo import conninfo_to_dict
from psycopg.types.string import TextLoader

from transact._lib.backoff import Backoff
from transact._lib.states import Hint
from transact._lib.urls import postgres_conninfo, redact
from transact.storage import _pgfast, pg_database, postgres_sql
from transact.storage._base import Session, Tx, as_text
from transact.storage.dialect import SetForm
from transact.storage.errors import Conflict, Misconfigured, Unavailable, first_line
from transact.storage.outage import OutageLog
from transact.storage.outbox import BadConnection, CallerTx, pg_identity
from transact.storage.pg_group_commit import GroupCommit
from transact.storage.pg_session import PgSession
from transact.storage.store import SqlStore

log = logging.getLogger("transact.storage")

SCHEMA = "transact"  # the default schema of the system tables
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def check_schema(schema: str | None) -> str:
    """The schema to use (default ``transact``). Only plain lower-case names: they are spelled
    unquoted in search_path and DDL, so they must mean the same everywhere."""
    if schema is None:
        return SCHEMA
    if not isinstance(schema, str) or not _SCHEMA_NAME.fullmatch(schema):
        raise ValueError(
            f"the Postgres schema must be a lower-case name of letters, digits and underscores "
            f"(at most 63, not starting with a digit), got {schema!r}"
        )
    return schema


T = TypeVar("T")
_MIGRATION_LOCK = 0x7472616E73  # "trans": serializes concurrent launches' migrations
# jsonb columns (workflow attributes) are read as their JSON text, as SQLite returns them: rows hold
# text, and the engine decodes it in one place for both databases.
_ADAPTERS = AdaptersMap(psycopg.adapters)
_ADAPTERS.register_loader("jsonb", TextLoader)


class _PgTx:
    __slots__ = ("_conn", "_store")

    def __init__(self, conn: psycopg.Connection[Any], store: PostgresStore) -> None:
        self._conn = conn
        self._store = store

    def one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        self._store.count_round_trip()
        row: tuple[Any, ...] | None = self._conn.execute(_pgfast.placeholders(sql), params).fetchone()
        return row

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        self._store.count_round_trip()
        return list(self._conn.execute(_pgfast.placeholders(sql), params).fetchall())

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        self._store.count_round_trip()
        return _pgfast.run(self._conn, sql, params)

    def texts(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[str | None, ...]]:
        self._store.count_round_trip()
        encoded = _pgfast.encode(params)
        if encoded is None:
            return as_text(self._conn.execute(_pgfast.placeholders(sql), params).fetchall())
        return _pgfast.text_rows(_pgfast.execute(self._conn, sql, encoded))

    def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._store.count_round_trip()
        with self._conn.cursor() as cur:
            cur.executemany(_pgfast.placeholders(sql), rows)


# Connection errors retrying cannot fix (before the first connection succeeds): text -> the fix.
_UNFIXABLE = (
    ("password authentication failed", "correct the user name or password in the URL"),
    ("authentication failed", "correct the user name or password in the URL"),
    ("no pg_hba.conf entry", "allow this host and user in the server's pg_hba.conf, or connect as another user"),
    ("role ", "correct the user name in the URL or create that role"),
    ("database ", "create the database or correct its name in the URL"),
    ("failed to resolve host", "correct the host name in the URL"),
    ("could not translate host name", "correct the host name in the URL"),
)


def _unfixable(text: str) -> str | None:
    """The fix for a connection error retrying cannot fix; None when retrying may help (refused,
    timed out, the server starting or shutting down, a temporary DNS failure)."""
    if "Temporary failure" in text or "try again" in text.lower():
        return None
    for needle, fix in _UNFIXABLE:
        if needle in text and (needle.strip() not in ("role", "database") or "does not exist" in text):
            return fix
    return None


def _where(conninfo: str) -> str:
    """The URL without its password, with the host and port it resolves to (libpq's defaults)."""
    try:
        params = psycopg.conninfo.conninfo_to_dict(conninfo)
    except psycopg.Error:
        return redact(conninfo)
    host = params.get("host") or params.get("hostaddr") or "localhost"
    return f"{redact(conninfo)} (host {host}, port {params.get('port') or 5432})"


# What a running application needs on the system tables (``grant_app_role``); the default
# privileges cover tables and sequences that later migrations, run by this same role, create.
_GRANTS = (
    "GRANT USAGE ON SCHEMA {schema} TO {role}",
    "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {role}",
    "GRANT USAGE ON ALL SEQUENCES IN SCHEMA {schema} TO {role}",
    "GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA {schema} TO {role}",
    "ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {role}",
    "ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT USAGE ON SEQUENCES TO {role}",
    "ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT EXECUTE ON FUNCTIONS TO {role}",
)


class PostgresStore(SqlStore):
    dialect = "postgres"
    sql = postgres_sql.SQL
    _outbox_identity: str | None = None  # current_database() of this store, read once

    def _outbox_same_database(self, tx: CallerTx, what: str) -> None:
        seen = tx.one(pg_identity(self._pg_schema))
        if self._outbox_identity is None:
            found = self.read(lambda own: own.one("SELECT current_database()"))
            self._outbox_identity = str(found[0]) if found else ""
        if seen is None or seen[0] != self._outbox_identity or not seen[1]:
            raise BadConnection(
                f"{what}: the connection is to Postgres database {seen[0] if seen else '?'!r}, not the system "
                f"database {self._outbox_identity!r} (with schema {self._pg_schema!r}); connect to the system database"
            )

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        retry_timeout_s: float | None = None,
        connect_timeout_s: float = 10.0,
        schema: str | None = None,
    ) -> None:
        super().__init__(retry_timeout_s=retry_timeout_s)
        self._pg_schema = check_schema(schema)
        self.url = postgres_conninfo(url)
        self.outage = OutageLog(_where(self.url))
        self._conn_kwargs: dict[str, Any] = {
            "autocommit": True,
            "options": _options(self.url, f"-c search_path={self._pg_schema},public"),
            "connect_timeout": max(1, int(connect_timeout_s)),
            "context": _ADAPTERS,
        }
        self._pool = psycopg_pool.ConnectionPool(
            self.url,
            min_size=1,
            max_size=pool_size,
            kwargs=self._conn_kwargs,
            timeout=connect_timeout_s,
            open=False,
            name="transact",
        )
        self._pool_opened = False
        self._pool_lock = threading.Lock()
        self._listener: threading.Thread | None = None
        self.group_commit = True  # config "group_commit": False turns it off
        self._groups: dict[str, GroupCommit] = {}  # one per lane (SetForm.lane)
        self._groups_lock = threading.Lock()
        self._own_finishes: set[str] = set()  # finished here: their NOTIFY echo is redundant

    def _ensure_pool(self) -> None:
        if not self._pool_opened:
            with self._pool_lock:
                if not self._pool_opened:
                    if not self._reached:  # a direct first connection: its error says why, a pool's only times out
                        self.connect_once().close()
                    self._pool.open(wait=False)
                    self._pool_opened = True

    def write_grouped(self, sql: str, params: Sequence[Any], set_form: SetForm | None) -> int:
        if set_form is None or not self.group_commit:
            return super().write_grouped(sql, params, set_form)
        self.count_round_trip()
        lane = set_form.lane
        group = self._groups.get(lane)
        if group is None:
            with self._groups_lock:
                group = self._groups.setdefault(lane, GroupCommit(self.connect_once))
        rowcount = group.submit(sql, params, set_form)
        if rowcount is None:  # the batch failed (outage, ...): alone, with the usual retries
            return super().write_grouped(sql, params, set_form)
        return rowcount

    def note_own_finish(self, workflow_id: str, finishing: bool) -> None:
        if not finishing:
            self._own_finishes.discard(workflow_id)
            return
        if len(self._own_finishes) > 100_000:  # echoes lost to a listener reconnect: start over
            self._own_finishes.clear()
        self._own_finishes.add(workflow_id)

    def _single(self, fn: Callable[[Tx], T]) -> T:
        if not self._pool_opened:
            self._ensure_pool()
        pool = self._pool
        try:
            conn = pool.getconn()
        except psycopg_pool.PoolTimeout as exc:
            raise Unavailable(f"no system database connection available: {exc}") from exc
        try:
            return fn(_PgTx(conn, self))
        except Exception as exc:
            mapped = self._map_error(exc)
            if mapped is None:
                raise
            raise mapped from exc
        finally:
            pool.putconn(conn)  # the pool discards a broken connection

    @contextlib.contextmanager
    def _writer(self) -> Iterator[_PgTx]:
        self._ensure_pool()
        with self._pool.connection() as conn:
            self.count_round_trip()  # BEGIN (the pool's connections are in autocommit mode)
            with _pgfast.transaction(conn):
                yield _PgTx(conn, self)
                self.count_round_trip()  # COMMIT (a rollback after an error is not counted)

    def _session(self, setup: str, params: Sequence[Any]) -> Session:
        return PgSession(self, self.connect_once, setup, params)

    def _map_error(self, exc: Exception) -> Exception | None:
        if isinstance(exc, pg_errors.IntegrityError):
            return Conflict(str(exc))
        if isinstance(exc, pg_errors.SerializationFailure | pg_errors.DeadlockDetected):
            return Unavailable(type(exc).__name__, outage=False)  # contention: the next attempt gets past it
        if isinstance(exc, pg_errors.QueryCanceled | pg_errors.LockNotAvailable):
            # statement_timeout, lock_timeout or an operator's cancel: the server answered and the
            # connection is sound, so this is contention, not an outage
            return Unavailable(f"{type(exc).__name__}: {first_line(exc)}", outage=False)
        if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError | psycopg_pool.PoolTimeout):
            return Unavailable(first_line(exc, type(exc).__name__))
        return None

    def connect_once(self) -> psycopg.Connection[Any]:
        try:
            conn = psycopg.connect(self.url, **self._conn_kwargs)
        except psycopg.Error as exc:
            text = " ".join(str(exc).split()) or "connect failed"
            fix = None if self._reached else _unfixable(text)
            if fix is not None:
                raise Misconfigured(
                    f"cannot use the system database {self.outage.where}: {text}; retrying cannot fix this: {fix}"
                ) from exc
            raise Unavailable(first_line(exc, "connect failed")) from exc
        self._reached = True
        return conn

    def close(self) -> None:
        self._closed.set()
        for group in list(self._groups.values()):
            group.close()
        if self._listener is not None:
            self._listener.join(timeout=3)
        if self._pool_opened:
            self._pool.close(timeout=2)

    # -- LISTEN/NOTIFY ------------------------------------------------------------------------
    def start_listening(self) -> None:
        if self._listener is None:
            ready = threading.Event()
            self._listener = threading.Thread(
                target=self._listen, args=(ready,), name="transact-pg-listen", daemon=True
            )
            self._listener.start()
            ready.wait(timeout=5)

    def _listen(self, ready: threading.Event) -> None:
        # Reconnects back off until the store closes (no budget: hints must come back).
        backoff = Backoff(initial=0.05, cap=2.0, cancel=self._closed)
        first = True
        done = Hint.DONE
        while not self._closed.is_set():
            try:
                with psycopg.connect(self.url, **self._conn_kwargs) as conn:
                    conn.execute("LISTEN transact")
                    ready.set()
                    if not first:
                        # Notifications sent while we were disconnected are lost: wake everyone to re-read.
                        self.hint(Hint.ALL, "", "")
                    first = False
                    backoff.reset()
                    while not self._closed.is_set():
                        own = self._own_finishes
                        for note in conn.notifies(timeout=0.5):
                            kind, _, rest = note.payload.partition("|")
                            ident, _, key = rest.partition("|")
                            if kind == done and ident in own:
                                own.discard(ident)  # our own finish, hinted when written
                                continue
                            self.hint(kind, ident, key)
            except psycopg.Error as exc:
                if self._closed.is_set():
                    return
                ready.set()
                if not backoff.wait():
                    return  # closed while waiting
                if backoff.should_log():
                    log.warning(
                        "notification listener lost its connection (%s); reconnecting (attempt %d)",
                        exc,
                        backoff.attempts,
                    )

    # -- schema -------------------------------------------------------------------------------
    def migrate(self) -> int:
        def attempt() -> int:
            with self.connect_once() as conn, conn.transaction():
                # Timeouts the URL or the role set for the workload would cancel a long migration
                # (an index over a large history) on every retry: a migration runs unbounded.
                conn.execute("SET LOCAL statement_timeout = 0; SET LOCAL lock_timeout = 0")
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
                conn.execute(f"CREATE SCHEMA IF NOT EXISTS {self._pg_schema}")
                conn.execute(f"SET LOCAL search_path = {self._pg_schema}")

                def query(sql: str, params: Sequence[Any]) -> list[Any]:
                    cur = conn.execute(_pgfast.placeholders(sql), params)
                    return cur.fetchall() if cur.description else []

                def run_script(script: str) -> None:
                    conn.execute(script.encode())

                return self._apply_missing(query, run_script)

        try:
            return self._retrying(lambda: self._mapped(attempt))
        except Misconfigured as exc:
            if not pg_database.is_missing(self.url, exc):
                raise
        pg_database.create(self.url, self._conn_kwargs)  # a new application's first launch
        return self._retrying(lambda: self._mapped(attempt))

    def _mapped(self, fn: Any) -> int:
        try:
            result: int = fn()
            return result
        except psycopg.Error as exc:
            mapped = self._map_error(exc)
            if mapped is None:
                raise
            raise mapped from exc

    def _grant_app_role(self, role: str) -> None:
        """See ``storage.grant_app_role``."""

        def attempt() -> None:
            with self.connect_once() as conn, conn.transaction():
                if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone() is None:
                    raise ValueError(
                        f"role {role!r} does not exist: create it first (CREATE ROLE ... LOGIN PASSWORD ...)"
                    )
                for statement in _GRANTS:
                    conn.execute(
                        pg_sql.SQL(statement).format(
                            schema=pg_sql.Identifier(self._pg_schema), role=pg_sql.Identifier(role)
                        )
                    )

        self._retrying(lambda: self._mapped(attempt))

    def reset(self) -> None:
        try:
            conn = self.connect_once()
        except Misconfigured as exc:
            if pg_database.is_missing(self.url, exc):
                return  # no database, nothing to reset: launch creates it
            raise
        with conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {self._pg_schema} CASCADE")


def grant_app_role(
    url: str, role: str, *, retry_timeout_s: float | None, connect_timeout_s: float, schema: str | None = None
) -> None:
    store = PostgresStore(url, retry_timeout_s=retry_timeout_s, connect_timeout_s=connect_timeout_s, schema=schema)
    try:
        store._grant_app_role(role)
    finally:
        store.close()


def _options(url: str, ours: str) -> str:
    """Every connection's server options (pool, LISTEN, migrations, sessions): the URL's own
    ``options`` (or ``PGOPTIONS``), which an explicit value would otherwise replace, then ours,
    which win where both set the same parameter."""
    try:
        parts = conninfo_to_dict(url)
    except psycopg.Error:  # a malformed URL: connecting reports it, with the fix
        return ours
    given = parts["options"] if "options" in parts else os.environ.get("PGOPTIONS")
    return f"{given} {ours}" if given else ours
