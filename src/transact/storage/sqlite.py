"""SQLite driver: stdlib sqlite3, WAL, one connection per thread, BEGIN IMMEDIATE for writes.

Several processes may share one file. Wake-ups: same-process writes call ``hint`` directly; writes
from other processes are noticed by polling ``PRAGMA data_version`` (a cheap shared-memory read,
no table access), which wakes every waiter to re-read. The same poller runs the WAL checkpoints,
so commits on the hot path never pay for one (see CHECKPOINT_INTERVAL_S). Must not import the
engine or the facade.
"""

from __future__ import annotations

import contextlib
import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from transact._lib.states import Hint
from transact.storage import sqlite_sql, sqlite_stats
from transact.storage._base import Tx, as_text
from transact.storage.dialect import SetForm
from transact.storage.errors import Conflict, Misconfigured, Unavailable
from transact.storage.outage import OutageLog
from transact.storage.outbox import BadConnection, CallerTx
from transact.storage.store import SqlStore

POLL_INTERVAL_S = 0.01
# Messages committed since the poller's last look (AUTOINCREMENT ids grow in commit order): each
# becomes its own hint, so waiting receivers need not wake on every "*" (thousands of them would
# each re-read on every commit).
_NEW_MESSAGES = "SELECT message_id, destination_id, topic FROM notifications WHERE message_id > ? ORDER BY message_id"
_LAST_MESSAGE = "SELECT coalesce(max(message_id), 0) FROM notifications"
# WAL checkpoints run in the poller thread, at most this often and only after writes: with SQLite's
# default the committing connection checkpoints every 1,000 pages, with an fsync, so an occasional
# commit pays for a whole checkpoint. Writers keep a far backstop in case no poller runs (a
# client-only process) or it falls behind.
CHECKPOINT_INTERVAL_S = 0.1
BACKSTOP_CHECKPOINT_PAGES = 10_000
# PRAGMA synchronous: NORMAL survives a process crash but may lose the last commits on power loss
# or an OS crash; FULL syncs every commit (config key sqlite_synchronous).
SYNCHRONOUS_MODES = ("NORMAL", "FULL")
# sqlite3 errors that retrying cannot fix before the file was ever opened.
_UNFIXABLE = ("unable to open database file", "readonly database", "file is not a database", "disk image is malformed")
T = TypeVar("T")


class _SqliteTx:
    __slots__ = ("_conn", "_store")

    def __init__(self, conn: sqlite3.Connection, store: SqliteStore) -> None:
        self._conn = conn
        self._store = store

    def one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        self._store.count_round_trip()
        row: tuple[Any, ...] | None = self._conn.execute(sql, params).fetchone()
        return row

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        self._store.count_round_trip()
        return list(self._conn.execute(sql, params).fetchall())

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        self._store.count_round_trip()
        return self._conn.execute(sql, params).rowcount

    def texts(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[str | None, ...]]:
        return as_text(self.all(sql, params))

    def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._store.count_round_trip()
        self._conn.executemany(sql, rows)


