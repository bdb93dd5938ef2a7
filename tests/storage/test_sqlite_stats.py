"""SQLite's hot-path plans on a large history with no ANALYZE run by anyone (sqlite_stats.py pins
workflow_status's statistics at every migrate): 20,000 finished workflows on one queue, and the
queue statements reach the live rows through the partial indexes that hold only them, never
through an index that walks the queue's history. Checked twice: on a database never analyzed,
and on one analyzed by hand before the queue had any rows (the statistics that made the planner
walk ws_queue_created_idx). Postgres has no counterpart here: autovacuum analyzes its tables and
its estimates for a partial index come from the index's real size (test_plans.py checks its
plans)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.storage.builders import queued, step, wf
from tests.storage.test_plans import _SQLITE_SCAN, _queries
from transact.storage import Store, open_store, queues, retention_sql, sqlite_stats
from transact.storage.queues import claim_sql, partitions_claim_sql
from transact.storage.rows import WORKFLOW_COLUMNS

HISTORY = 20_000
NOW = 100_000_000

_SEED_HISTORY = (
    "WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < ?) "
    "INSERT INTO workflow_status (workflow_id, status, name, executor_id, queue_name, created_at, updated_at, "
    "started_at) SELECT ? || n, 'SUCCESS', 'job', 'old', ?, ? + n, ? + n + 5, ? + n FROM s"
)


def _seed(path: Path, analyzed_before_queue: bool) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        if analyzed_before_queue:  # a hand-run ANALYZE while no queued row existed yet
            conn.execute(_SEED_HISTORY, (HISTORY, "plain-", None, 0, 0, 0))
            conn.execute("ANALYZE")
        conn.execute("BEGIN")
        conn.execute(_SEED_HISTORY, (HISTORY, "old-", "q", HISTORY, HISTORY, HISTORY))
        conn.execute(
            "INSERT INTO operation_outputs (step_key, workflow_id, function_id, function_name, output) "
            "SELECT (seq << 28) + f.n, workflow_id, f.n, 'step', x'00' FROM workflow_status, "
            "(SELECT 1 AS n UNION ALL SELECT 2) AS f"
        )
        conn.execute(
            "INSERT INTO notifications (destination_id, topic, message, idempotency_key, created_at, consumed_at) "
            "SELECT workflow_id, 't', x'00', workflow_id, created_at, created_at FROM workflow_status"
        )
        conn.execute(
            "INSERT INTO workflow_events (workflow_id, key, value, updated_at) "
            "SELECT workflow_id, 'e', x'00', 1 FROM workflow_status"
        )
        conn.execute(
            "INSERT INTO streams (workflow_id, key, seq, value, closed) "
            "SELECT workflow_id, 's', 0, x'00', 0 FROM workflow_status"
        )
        conn.execute("COMMIT")
    finally:
        conn.close()


@pytest.fixture(scope="module", params=["never analyzed", "analyzed before the queue had rows"])
def history(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    path = tmp_path_factory.mktemp("sqlite-stats") / "system.sqlite"
    store = open_store(f"sqlite:///{path}")
    store.migrate()
    store.close()
    _seed(path, request.param != "never analyzed")
    store = open_store(f"sqlite:///{path}")
    store.migrate()  # what every launch does
    store.workflow_insert(wf("live", executor="me", created_at=NOW, updated_at=NOW))
    assert store.step_record(step("live", 1), executor_id="me") is None
    store.workflow_insert(queued("ready", created_at=NOW, updated_at=NOW))
    yield store
    store.close()


def _plan(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...]) -> str:
    return "\n".join(str(r[3]) for r in conn.execute("EXPLAIN QUERY PLAN " + sql, params))


# (statement, parameters, the indexes it may read workflow_status through besides the primary key).
_ACTIVE, _STARTED = "ws_queue_active_idx", "ws_queue_started_idx"  # the rate window reads starts by time
_EXPECTED: list[tuple[str, str, tuple[Any, ...], list[str]]] = [
    ("queue limits", queues._state_sql(False, True, True), ("q", "q", NOW, "q", NOW), [_ACTIVE, _STARTED]),
    (
        "queue limits (partition)",
        queues._state_sql(True, True, True),
        ("q", "p", "q", "p", NOW, "q", "p", NOW),
        [_ACTIVE, _STARTED],
    ),
    ("slot holders", queues._running_sql(False), ("q",), ["ws_queue_active_idx"]),
    ("probe", queues._PROBE, ("q", "q"), ["ws_queue_ready_idx", "ws_queue_delayed_idx"]),
    ("claim", claim_sql("sqlite", False), ("q", 10, "me", NOW, NOW, NOW), ["ws_queue_ready_idx"]),
    (
        "claim (partition)",
        claim_sql("sqlite", True),
        ("q", "p", 10, "me", NOW, NOW, NOW),
        ["ws_queue_partition_ready_idx"],
    ),
    ("next due", queues._NEXT_DUE, ("q",), ["ws_queue_delayed_idx"]),
    ("promote", queues._PROMOTE, (NOW, "q", NOW), ["ws_queue_delayed_idx"]),
    ("partitions", queues._PARTITIONS, ("q", "q", 10), ["ws_queue_partition_ready_idx"]),
    (
        "recovery scan",
        f"SELECT {WORKFLOW_COLUMNS} FROM workflow_status WHERE status = 'PENDING' AND executor_id IN (?) "
        "ORDER BY created_at",
        ("me",),
        ["ws_executor_pending_idx"],
    ),
    ("gc boundary", retention_sql.BOUNDARY, (999,), ["ws_finished_idx"]),
]


def test_queue_statements_use_the_live_partial_indexes(history: Store) -> None:
    conn = sqlite3.connect(history.url[len("sqlite:///") :])  # type: ignore[attr-defined]
    failures = []
    try:
        for name, sql, params, indexes in _EXPECTED:
            plan = _plan(conn, sql, params)
            reads = [line for line in plan.splitlines() if "workflow_status" in line and "autoindex" not in line]
            if not reads or not all(any(i in line for i in indexes) for line in reads):
                failures.append(f"{name} (wants {', '.join(indexes)}):\n{plan}")
    finally:
        conn.close()
    assert not failures, "\n\n".join(failures)


def test_partitioned_claim_reads_live_rows_only(history: Store) -> None:
    sql = partitions_claim_sql("sqlite", False, True, True, True)
    conn = sqlite3.connect(history.url[len("sqlite:///") :])  # type: ignore[attr-defined]
    try:
        plan = _plan(conn, sql, ("q",) * sql.count("?"))  # values do not change a plan without STAT4
    finally:
        conn.close()
    for line in plan.splitlines():
        if "workflow_status" in line and "autoindex" not in line and "ws_queue_started_idx" not in line:
            assert "ws_queue_partition_ready_idx" in line or "ws_queue_active_idx" in line, plan


def test_every_hot_statement_uses_an_index(history: Store) -> None:
    conn = sqlite3.connect(history.url[len("sqlite:///") :])  # type: ignore[attr-defined]
    failures = []
    try:
        for name, sql, params in _queries(history):
            plan = _plan(conn, sql, params)
            if any(_SQLITE_SCAN.match(line.strip()) for line in plan.splitlines()):
                failures.append(f"{name}:\n{plan}")
    finally:
        conn.close()
    assert not failures, "\n\n".join(failures)


def test_every_index_is_pinned_and_a_hand_run_analyze_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "system.sqlite"
    store = open_store(f"sqlite:///{path}")
    store.migrate()
    store.close()
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        indexes = {str(r[1]) for r in conn.execute("PRAGMA index_list(workflow_status)")}
        pinned = dict(conn.execute("SELECT idx, stat FROM sqlite_stat1 WHERE tbl = 'workflow_status'").fetchall())
        assert set(pinned) == indexes
        assert pinned["ws_queue_active_idx"].split()[0] == str(sqlite_stats.LIVE_ROWS)
        assert pinned["ws_queue_created_idx"].split()[0] == str(sqlite_stats.HISTORY_ROWS)
        conn.execute("ANALYZE")  # an empty table: the measured rows say nothing
        assert conn.execute("SELECT COUNT(*) FROM sqlite_stat1 WHERE tbl = 'workflow_status'").fetchone()[0] == 0
    finally:
        conn.close()
    store = open_store(f"sqlite:///{path}")
    store.migrate()
    store.close()
    conn = sqlite3.connect(path)
    try:
        again = dict(conn.execute("SELECT idx, stat FROM sqlite_stat1 WHERE tbl = 'workflow_status'").fetchall())
    finally:
        conn.close()
    assert again == pinned
