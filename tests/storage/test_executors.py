"""ExecutorStore conformance (storage/executors.py), run on both drivers."""

from __future__ import annotations

from dataclasses import replace

from tests.storage.builders import Hints, executor, trips, wf
from transact.storage import Store


def test_register_inserts_or_replaces(store: Store) -> None:
    _, n = trips(store, lambda: store.executor_register(executor("e1")))
    assert n == 1
    store.executor_register(replace(executor("e1", started_at=5), pid=42, workflow_names="a\nb"))
    store.executor_register(executor("e0", started_at=3))
    listed = store.executor_list()
    assert [e.executor_id for e in listed] == ["e0", "e1"]  # by start
    assert listed[1].pid == 42 and listed[1].workflow_names == "a\nb"


def test_heartbeat_renews_only_a_running_executor(store: Store) -> None:
    store.executor_register(executor("e1"))
    ok, n = trips(store, lambda: store.executor_heartbeat("e1", 50, "x"))
    assert ok and n == 1
    store.executor_heartbeat("e1", 60)  # names kept when not given
    (row,) = store.executor_list()
    assert row.last_seen_at == 60 and row.workflow_names == "x"
    store.executor_set_state("e1", "DEAD")
    assert store.executor_heartbeat("e1", 70) is False
    assert store.executor_heartbeat("missing", 70) is False


def test_list_is_empty_at_first(store: Store) -> None:
    listed, n = trips(store, store.executor_list)
    assert listed == [] and n == 1


def test_set_state_with_a_condition(store: Store) -> None:
    store.executor_register(executor("e1"))
    hints = Hints(store)
    assert store.executor_set_state("e1", "STOPPING", only_if="DEAD") is False
    assert hints.take() == []
    assert store.executor_set_state("e1", "STOPPING", only_if="RUNNING") is True
    assert hints.take() == [("executor", "e1", "")]
    assert store.executor_list()[0].state == "STOPPING"
    assert store.executor_set_state("missing", "DEAD") is False


def test_an_executor_is_forgotten_only_once_idle(store: Store) -> None:
    store.executor_register(executor("gone"))
    store.workflow_insert(wf("left-behind", executor="gone"))
    hints = Hints(store)
    refused, n = trips(store, lambda: store.executor_delete("gone", only_if_idle=True))
    assert refused is False and n == 1 and hints.take() == []
    store.workflow_finish(
        workflow_id="left-behind", executor_id="gone", status="SUCCESS", output=b"1", error=None, now=2
    )
    assert store.executor_delete("gone", only_if_idle=True) is True
    assert ("executor", "gone", "") in hints.take()
    assert store.executor_list() == []
    store.executor_register(executor("busy"))
    store.workflow_insert(wf("running", executor="busy"))
    assert store.executor_delete("busy") is True  # unconditional
    assert store.executor_delete("busy") is False
