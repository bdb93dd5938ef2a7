"""Shared fixtures: a ``backend`` parametrized over SQLite and a real Postgres, a fresh system
database per test, a launched ``dbos`` instance, and helpers for waiting and subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from transact import DBOS
from transact.storage import Store, open_store

# The suite uses its own product's pytest plugin (fixtures transact_app, transact_clock, ...); all
# its names start with ``transact_``, so none shadows the fixtures below.
pytest_plugins = ["transact.testing"]

PG_ADMIN_URL = os.environ.get("TRANSACT_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
TESTS_DIR = Path(__file__).parent
TABLES = (
    "workflow_status, operation_outputs, notifications, workflow_events, streams, executors, schedules, queues,"
    " application_versions, workflow_attributes"
)


def pg_url(dbname: str) -> str:
    base, _, _ = PG_ADMIN_URL.rpartition("/")
    return f"{base}/{dbname}"


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def scratch_pg_database(prefix: str) -> Iterator[str]:
    """A Postgres database of this pytest process (xdist worker): created, yielded, dropped."""
    name = f"{prefix}_{_worker()}_{os.getpid()}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    yield pg_url(name)
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """The system database for Postgres tests, created once per pytest process."""
    yield from scratch_pg_database("transact_test")


def fresh_postgres(url: str) -> None:
    """Empty every Transact table (schema created on first use) so each test starts clean."""
    from transact.storage import open_store

    store = open_store(url)
    store.migrate()
    store.close()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"TRUNCATE {', '.join('transact.' + t.strip() for t in TABLES.split(','))} CASCADE")


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def db_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A fresh system database URL for this test on the chosen backend."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'system.sqlite'}"
    url: str = request.getfixturevalue("pg_database")
    fresh_postgres(url)
    return url


@pytest.fixture
def transact_database_url(db_url: str) -> str:
    """The plugin's ``transact_app`` launches on the suite's fresh database, so tests written
    with the plugin's fixtures run on both backends like the rest of the suite."""
    return db_url


def migrate_up_to(url: str, version: int) -> None:
    """Create (or upgrade) the system database only as far as migration ``version`` (upgrade tests)."""
    store = open_store(url)
    shipped = store.migration_scripts
    store.migration_scripts = lambda: ((v, s) for v, s in shipped() if v <= version)  # type: ignore[method-assign]
    assert store.migrate() == version
    store.close()


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    """The system database's store itself, migrated (storage tests, or an operator's view)."""
    s = open_store(db_url)
    s.migrate()
    yield s
    s.close()


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[list[subprocess.Popen[str]]]:
    """Subprocesses a test starts; at the end they are asked to stop (file ``stop`` in tmp_path),
    then killed if they have not exited within 15 s."""
    started: list[subprocess.Popen[str]] = []
    yield started
    (tmp_path / "stop").touch()
    for p in started:
        if p.poll() is None:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


@pytest.fixture
def config(db_url: str) -> dict[str, Any]:
    return {"name": "test-app", "system_database_url": db_url, "shutdown_timeout_seconds": 2}


@pytest.fixture
def dbos(config: dict[str, Any]) -> Iterator[type[DBOS]]:
    """A launched DBOS on a fresh database; destroyed (registry too) after the test."""
    DBOS.destroy(destroy_registry=True)
    DBOS(config=config)
    DBOS.launch()
    try:
        yield DBOS
    finally:
        DBOS.destroy(destroy_registry=True)


def wait_until(predicate: Callable[[], Any], timeout: float = 20.0, interval: float = 0.02, what: str = "") -> Any:
    """Poll ``predicate`` until it returns a truthy value; fail the test at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(interval)


def spawn(
    script: Path | str, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.Popen[str]:
    """Start a Python script in a real subprocess (for SIGKILL crash tests)."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.Popen(
        [sys.executable, str(script), *args],
        env=full_env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
