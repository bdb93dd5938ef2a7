"""The pytest fixtures of ``transact.testing`` (opt in: ``-p transact.testing`` or
``pytest_plugins = ["transact.testing"]``).

``transact_app`` launches DBOS on ``transact_database_url``, a fresh SQLite file per test unless
a test module or conftest overrides that fixture (for example with ``transact_postgres_url``).
``transact_clock`` installs a ``TestClock`` for the test.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from transact._dbos import DBOS
from transact.testing._clock import TestClock

ENV_PG_URL = "TRANSACT_TEST_PG_URL"
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


@pytest.fixture
def transact_sqlite_url(tmp_path: Path) -> str:
    """A system database URL for a SQLite file of its own (created by the first launch)."""
    return f"sqlite:///{tmp_path / 'transact-system.sqlite'}"


@pytest.fixture
def transact_postgres_url() -> Iterator[str]:
    """A scratch Postgres database of its own, dropped after the test. The server is reached with
    ``$TRANSACT_TEST_PG_URL`` (default ``postgresql://postgres@127.0.0.1:5432/postgres``), as a
    role that may create databases."""
    admin = os.environ.get(ENV_PG_URL) or DEFAULT_PG_URL
    name = f"transact_t_{os.getpid()}_{uuid.uuid4().hex[:10]}"
    try:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as exc:
        raise RuntimeError(
            f"transact_postgres_url cannot create a scratch database through {ENV_PG_URL} ({exc}); "
            f"set {ENV_PG_URL} to a Postgres URL whose role may create databases"
        ) from exc
    base, _, _ = admin.partition("?")[0].rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def transact_database_url(transact_sqlite_url: str) -> str:
    """The system database ``transact_app`` launches on; override it to choose another."""
    return transact_sqlite_url


@pytest.fixture
def transact_app(transact_database_url: str) -> Iterator[type[DBOS]]:
    """A launched DBOS on a fresh system database; destroyed, with its registry, after the test."""
    DBOS.destroy()
    DBOS(config={"name": "transact-test", "system_database_url": transact_database_url})
    DBOS.launch()
    try:
        yield DBOS
    finally:
        DBOS.destroy(destroy_registry=True)


@pytest.fixture
def transact_clock() -> Iterator[TestClock]:
    """A ``TestClock`` installed for the test (standing at the real time it started), removed after.
    Time then moves only by ``transact_clock.advance(...)``."""
    with TestClock() as clock:
        yield clock
