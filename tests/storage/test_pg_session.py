"""A Postgres session (``pg_session.PgSession``, a garbage collection's own connection) under a
statement_timeout: a statement the server cancels raises ``Cancelled`` at once and keeps the
session (its connection, and with it its locks); a cancelled setup is retried on a new connection,
as contention, not as an outage. Postgres only: SQLite has no sessions and no statement_timeout."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from tests.conftest import fresh_postgres
from transact.storage import Cancelled, Store, open_store


@pytest.fixture
def strict(pg_database: str) -> Iterator[Store]:
    """A store whose every connection has a 100 ms statement_timeout, with a retry budget so a
    statement retried as contention fails the test instead of hanging it."""
    fresh_postgres(pg_database)
    store = open_store(f"{pg_database}?options=-c%20statement_timeout%3D100", retry_timeout_s=5)
    store.migrate()
    yield store
    store.close()


def test_a_cancelled_statement_raises_at_once_and_keeps_the_session(strict: Store) -> None:
    session = strict._session("SELECT true", ())  # type: ignore[attr-defined]
    try:
        assert session.open()
        pid = session.texts("SELECT pg_backend_pid()", ())
        with pytest.raises(Cancelled, match="statement timeout"):
            session.texts("SELECT pg_sleep(1)", ())
        assert session.texts("SELECT pg_backend_pid()", ()) == pid  # the same connection goes on
        assert not strict.outage.ongoing  # type: ignore[attr-defined]
    finally:
        session.close()


def test_a_cancelled_setup_is_retried_on_a_new_connection(strict: Store, pg_database: str) -> None:
    with psycopg.connect(pg_database, autocommit=True) as admin:
        admin.execute("CREATE SEQUENCE public.setup_runs")
        # The first setup outlasts the timeout; the next one answers at once.
        setup = "SELECT CASE WHEN nextval('public.setup_runs') > 1 THEN true ELSE pg_sleep(1) IS NOT NULL END"
        session = strict._session(setup, ())  # type: ignore[attr-defined]
        try:
            assert session.open()
            assert session.texts("SELECT 1", ()) == [("1",)]
            runs = admin.execute("SELECT last_value FROM public.setup_runs").fetchone()
            assert runs == (2,)  # cancelled once, then granted
            assert not strict.outage.ongoing  # type: ignore[attr-defined]
        finally:
            session.close()