class SqliteStore(SqlStore):
    dialect = "sqlite"
    sql = sqlite_sql.SQL

    def _outbox_same_database(self, tx: CallerTx, what: str) -> None:
        main = next((r[2] for r in tx.all("PRAGMA database_list") if r[1] == "main"), "")
        if not main or os.path.realpath(main) != os.path.realpath(self.path):
            raise BadConnection(
                f"{what}: the connection is to SQLite file {main or '(in memory)'!r}, not the system database "
                f"{self.path!r}; open a connection on the system database file"
            )

    def __init__(self, path: str, *, retry_timeout_s: float | None = None, synchronous: str = "NORMAL") -> None:
        super().__init__(retry_timeout_s=retry_timeout_s)
        if synchronous not in SYNCHRONOUS_MODES:
            raise ValueError(f"SQLite synchronous mode must be one of {SYNCHRONOUS_MODES}, got {synchronous!r}")
        self.synchronous = synchronous
        self.path = path
        self.url = f"sqlite:///{path}"
        self.outage = OutageLog(f"SQLite file {path}")
        self._local = threading.local()
        self._all_conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()
        self._poller: threading.Thread | None = None
        self._check_path()

    def _check_path(self) -> None:
        """Refuse at once what retrying cannot fix: SQLite needs the file's folder to exist and be
        writable (the WAL and shared-memory files live beside the database)."""
        parent = os.path.dirname(os.path.abspath(self.path))
        problem = None
        if not os.path.isdir(parent):
            problem = f"its folder {parent!r} does not exist; create it or choose another path"
        elif os.path.isdir(self.path):
            problem = "that path is a folder; name a file in it"
        elif not os.access(parent, os.W_OK | os.X_OK):
            problem = f"its folder {parent!r} is read-only for this process; make it writable or choose another path"
        elif os.path.exists(self.path) and not os.access(self.path, os.R_OK | os.W_OK):
            problem = "the file is not readable and writable by this process; fix its permissions"
        if problem is not None:
            raise Misconfigured(f"cannot use the SQLite database {self.path!r}: {problem}")

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._conns_lock:
                self._all_conns.append(conn)
        return conn

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30.0)
        # WAL lets readers run beside the single writer; synchronous NORMAL (the default) keeps
        # commits durable across process crashes (SIGKILL) without an fsync per commit (power loss
        # may drop the last ones); FULL syncs each commit.
        # Switching a new file to WAL needs an exclusive lock and may report "locked" at once when
        # another process is doing the same (the busy handler is not always used): retry briefly.
        for attempt in range(200):
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or attempt == 199:
                    conn.close()
                    raise
                time.sleep(0.01 + random.random() * 0.02)
        conn.execute(f"PRAGMA synchronous={self.synchronous}")
        conn.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_CHECKPOINT_PAGES}")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=30000")
        self._reached = True
        return conn

    def _single(self, fn: Callable[[Tx], T]) -> T:
        # Autocommit: a single write statement is atomic. If its read snapshot goes stale before it
        # upgrades to a write (another process committed in between), SQLite reports "locked",
        # which maps to Unavailable and is retried.
        try:
            return fn(_SqliteTx(self._conn(), self))
        except sqlite3.Error as exc:
            mapped = self._map_error(exc)
            if mapped is None:
                raise
            raise mapped from exc

    def write_grouped(self, sql: str, params: Sequence[Any], set_form: SetForm | None) -> int:
        # The per-step hot path: one autocommit statement on this thread's connection, without
        # the unit and Tx layers (SQLite has one writer, so nothing to group). Outages take the
        # retrying path; the statement is fenced or conflict-ignoring, so a retry is safe.
        try:
            cursor: sqlite3.Cursor = self._local.cursor  # reused: Connection.execute makes one per call
        except AttributeError:
            cursor = self._local.cursor = self._conn().cursor()
        self.count_round_trip()
        try:
            return int(cursor.execute(sql, params).rowcount)
        except sqlite3.Error as exc:
            mapped = self._map_error(exc)
            if not isinstance(mapped, Unavailable):
                raise (mapped or exc) from exc
        return self.write(lambda tx: tx.run(sql, params), single=True)

    @contextlib.contextmanager
    def _writer(self) -> Iterator[_SqliteTx]:
        conn = self._conn()
        # IMMEDIATE takes the write lock up front, so the busy timeout applies instead of a
        # deadlock error when two connections both try to upgrade a read to a write.
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield _SqliteTx(conn, self)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _map_error(self, exc: Exception) -> Exception | None:
        if isinstance(exc, sqlite3.IntegrityError):
            return Conflict(str(exc))
        if isinstance(exc, sqlite3.Error) and not self._reached and any(t in str(exc) for t in _UNFIXABLE):
            return Misconfigured(f"cannot use the SQLite database {self.path!r}: {exc}; retrying cannot fix this")
        if isinstance(exc, sqlite3.OperationalError):
            text = str(exc)
            if "locked" in text or "busy" in text:
                return Unavailable(text, outage=False)  # another writer: contention, not an outage
            if "disk I/O" in text:
                return Unavailable(text)
        return None

    def close(self) -> None:
        self._closed.set()
        if self._poller is not None:
            self._poller.join(timeout=2)
        with self._conns_lock:
            for conn in self._all_conns:
                with contextlib.suppress(Exception):
                    conn.close()
            self._all_conns.clear()
        self._local = threading.local()

    def start_listening(self) -> None:
        if self._poller is None:
            self._poller = threading.Thread(target=self._poll, name="transact-sqlite-poll", daemon=True)
            self._poller.start()

    def _poll(self) -> None:
        conn = self._connect()
        try:
            last = conn.execute("PRAGMA data_version").fetchone()[0]
            seen = self._last_message(conn)
            written = True  # commits since the last checkpoint (at start: maybe a predecessor's)
            next_checkpoint = time.monotonic() + CHECKPOINT_INTERVAL_S
            while not self._closed.wait(POLL_INTERVAL_S):
                try:
                    version = conn.execute("PRAGMA data_version").fetchone()[0]
                    # data_version changes only for commits by *other* connections, including
                    # ours in other threads; waking everyone is cheap (they re-read) and never wrong.
                    if version != last:
                        last = version
                        written = True
                        seen = self._hint_new_messages(conn, seen)
                        self.hint(Hint.ALL, "", "")
                    if written and time.monotonic() >= next_checkpoint:
                        # PASSIVE: copies what no reader still needs, never blocks the writers.
                        conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                        written = False
                        next_checkpoint = time.monotonic() + CHECKPOINT_INTERVAL_S
                except sqlite3.Error:
                    continue
        finally:
            conn.close()

    @staticmethod
    def _last_message(conn: sqlite3.Connection) -> int | None:
        try:
            return int(conn.execute(_LAST_MESSAGE).fetchone()[0])
        except sqlite3.Error:
            return None  # no schema yet: look again after the next commit

    def _hint_new_messages(self, conn: sqlite3.Connection, seen: int | None) -> int | None:
        """Hint (msg, destination, topic) for each message committed after id ``seen``."""
        if seen is None:
            return self._last_message(conn)
        try:
            rows = conn.execute(_NEW_MESSAGES, (seen,)).fetchall()
        except sqlite3.Error:
            return seen  # the next commit looks again from the same id
        for message_id, destination, topic in rows:
            seen = message_id
            self.hint(Hint.MESSAGE, destination, topic)
        return seen

    def migrate(self) -> int:
        return self._retrying(self._migrate_once)

    def _migrate_once(self) -> int:
        try:
            conn = self._connect()
        except sqlite3.Error as exc:
            mapped = self._map_error(exc)
            raise (mapped or exc) from exc
        try:
            # Off for the migration (a no-op inside a transaction, so before BEGIN): rebuilding a
            # parent table (0010) would otherwise cascade its DROP into the children. Checked below.
            conn.execute("PRAGMA foreign_keys=OFF")
            conn.execute("BEGIN IMMEDIATE")
            try:
                orphans_before: set[tuple[Any, ...]] | None = None  # read before the first script

                def run_script(script: str) -> None:
                    nonlocal orphans_before
                    if orphans_before is None:
                        orphans_before = set(conn.execute("PRAGMA foreign_key_check").fetchall())
                    for statement in _split_sql(script):
                        conn.execute(statement)

                current = self._apply_missing(lambda sql, params: conn.execute(sql, params).fetchall(), run_script)
                sqlite_stats.pin(conn)  # plans that stay flat as history grows, with no ANALYZE
                if orphans_before is not None:  # something was applied: it must not orphan rows
                    made = set(conn.execute("PRAGMA foreign_key_check").fetchall()) - orphans_before
                    if made:
                        raise sqlite3.IntegrityError(f"migration left rows without their parent: {sorted(made)[:5]}")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return current
        except sqlite3.Error as exc:
            mapped = self._map_error(exc)
            raise (mapped or exc) from exc
        finally:
            conn.close()

    def reset(self) -> None:
        self.close()
        self._closed.clear()
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.remove(self.path + suffix)


def _split_sql(script: str) -> list[str]:
    """Split a migration into statements (sqlite3 runs one per execute inside our transaction)."""
    statements: list[str] = []
    buffer = ""
    for line in script.splitlines(keepends=True):
        if line.lstrip().startswith("--") and not buffer.strip():
            continue
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        statements.append(buffer.strip())
    return statements
