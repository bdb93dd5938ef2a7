"""Start-up that says what is wrong: an unreachable database is reported at once (where, and how
long it will be retried) and retried; what retrying cannot fix fails at once, naming the fix.
Also the SQLite durability setting (config ``sqlite_synchronous``), applied per connection."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.cli.test_cli import run
from tests.conftest import PG_ADMIN_URL, pg_url
from transact import DBOS, ConfigError, DatabaseConfigurationError, DatabaseUnavailableError, DBOSClient

SECRET = "s3cret-pw"


def free_port() -> int:
    """A port nobody listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def launch_error(url: str, **config: Any) -> tuple[BaseException, float]:
    DBOS.destroy(destroy_registry=True)
    started = time.monotonic()
    try:
        DBOS(config={"name": "startup", "system_database_url": url, **config})
        DBOS.launch()
    except Exception as exc:
        return exc, time.monotonic() - started
    finally:
        DBOS.destroy(destroy_registry=True)
    raise AssertionError(f"launch against {url} succeeded")


def test_refused_connection_warns_at_once_naming_host_port_and_budget(caplog: pytest.LogCaptureFixture) -> None:
    port = free_port()
    url = f"postgresql://postgres:{SECRET}@127.0.0.1:{port}/transact_nowhere"
    caplog.set_level(logging.INFO, logger="transact")
    exc, took = launch_error(url, database_retry_timeout_seconds=1.5)
    assert type(exc) is DatabaseUnavailableError and "Connection refused" in str(exc)
    assert took >= 1.4  # retried for the whole budget, not failed at once
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "cannot reach" in r.getMessage()]
    assert len(warnings) == 1, [r.getMessage() for r in caplog.records]  # once, not per attempt
    message = warnings[0].getMessage()
    assert f"host 127.0.0.1, port {port}" in message and "retrying for up to 1.5 s" in message, message
    assert warnings[0].created - (time.time() - took) < 1.0  # at the first failed attempt
    assert SECRET not in caplog.text and SECRET not in str(exc)
    caplog.clear()
    with pytest.raises(DatabaseUnavailableError, match="Connection refused"):
        DBOSClient(url, retry_timeout_s=0.5)
    assert "retrying for up to 0.5 s" in caplog.text and f"port {port}" in caplog.text
    proc = run("workflow", "list", "--db", url)  # the CLI: one line naming where, within its 2 s budget
    assert proc.returncode == 1 and f"port {port}" in proc.stderr and SECRET not in proc.stderr, proc.stderr


def test_default_start_up_budget_is_named(caplog: pytest.LogCaptureFixture) -> None:
    """Without database_retry_timeout_seconds launch retries 30 s; the warning says so at once
    (the store is closed from here to end the wait early)."""
    caplog.set_level(logging.WARNING, logger="transact")
    DBOS.destroy(destroy_registry=True)
    DBOS(config={"name": "startup", "system_database_url": f"postgresql://postgres@127.0.0.1:{free_port()}/x"})
    store = DBOS._instance()._runtime.store
    failed: list[BaseException] = []

    def launch() -> None:
        try:
            DBOS.launch()
        except BaseException as exc:
            failed.append(exc)

    thread = threading.Thread(target=launch)
    started = time.monotonic()
    thread.start()
    try:
        while "retrying for up to 30 s" not in caplog.text:
            assert time.monotonic() - started < 5, caplog.text
            time.sleep(0.02)
    finally:
        store.close()
        thread.join(10)
        DBOS.destroy(destroy_registry=True)
    assert failed and isinstance(failed[0], DatabaseUnavailableError)


def _dns_is_quick() -> bool:
    started = time.monotonic()
    with contextlib.suppress(OSError):
        socket.getaddrinfo("nonexistent.invalid", 5432)
    return time.monotonic() - started < 2.0


@pytest.mark.parametrize(
    ("case", "phrase"),
    [
        ("unknown role", 'role "transact_no_such_role" does not exist'),
        ("unknown database", 'database "transact_no_such_db" does not exist'),
        ("unknown host", "nonexistent.invalid"),
    ],
)
def test_what_retrying_cannot_fix_fails_at_once(case: str, phrase: str, caplog: pytest.LogCaptureFixture) -> None:
    if case == "unknown host" and not _dns_is_quick():
        pytest.skip("the resolver takes over 2 s to refuse a name here (no network)")
    url = {
        "unknown role": f"postgresql://transact_no_such_role:{SECRET}@127.0.0.1:5432/postgres",
        "unknown database": pg_url("transact_no_such_db").replace("postgres@", f"postgres:{SECRET}@"),
        "unknown host": f"postgresql://postgres:{SECRET}@nonexistent.invalid:5432/postgres",
    }[case]
    caplog.set_level(logging.WARNING, logger="transact")
    _drop("transact_no_such_db")  # (an interrupted run of another test may have created it)
    # A launch, and a client (it migrates, so it can enqueue before any launch), create a missing
    # database (test_launch_creates_...); the CLI's read commands refuse it.
    if case != "unknown database":
        exc, took = launch_error(url)  # the start-up budget is 30 s: failing within 5 proves no retrying
        assert isinstance(exc, DatabaseConfigurationError) and took < 5, (exc, took)
        assert phrase in str(exc) and "retrying cannot fix this" in str(exc) and "port 5432" in str(exc), str(exc)
        assert SECRET not in str(exc) and "cannot reach" not in caplog.text
        started = time.monotonic()
        with pytest.raises(DatabaseConfigurationError, match="retrying cannot fix"):
            DBOSClient(url, retry_timeout_s=30)
        assert time.monotonic() - started < 5
    proc = run("workflow", "list", "--db", url)
    assert proc.returncode == 1 and phrase in proc.stderr and SECRET not in proc.stderr, proc.stderr


