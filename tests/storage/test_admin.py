"""AdminStore conformance (storage/admin.py), run on both drivers."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import wait_until
from tests.storage.builders import Hints, queued, step, trips, wf
from transact.storage import Conflict, Store, open_store
from transact.storage.rows import ListQuery


def _ids(store: Store, **filters: object) -> list[str]:
    return [r.workflow_id for r in store.workflows_list(ListQuery(**filters))]  # type: ignore[arg-type]


def test_list_filters_orders_and_pages(store: Store) -> None:
    store.workflow_insert(wf("a1", created_at=1, name="alpha", inputs=b"in", output=b"out"))
    store.workflow_insert(wf("a2", created_at=2, name="alpha", status="SUCCESS"))
    store.workflow_insert(queued("b1", created_at=3, name="beta"))
    store.workflow_insert(wf("b2", created_at=3, name="beta", parent_workflow_id="a1"))
    everything, n = trips(store, lambda: store.workflows_list(ListQuery()))
    assert [r.workflow_id for r in everything] == ["a1", "a2", "b1", "b2"] and n == 1  # ties by id
    assert _ids(store, newest_first=True, limit=2) == ["b2", "b1"]
    assert _ids(store, offset=1) == ["a2", "b1", "b2"]  # an offset without a limit
    assert _ids(store, limit=2, offset=1) == ["a2", "b1"]
    assert _ids(store, names=["alpha"], statuses=["PENDING", "SUCCESS"]) == ["a1", "a2"]
    assert _ids(store, id_prefix="b") == ["b1", "b2"]
    assert _ids(store, queued_only=True) == ["b1"] and _ids(store, queue_name="q") == ["b1"]
    assert _ids(store, created_from=2, created_to=2) == ["a2"]
    assert _ids(store, parent_workflow_id="a1") == ["b2"] and _ids(store, workflow_ids=[]) == []
    assert _ids(store, workflow_ids=["b2", "a1"]) == ["a1", "b2"]
    light = store.workflows_list(ListQuery(workflow_ids=["a1"], load_input=False, load_output=False))[0]
    assert light.inputs is None and light.output is None and light.name == "alpha"
    # More ids than a statement takes placeholders (Postgres 65,535; SQLite 32,766-250,000): one read.
    many = [f"gone-{i}" for i in range(250_000)] + ["b2", "a1"]
    listed, n = trips(store, lambda: store.workflows_list(ListQuery(workflow_ids=many)))
    assert [r.workflow_id for r in listed] == ["a1", "b2"] and n == 1


def test_explain_describes_the_list_plan(store: Store) -> None:
    plan = store.workflows_explain(ListQuery(statuses=["PENDING"], limit=5))
    assert (plan.strip() and "workflow_status" in plan.lower()) or "ws_" in plan.lower()


def test_resume_restarts_a_cancelled_tree(store: Store) -> None:
    store.workflow_insert(wf("top", recovery_attempts=3, timeout_ms=100))
    store.workflow_insert(queued("child", parent_workflow_id="top"))
    store.workflow_insert(wf("done-child", status="SUCCESS", parent_workflow_id="top"))
    store.workflow_cancel("top", 5)
    hints = Hints(store)
    rows = store.workflow_resume(workflow_id="top", from_statuses=["CANCELLED"], executor_id="me", now=10)
    assert [r.workflow_id for r in rows] == ["top", "child"]
    top, child = rows
    assert (top.status, top.executor_id, top.recovery_attempts, top.deadline_at) == ("PENDING", "me", 0, 110)
    assert (child.status, child.executor_id) == ("ENQUEUED", None)
    assert hints.take() == [("queue", "q", "")]
    done = store.workflow_get("done-child")
    assert done is not None and done.status == "SUCCESS"
    assert store.workflow_resume(workflow_id="top", from_statuses=["CANCELLED"], executor_id="me", now=11) == []


def test_fork_copies_steps_below_the_start(store: Store) -> None:
    store.workflow_insert(wf("src"))
    for fid in (1, 2, 3):
        store.step_record(step("src", fid, f"o{fid}".encode()), executor_id="ex-1")
    hints = Hints(store)
    assert store.workflow_fork(queued("copy", forked_from="src"), source_id="src", start_step=3) == 2
    assert hints.take() == [("queue", "q", "")]
    assert {f: s.output for f, s in store.steps_load("copy").items()} == {1: b"o1", 2: b"o2"}
    assert set(store.steps_load("src")) == {1, 2, 3}
    with pytest.raises(Conflict):
        store.workflow_fork(queued("copy"), source_id="src", start_step=1)
    assert store.workflow_fork(wf("all"), source_id="src", start_step=10**12) == 3  # capped, copies all


def test_delete_with_and_without_children(store: Store) -> None:
    store.workflow_insert(wf("p"))
    store.workflow_insert(wf("c", parent_workflow_id="p"))
    store.workflow_insert(wf("g", parent_workflow_id="c"))
    store.workflow_insert(wf("alone"))
    store.step_record(step("p", 1), executor_id="ex-1")
    store.step_record(step("g", 1), executor_id="ex-1")
    store.event_set(workflow_id="p", key="k", value=b"v", now=1)
    hints = Hints(store)
    assert store.workflow_delete("alone", with_children=False) == ["alone"]
    assert sorted(store.workflow_delete("p", with_children=True)) == ["c", "g", "p"]
    assert sorted(hints.take()) == [("done", w, "") for w in ("alone", "c", "g", "p")]
    assert all(store.workflow_get(w) is None for w in ("p", "c", "g", "alone"))
    assert store.steps_load_many(["p", "g"]) == {"p": {}, "g": {}}
    assert store.event_get("p", "k") is None
    assert store.workflow_delete("p", with_children=True) == []


def test_wake_adopters_reaches_listening_processes(store: Store, db_url: str) -> None:
    _, n = trips(store, store.admin_wake_adopters)
    assert n == (1 if store.pushes_wakeups else 0)
    other = open_store(db_url)
    try:
        hints = Hints(other)
        other.start_listening()
        store.admin_wake_adopters()
        if store.pushes_wakeups:
            wait_until(lambda: ("executor", "", "") in hints.seen, 10, what="the executor hint")
    finally:
        other.close()


def test_schema_version(store: Store, tmp_path: Path) -> None:
    assert store.schema_version() == max(v for v, _ in store.migration_scripts())
    if store.dialect == "sqlite":
        fresh = open_store(f"sqlite:///{tmp_path / 'fresh.sqlite'}")
        try:
            assert fresh.schema_version() == 0
        finally:
            fresh.close()


def test_insert_synthetic(store: Store) -> None:
    store.admin_insert_synthetic(count=5, id_prefix="syn-", names=["a", "b"], statuses=["SUCCESS"], now=1000)
    rows = store.workflows_list(ListQuery(id_prefix="syn-"))
    assert len(rows) == 5 and {r.status for r in rows} == {"SUCCESS"}
    assert sorted(r.name for r in rows) == ["a", "a", "b", "b", "b"]
    assert sorted(r.created_at for r in rows) == [996, 997, 998, 999, 1000]
