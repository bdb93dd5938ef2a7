"""The lean Postgres statement path: prepared statements survive psycopg deallocating them, and
its transactions commit, roll back, and refuse to commit after a failed statement."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from tests.conftest import scratch_pg_database
from transact.storage import _pgfast


@pytest.fixture
def conn() -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    for url in scratch_pg_database("pgfast"):
        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute("CREATE TABLE t (k TEXT PRIMARY KEY)")
            yield connection


def _insert(conn: psycopg.Connection[tuple[object, ...]], key: str) -> int:
    encoded = _pgfast.encode([key])
    assert encoded is not None
    return _pgfast.rowcount(_pgfast.execute(conn, "INSERT INTO t (k) VALUES (?) ON CONFLICT DO NOTHING", encoded))


def test_statements_are_prepared_again_after_a_rollback_deallocates_them(
    conn: psycopg.Connection[tuple[object, ...]],
) -> None:
    for _ in range(6):  # psycopg prepares a statement of its own after a few runs
        conn.execute("SELECT count(*) FROM t")
    assert _insert(conn, "a") == 1
    with pytest.raises(psycopg.errors.DivisionByZero), conn.transaction():
        conn.execute("SELECT count(*) FROM t")
        conn.execute("SELECT 1 / 0")  # the rollback that follows makes psycopg DEALLOCATE ALL
    assert _insert(conn, "b") == 1  # autocommit: prepared again and run at once
    assert _insert(conn, "b") == 0


def test_inside_a_transaction_the_unit_is_asked_to_run_again(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    for _ in range(6):
        conn.execute("SELECT count(*) FROM t")
    assert _insert(conn, "a") == 1
    conn.execute("DEALLOCATE ALL")
    with pytest.raises(psycopg.OperationalError, match="running the unit again"), conn.transaction():
        _insert(conn, "c")  # an outage-like error: the store retries the whole unit
    assert _insert(conn, "c") == 1  # the names were forgotten: prepared again


def _keys(conn: psycopg.Connection[tuple[object, ...]]) -> list[object]:
    return [r[0] for r in conn.execute("SELECT k FROM t ORDER BY k").fetchall()]


def test_a_lean_transaction_commits_what_its_block_wrote(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    with _pgfast.transaction(conn):
        assert conn.pgconn.transaction_status == psycopg.pq.TransactionStatus.INTRANS
        _insert(conn, "a")
        conn.execute("INSERT INTO t (k) VALUES ('b')")  # psycopg's own path shares the transaction
    assert conn.pgconn.transaction_status == psycopg.pq.TransactionStatus.IDLE
    assert _keys(conn) == ["a", "b"]


def test_a_lean_transaction_rolls_back_when_its_block_raises(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    with pytest.raises(RuntimeError, match="boom"), _pgfast.transaction(conn):
        _insert(conn, "a")
        raise RuntimeError("boom")
    with pytest.raises(psycopg.errors.UniqueViolation), _pgfast.transaction(conn):
        _insert(conn, "b")
        conn.execute("INSERT INTO t (k) VALUES ('b')")
    assert conn.pgconn.transaction_status == psycopg.pq.TransactionStatus.IDLE
    assert _keys(conn) == []


def test_a_lean_transaction_refuses_to_commit_after_a_swallowed_failure(
    conn: psycopg.Connection[tuple[object, ...]],
) -> None:
    with pytest.raises(psycopg.errors.InFailedSqlTransaction, match="rolled back"), _pgfast.transaction(conn):
        _insert(conn, "a")
        with pytest.raises(psycopg.errors.DivisionByZero):
            conn.execute("SELECT 1 / 0")
    assert conn.pgconn.transaction_status == psycopg.pq.TransactionStatus.IDLE
    assert _keys(conn) == []
