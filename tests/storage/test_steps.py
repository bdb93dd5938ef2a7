"""StepStore conformance (storage/steps.py), run on both drivers."""

from __future__ import annotations

import pytest

from tests.storage.builders import step, trips, wf
from transact.storage import OwnershipLost, Store, WorkflowNotPending


def test_step_record_is_fenced(store: Store) -> None:
    store.workflow_insert(wf("w1"))
    written, n = trips(store, lambda: store.step_record(step("w1", 1), executor_id="ex-1"))
    assert written is None and n == 1
    # the same position again returns what was recorded first
    existing = store.step_record(step("w1", 1, b"other"), executor_id="ex-1")
    assert existing is not None and existing.output == b"x"
    with pytest.raises(OwnershipLost):
        store.step_record(step("w1", 2), executor_id="ex-2")
    store.workflow_cancel("w1", 2)
    with pytest.raises(WorkflowNotPending) as info:
        store.step_record(step("w1", 2), executor_id="ex-1")
    assert info.value.status == "CANCELLED"
    assert set(store.steps_load("w1")) == {1}


def test_step_record_cancelled_keeps_a_finished_step_of_a_cancelled_workflow_only(store: Store) -> None:
    store.workflow_insert(wf("w1"))
    assert not store.step_record_cancelled(step("w1", 1), executor_id="ex-1")  # still PENDING: refused
    store.workflow_cancel("w1", 2)
    assert not store.step_record_cancelled(step("w1", 1), executor_id="ex-2")  # not the owner
    written, n = trips(store, lambda: store.step_record_cancelled(step("w1", 1), executor_id="ex-1"))
    assert written and n == 1
    assert not store.step_record_cancelled(step("w1", 1, b"again"), executor_id="ex-1")  # first outcome stays
    assert store.steps_load("w1")[1].output == b"x"


def test_step_record_for_a_deleted_workflow(store: Store) -> None:
    with pytest.raises(WorkflowNotPending) as info:
        store.step_record(step("ghost", 1), executor_id="ex-1")
    assert info.value.status == "DELETED"


def test_steps_load_returns_every_field(store: Store) -> None:
    store.workflow_insert(wf("w1"))
    full = step("w1", 1, None, error=b"boom", child_workflow_id="c", started_at=3, completed_at=4)
    store.step_record(full, executor_id="ex-1")
    store.step_record(step("w1", 2), executor_id="ex-1")
    loaded, n = trips(store, lambda: store.steps_load("w1"))
    assert n == 1 and sorted(loaded) == [1, 2] and loaded[1] == full
    assert store.steps_load("missing") == {}


def test_steps_load_many_keys_every_id(store: Store) -> None:
    for wid in ("a", "b"):
        store.workflow_insert(wf(wid))
    store.step_record(step("a", 1), executor_id="ex-1")
    store.step_record(step("b", 2, b"b2"), executor_id="ex-1")
    loaded, n = trips(store, lambda: store.steps_load_many(["a", "b", "none"]))
    assert n == 1
    assert sorted(loaded["a"]) == [1] and loaded["b"][2].output == b"b2" and loaded["none"] == {}
    assert store.steps_load_many([]) == {}


def test_steps_list_in_function_id_order(store: Store) -> None:
    store.workflow_insert(wf("w1"))
    for fid in (3, 1, 2):
        store.step_record(step("w1", fid), executor_id="ex-1")
    listed, n = trips(store, lambda: store.steps_list("w1"))
    assert n == 1 and [s.function_id for s in listed] == [1, 2, 3]
    assert store.steps_list("missing") == []
