"""Flat cost with history: every hot-path statement's plan, on a database holding 20,000 finished
workflows (two steps, a kept message and an event each, statistics fresh), reaches the workflow,
step, message, event and stream tables through an index, never a scan of the table. Postgres is
checked with custom plans (values known) and generic ones (prepared statements); SQLite with
EXPLAIN QUERY PLAN. Statements are taken from the modules that run them."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql as pgsql

from tests.storage.builders import step, wf
from transact.storage import Store, comms, open_store, retention_sql, workflows
from transact.storage._base import EXISTING
from transact.storage.dialect import ONE_ID
from transact.storage.fence import fenced_step_params
from transact.storage.queues import claim_sql
from transact.storage.retention import RETENTION_TURN_KEY
from transact.storage.rows import WORKFLOW_COLUMNS, ListQuery

HISTORY = 20_000
NOW = 10_000_000
TABLES = ("workflow_status", "operation_outputs", "notifications", "workflow_events", "streams")
OLD3 = ["old-1", "old-2", "old-3"]
GC_SELECT = (NOW, NOW, "", 5, 5, "old-5", 1000)  # retention_sql.SELECT's parameters


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def history(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """One seeded database per backend for the whole module (seeding is the slow part)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('plans') / 'system.sqlite'}"
    else:
        from tests.conftest import fresh_postgres

        url = request.getfixturevalue("pg_database")
        fresh_postgres(url)
    store = open_store(url)
    store.migrate()
    store.admin_insert_synthetic(count=HISTORY, id_prefix="old-", names=["job"], statuses=["SUCCESS"], now=NOW)
    key = "(seq << 28) + f.n, " if store.dialect == "sqlite" else ""
    key_col = "step_key, " if store.dialect == "sqlite" else ""

    def seed(tx: Any) -> None:
        tx.run(
            f"INSERT INTO operation_outputs ({key_col}workflow_id, function_id, function_name, output) "
            f"SELECT {key}workflow_id, f.n, 'step', ? FROM workflow_status, "
            "(SELECT 1 AS n UNION ALL SELECT 2) AS f",
            (b"out",),
        )
        tx.run(
            "INSERT INTO notifications (destination_id, topic, message, idempotency_key, created_at, consumed_at) "
            "SELECT workflow_id, 't', ?, workflow_id, created_at, created_at FROM workflow_status",
            (b"",),
        )
        tx.run(
            "INSERT INTO workflow_events (workflow_id, key, value, updated_at) "
            "SELECT workflow_id, 'e', ?, 1 FROM workflow_status",
            (b"v",),
        )
        tx.run(
            "INSERT INTO streams (workflow_id, key, seq, value, closed) SELECT workflow_id, 's', 0, ?, ? "
            "FROM workflow_status",
            (b"v", False),
        )

    store.write(seed)  # type: ignore[attr-defined]
    # A little live work beside the history.
    store.workflow_insert(wf("live", executor="me", created_at=NOW, updated_at=NOW))
    assert store.step_record(step("live", 1), executor_id="me") is None
    store.write(lambda tx: tx.run("ANALYZE"))  # type: ignore[attr-defined]
    yield store
    store.close()