def _drop(name: str) -> None:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _exists(name: str) -> bool:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None


@pytest.fixture
def missing_database() -> Iterator[str]:
    """The name of a Postgres database that does not exist (dropped again afterwards)."""
    name = f"transact_created_{os.getpid()}"
    _drop(name)
    yield name
    DBOS.destroy(destroy_registry=True)
    _drop(name)


def test_launch_creates_a_missing_postgres_database_and_reset_tolerates_it(
    missing_database: str, caplog: pytest.LogCaptureFixture
) -> None:
    """As DBOS does: a new application's first launch needs no manual CREATE DATABASE. The testing
    sequence (destroy, configure, reset, launch) works on a database that is not there yet."""
    caplog.set_level(logging.WARNING, logger="transact")
    DBOS.destroy(destroy_registry=True)
    DBOS(config={"name": "creator", "system_database_url": pg_url(missing_database)})

    @DBOS.workflow()
    def hello(x: int) -> int:
        return x + 1

    DBOS.reset_system_database()  # nothing to reset yet: no error, nothing created
    assert not _exists(missing_database)
    DBOS.launch()
    assert hello(1) == 2
    assert _exists(missing_database)
    assert any(f"created the system database {missing_database!r}" in r.getMessage() for r in caplog.records)
    DBOS.destroy(destroy_registry=True)
    DBOS(config={"name": "creator", "system_database_url": pg_url(missing_database)})
    DBOS.reset_system_database()  # now it exists: its tables go, the database stays
    DBOS.launch()  # and the next launch migrates it again
    assert DBOS.list_workflows() == []


def test_a_client_creates_a_missing_postgres_database_too(missing_database: str) -> None:
    """A client migrates (it may enqueue before any application launched), so it creates it too."""
    with DBOSClient(pg_url(missing_database)) as client:
        assert client.list_workflows() == []
    assert _exists(missing_database)


def test_the_sqlite_counterpart_creates_a_missing_file(tmp_path: Path) -> None:
    """The same promise on SQLite: a system database file that is not there is created at launch."""
    path = tmp_path / "new.sqlite"
    DBOS.destroy(destroy_registry=True)
    DBOS(config={"name": "creator", "system_database_url": f"sqlite:///{path}"})

    @DBOS.workflow()
    def hello(x: int) -> int:
        return x + 1

    DBOS.reset_system_database()
    DBOS.launch()
    try:
        assert hello(1) == 2 and path.exists()
    finally:
        DBOS.destroy(destroy_registry=True)


def test_a_role_that_may_not_create_databases_is_told_how_to_fix_it(missing_database: str) -> None:
    role = "transact_no_createdb"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"DROP ROLE IF EXISTS {role}")
        conn.execute(f"CREATE ROLE {role} LOGIN NOCREATEDB")
    try:
        url = pg_url(missing_database).replace("postgres@", f"{role}@", 1)
        exc, took = launch_error(url)
        assert isinstance(exc, DatabaseConfigurationError) and took < 5, (exc, took)
        assert f"{missing_database!r} does not exist" in str(exc) and "CREATEDB" in str(exc), str(exc)
        assert not _exists(missing_database)
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f"DROP ROLE IF EXISTS {role}")


def test_two_processes_launching_on_a_missing_database_both_start(missing_database: str) -> None:
    """Concurrent first launches: one creates the database, the other finds it created."""
    script = (
        "import sys\n"
        "from transact import DBOS\n"
        "DBOS(config={'name': 'race', 'system_database_url': sys.argv[1]})\n"
        "DBOS.launch()\n"
        "print('UP', flush=True)\n"
        "DBOS.destroy()\n"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, pg_url(missing_database)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=60) for p in procs]
    assert all(p.returncode == 0 and "UP" in out for p, (out, _) in zip(procs, outs, strict=True)), outs
    assert _exists(missing_database)


@pytest.fixture
def open_dir() -> Any:
    """A folder outside pytest's private tmp tree (which other users cannot enter)."""
    path = tempfile.mkdtemp(prefix="transact-startup-")
    os.chmod(path, 0o755)
    yield Path(path)
    os.chmod(path, 0o755)
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.parametrize(("where", "phrase"), [("missing", "does not exist"), ("folder", "that path is a folder")])
def test_unusable_sqlite_path_fails_at_once(where: str, phrase: str, tmp_path: Path) -> None:
    path = tmp_path / "no" / "such" / "x.sqlite" if where == "missing" else tmp_path
    exc, took = launch_error(f"sqlite:///{path}")
    assert isinstance(exc, DatabaseConfigurationError) and phrase in str(exc) and took < 5, exc
    with pytest.raises(DatabaseConfigurationError, match=phrase):
        DBOSClient(f"sqlite:///{path}")


