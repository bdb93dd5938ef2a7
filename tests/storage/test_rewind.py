"""RewindStore conformance (storage/rewind.py), run on both drivers."""

from __future__ import annotations

from tests.storage.builders import Hints, step, wf
from transact.storage import Store

FINISHED = ("SUCCESS", "ERROR", "CANCELLED", "MAX_RECOVERY_ATTEMPTS_EXCEEDED")


def test_rewind_deletes_steps_from_the_position_and_restarts_unowned(store: Store) -> None:
    for wid in ("a", "b"):  # b: a neighbour whose steps stay
        store.workflow_insert(wf(wid, timeout_ms=500))
        for fid in (1, 2, 3):
            assert store.step_record(step(wid, fid), executor_id="ex-1") is None
        store.workflow_cancel(wid, 5, with_children=False)
    assert store.workflow_rewind(workflow_id="a", start_step=2, from_statuses=["SUCCESS"], now=10) is None
    assert [s.function_id for s in store.steps_list("a")] == [1, 2, 3]  # wrong status: nothing changed
    row = store.workflow_rewind(workflow_id="a", start_step=2, from_statuses=FINISHED, now=10)
    assert row is not None
    assert (row.status, row.executor_id, row.started_at, row.deadline_at, row.output) == (
        "PENDING",
        None,
        10,
        510,
        None,
    )
    assert [s.function_id for s in store.steps_list("a")] == [1]
    assert [s.function_id for s in store.steps_list("b")] == [1, 2, 3]
    store.workflow_cancel("a", 11, with_children=False)
    assert store.workflow_rewind(workflow_id="a", start_step=1, from_statuses=FINISHED, now=12) is not None
    assert store.steps_list("a") == []


def test_rewind_returns_none_for_a_missing_workflow(store: Store) -> None:
    assert store.workflow_rewind(workflow_id="nope", start_step=1, from_statuses=FINISHED, now=1) is None


def test_rewind_requeues_on_the_given_queue_and_hints_it(store: Store) -> None:
    hints = Hints(store)
    store.workflow_insert(wf("q", status="ERROR", error=b"boom", queue_name="old"))
    row = store.workflow_rewind(workflow_id="q", start_step=1, from_statuses=FINISHED, now=7, queue_name="new")
    assert row is not None
    assert (row.status, row.queue_name, row.executor_id, row.error, row.updated_at) == (
        "ENQUEUED",
        "new",
        None,
        None,
        7,
    )
    assert ("queue", "new", "") in hints.seen