def _queries(store: Store) -> list[tuple[str, str, tuple[Any, ...]]]:
    steps = store.sql.steps  # type: ignore[attr-defined]
    row = wf("new", executor="me", created_at=NOW, updated_at=NOW)
    record = fenced_step_params(step("live", 2), "live", "me")
    pending = f"SELECT {WORKFLOW_COLUMNS} FROM workflow_status WHERE status = 'PENDING' AND executor_id IN (?) ORDER BY created_at"
    orphaned = (
        f"SELECT {WORKFLOW_COLUMNS} FROM workflow_status WHERE status = 'PENDING' AND (executor_id IS NULL"
        f" OR executor_id NOT IN (?)) AND name IN (?){workflows.OWNED} ORDER BY created_at LIMIT ?"
    )
    listing, listing_params = store.list_sql(ListQuery(limit=50, newest_first=True))  # type: ignore[attr-defined]
    queries: list[tuple[str, str, tuple[Any, ...]]] = [
        ("start", workflows._INSERT_WORKFLOW, tuple(workflows.workflow_values(row))),
        ("get status", workflows._SELECT_WORKFLOW, ("live",)),
        ("step checkpoint", steps.record, tuple(record)),
        ("step replay", steps.select_one, ("live", 1)),
        ("steps of a workflow", steps.of_workflows.format(match=ONE_ID), ("live",)),
        # A claimed or adopted batch's steps, the ids as one list parameter.
        (
            "steps of a batch",
            steps.of_workflows.format(match=store.sql.ids_match),  # type: ignore[attr-defined]
            (store.sql.ids_param(["live", "new"]),),  # type: ignore[attr-defined]
        ),
        ("bulk send check", EXISTING.format(match=store.sql.ids_match), (store.sql.ids_param(["live", "new"]),)),  # type: ignore[attr-defined]
        ("finish", workflows._FINISH, ("SUCCESS", b"", None, NOW, "live", "me")),
        ("queue claim", claim_sql(store.dialect, False), ("q", 10, "me", NOW, NOW, NOW)),
        # One application's claim among several sharing the database (its rows and unowned ones).
        ("owned queue claim", claim_sql(store.dialect, False, owned=True), ("q", "app", 10, "me", NOW, NOW, NOW)),
        ("send", comms._SEND, ("live", "t", b"m", "k", NOW, "live")),
        ("recv", comms._OLDEST_UNREAD, ("live", "t")),
        ("recv consume", comms._CONSUME_MESSAGE, (b"", NOW, 1)),
        ("set_event", comms._SET_EVENT, ("live", "e", b"v", NOW)),
        ("get_event", comms._GET_EVENT, ("live", "e")),
        ("stream read", comms._STREAM_READ, ("live", "s", 0, 10)),
        ("stream offset", comms._STREAM_LAST, ("live", "s")),
        # The destination and its forks at any depth: each step down through the forked_from index.
        ("send to forks", comms._FAMILY, ("live",)),
        ("recovery scan", pending, ("me",)),
        ("owned recovery scan", pending.replace(" ORDER BY", f"{workflows.OWNED} ORDER BY"), ("me", "app")),
        ("adoption scan", orphaned, ("me", "job", "app", 100)),
        ("listing newest", listing, tuple(listing_params)),
        ("gc boundary", retention_sql.BOUNDARY, (999,)),
        ("gc batch", retention_sql.SELECT, GC_SELECT),
        ("gc busy parents", retention_sql.busy_parents_sql(store.sql.ids_match), (store.sql.ids_param(OLD3),)),  # type: ignore[attr-defined]
        ("gc delete", retention_sql.delete_sql(store.sql.ids_match), (store.sql.ids_param(OLD3), 0)),  # type: ignore[attr-defined]
        # What deleting one workflow runs through SQLite's cascades.
        ("gc messages", "DELETE FROM notifications WHERE destination_id = ?", ("old-1",)),
        ("gc events", "DELETE FROM workflow_events WHERE workflow_id = ?", ("old-1",)),
        ("gc streams", "DELETE FROM streams WHERE workflow_id = ?", ("old-1",)),
    ]
    sets = [(n, f) for n, f in (("start", store.sql.insert_workflow_set), ("finish", store.sql.finish_set)) if f]  # type: ignore[attr-defined]
    if steps.record_set is not None:
        sets.append(("step checkpoint", steps.record_set))
    for name, form in sets:  # the plan of a batch; its rows are data (one JSON array)
        queries.append((f"{name} (group commit)", form.sql, (json.dumps([]),)))
    for statement in (*store.sql.owned_deletes, *store.sql.owned_sweeps):  # type: ignore[attr-defined]
        queries.append(("gc owned rows", statement, (store.sql.ids_param(OLD3),) * statement.count("?")))  # type: ignore[attr-defined]
    batch = store.sql.retention_batch  # type: ignore[attr-defined]
    if batch is not None:  # the whole batch in one statement: sweeps of an earlier batch's ids, the turn, the batch
        sweeps = (store.sql.ids_param(OLD3),) * (batch.count("?") - len(GC_SELECT) - 2)  # type: ignore[attr-defined]
        queries.append(("gc batch, one statement", batch, (*sweeps, RETENTION_TURN_KEY, *GC_SELECT, 0)))
    if not store.sql.owned_deletes:  # type: ignore[attr-defined]
        queries.append(
            ("gc steps", "DELETE FROM operation_outputs WHERE step_key >= ? AND step_key < ?", (1 << 28, 2 << 28))
        )
    return queries


_PG_SCAN = re.compile(r"Seq Scan on (" + "|".join(TABLES) + r")\b")
# "SCAN t USING INDEX i" walks an index in order and stops at the LIMIT; a bare "SCAN t" reads the table.
_SQLITE_SCAN = re.compile(r"^SCAN (" + "|".join(TABLES) + r"|w|o|c|n)( AS \w+)?$")


def test_hot_path_plans_use_indexes(history: Store) -> None:
    store = history
    failures = []
    if store.dialect == "sqlite":
        import sqlite3

        conn = sqlite3.connect(store.url[len("sqlite:///") :])  # type: ignore[attr-defined]
        try:
            for name, sql, params in _queries(store):
                plan = "\n".join(str(r[3]) for r in conn.execute("EXPLAIN QUERY PLAN " + sql, params))
                if any(_SQLITE_SCAN.match(line.strip()) for line in plan.splitlines()):
                    failures.append(f"{name}:\n{plan}")
        finally:
            conn.close()
    else:
        with psycopg.connect(store.url, autocommit=True, options="-c search_path=transact") as conn:  # type: ignore[attr-defined]
            for name, sql, params in _queries(store):
                numbered = sql.split("?")
                prepared = "".join(f"{part}${i}" for i, part in enumerate(numbered[:-1], 1)) + numbered[-1]
                for mode in ("auto", "force_generic_plan"):
                    conn.execute(f"SET plan_cache_mode = {mode}")
                    conn.execute(f"PREPARE plan_check AS {prepared}")
                    try:
                        args = pgsql.SQL(", ").join(map(pgsql.Literal, params))
                        rows = conn.execute(pgsql.SQL("EXPLAIN EXECUTE plan_check({})").format(args)).fetchall()
                    finally:
                        conn.execute("DEALLOCATE plan_check")
                    plan = "\n".join(r[0] for r in rows)
                    if _PG_SCAN.search(plan):
                        failures.append(f"{name} ({mode}):\n{plan}")
    assert not failures, "\n\n".join(failures)