def test_read_only_sqlite_folder_fails_at_once(open_dir: Path) -> None:
    """As an unprivileged user (root may write anywhere): a real process launching on a file in a
    folder it may not write."""
    setpriv = shutil.which("setpriv")
    if setpriv is None or os.geteuid() != 0:
        pytest.skip("needs root and setpriv to run the launch as another user")
    os.chmod(open_dir, 0o555)
    script = (
        "from transact import DBOS, DatabaseConfigurationError\n"
        "try:\n"
        f"    DBOS(config={{'name': 'ro', 'system_database_url': 'sqlite:///{open_dir}/x.sqlite'}})\n"
        "    DBOS.launch()\n"
        "except DatabaseConfigurationError as exc:\n    print('REFUSED', exc)\n"
    )
    proc = subprocess.run(
        [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "HOME": str(open_dir)},
        cwd=str(open_dir),
    )
    assert "REFUSED" in proc.stdout and "read-only" in proc.stdout, proc.stdout + proc.stderr


@pytest.mark.parametrize("mode", ["NORMAL", "FULL", "full"])
def test_sqlite_synchronous_is_applied(mode: str, tmp_path: Path) -> None:
    DBOS.destroy(destroy_registry=True)
    DBOS(
        config={"name": "sync", "system_database_url": f"sqlite:///{tmp_path / 's.sqlite'}", "sqlite_synchronous": mode}
    )
    try:
        DBOS.launch()
        found = DBOS._rt().store.read(lambda tx: tx.one("PRAGMA synchronous"))
        assert found == ({"NORMAL": 1, "FULL": 2}[mode.upper()],)
    finally:
        DBOS.destroy(destroy_registry=True)


@pytest.mark.parametrize("value", ["OFF", "EXTRA", 2, True, ""])
def test_sqlite_synchronous_refuses_other_values(value: Any) -> None:
    with pytest.raises(ConfigError, match="'sqlite_synchronous' must be 'NORMAL' or 'FULL'"):
        DBOS(config={"name": "sync", "sqlite_synchronous": value})


def test_server_options_in_the_url_reach_every_connection_beside_the_schema(
    pg_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A URL's ``options`` (a role-like statement_timeout, say) are kept: the store adds its
    # search_path to them instead of replacing them. Without options in the URL, PGOPTIONS is.
    from tests.conftest import fresh_postgres
    from transact.storage import open_store

    fresh_postgres(pg_database)
    for url, env, expected in (
        (f"{pg_database}?options=-c%20statement_timeout%3D4321", None, "4321ms"),
        (pg_database, "-c statement_timeout=1234", "1234ms"),
    ):
        if env is None:
            monkeypatch.delenv("PGOPTIONS", raising=False)
        else:
            monkeypatch.setenv("PGOPTIONS", env)
        store = open_store(url)
        try:
            store.migrate()
            shown = store.read(lambda tx: tx.one("SHOW statement_timeout"))  # type: ignore[attr-defined]
            assert shown is not None and shown[0] == expected
            assert store.workflow_get("missing") is None  # the tables are found: the search_path is there too
        finally:
            store.close()


def test_a_migration_is_not_bound_by_the_urls_statement_timeout(pg_database: str) -> None:
    # Timeouts meant for the workload would cancel a long migration (an index over a large history,
    # or the wait for another process's migration) on every retry: a migration runs without them.
    # Here it waits 3x the timeout for the migration lock, in one statement, then goes on.
    from tests.conftest import fresh_postgres, wait_until
    from transact.storage import open_store
    from transact.storage.postgres import _MIGRATION_LOCK

    fresh_postgres(pg_database)
    store = open_store(f"{pg_database}?options=-c%20statement_timeout%3D100", retry_timeout_s=5)
    waiter = (
        "SELECT a.pid FROM pg_locks l JOIN pg_stat_activity a USING (pid) WHERE l.locktype = 'advisory' "
        "AND NOT l.granted AND (l.classid::bigint << 32) + l.objid::bigint = %s "
        "AND now() - a.query_start > interval '300 milliseconds'"
    )
    try:
        with psycopg.connect(pg_database, autocommit=True) as admin:
            admin.execute("SELECT pg_advisory_lock(%s)", (_MIGRATION_LOCK,))  # another process migrating
            migration = threading.Thread(target=store.migrate)
            migration.start()
            wait_until(lambda: admin.execute(waiter, (_MIGRATION_LOCK,)).fetchall(), what="a wait past the timeout")
            admin.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK,))
            migration.join(30)
        assert not migration.is_alive()
        assert store.schema_version() == max(v for v, _ in store.migration_scripts())
    finally:
        store.close()
