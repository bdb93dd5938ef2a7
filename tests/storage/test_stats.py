"""StatsStore conformance (storage/stats.py), run on both drivers."""

from __future__ import annotations

from tests.storage.builders import queued, trips, wf
from transact.storage import Store
from transact.storage.stats import QueueDepth


def test_workflow_counts_group_by_status_and_name(store: Store) -> None:
    assert trips(store, store.stats_workflow_counts) == ([], 1)
    for i in range(3):
        store.workflow_insert(wf(f"a{i}", status="SUCCESS", name="alpha"))
    store.workflow_insert(wf("a-err", status="ERROR", name="alpha"))
    store.workflow_insert(wf("b1", status="PENDING", name="beta"))
    store.workflow_insert(queued("b2", name="beta"))
    counts, n = trips(store, store.stats_workflow_counts)
    assert n == 1
    assert sorted(counts) == [
        ("ENQUEUED", "beta", 1),
        ("ERROR", "alpha", 1),
        ("PENDING", "beta", 1),
        ("SUCCESS", "alpha", 3),
    ]


def test_queue_depths_count_enqueued_and_running_per_queue(store: Store) -> None:
    assert store.stats_queue_depths() == []
    store.workflow_insert(queued("q1", queue="mail", created_at=50))
    store.workflow_insert(queued("q2", queue="mail", created_at=20))
    store.workflow_insert(wf("q3", status="PENDING", queue_name="mail"))
    store.workflow_insert(wf("q4", status="PENDING", queue_name="video"))
    store.workflow_insert(wf("q5", status="SUCCESS", queue_name="video"))  # finished: not counted
    store.workflow_insert(wf("q6", status="DELAYED", queue_name="later", executor=None, available_at=99))
    store.workflow_insert(wf("plain", status="PENDING"))  # not queued
    depths, n = trips(store, store.stats_queue_depths)
    assert n == 1
    assert depths == [QueueDepth("mail", 2, 1, 20), QueueDepth("video", 0, 1, None)]
    assert store.stats_queue_depths(queue_names=["video", "absent"]) == [QueueDepth("video", 0, 1, None)]
    assert trips(store, lambda: store.stats_queue_depths(queue_names=[])) == ([], 0)
