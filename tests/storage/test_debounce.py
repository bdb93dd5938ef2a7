"""DebounceStore conformance (storage/debounce.py), run on both drivers."""

from __future__ import annotations

import threading
from dataclasses import replace

from tests.storage.builders import trips, wf
from transact.storage import Store
from transact.storage.rows import WorkflowRow

MARK = "transact.debounce:2:wf:k"


def call(wid: str, now: int, due_in: int = 100, inputs: bytes = b"x", mark: str = MARK) -> WorkflowRow:
    return wf(
        wid,
        executor=None,
        status="DELAYED",
        queue_name="q",
        deduplication_id=mark,
        inputs=inputs,
        created_at=now,
        updated_at=now,
        available_at=now + due_in,
    )


def test_calls_within_the_window_push_it_back_with_the_latest_inputs(store: Store) -> None:
    assert store.workflow_debounce(call("w1", 1000), max_wait_ms=None, now=1000) == ("w1", True)
    pushed, n = trips(store, lambda: store.workflow_debounce(call("w2", 1050, inputs=b"y"), max_wait_ms=None, now=1050))
    assert pushed == ("w1", False) and n == 1  # a push is one statement
    row = store.workflow_get("w1")
    assert row is not None and row.status == "DELAYED" and row.inputs == b"y" and row.available_at == 1150
    assert store.workflow_get("w2") is None


def test_the_maximum_wait_caps_the_due_time(store: Store) -> None:
    for n, now in enumerate((1000, 1080, 1160, 1240)):
        assert store.workflow_debounce(call(f"w{n}", now), max_wait_ms=250, now=now)[0] == "w0"
    row = store.workflow_get("w0")
    assert row is not None and row.available_at == 1250  # not 1340: 250 ms after the first call


def test_a_closed_window_is_never_pushed_the_next_call_opens_one(store: Store) -> None:
    store.workflow_debounce(call("w1", 1000), max_wait_ms=None, now=1000)
    # due (not promoted yet): closed
    assert store.workflow_debounce(call("w2", 1100), max_wait_ms=None, now=1100) == ("w2", True)
    old = store.workflow_get("w1")
    assert old is not None and old.status == "DELAYED" and old.deduplication_id is None and old.available_at == 1100
    # promoted and running: closed too
    store.queue_promote(queue_name="q", now=1300)
    store.queue_claim(queue_name="q", partition_key=None, executor_id="me", now=1300, max_rows=10)
    assert store.workflow_debounce(call("w3", 1300), max_wait_ms=None, now=1300) == ("w3", True)
    running = store.workflow_get("w2")
    assert running is not None and running.status == "PENDING" and running.deduplication_id is None


def test_keys_and_queues_have_their_own_windows(store: Store) -> None:
    assert store.workflow_debounce(call("a", 1000), max_wait_ms=None, now=1000)[1]
    assert store.workflow_debounce(call("b", 1000, mark=MARK + "2"), max_wait_ms=None, now=1000)[1]
    other = replace(call("c", 1000), queue_name="q2")
    assert store.workflow_debounce(other, max_wait_ms=None, now=1000) == ("c", True)


def test_a_taken_workflow_id_is_returned_unchanged(store: Store) -> None:
    store.workflow_insert(wf("taken", status="SUCCESS"))
    assert store.workflow_debounce(call("taken", 1000), max_wait_ms=None, now=1000) == ("taken", False)
    row = store.workflow_get("taken")
    assert row is not None and row.status == "SUCCESS"


def test_concurrent_openers_share_one_window(store: Store) -> None:
    results: list[tuple[str, bool]] = []
    barrier = threading.Barrier(6)

    def open_one(n: int) -> None:
        barrier.wait()
        results.append(store.workflow_debounce(call(f"w{n}", 1000), max_wait_ms=None, now=1000))

    threads = [threading.Thread(target=open_one, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(results) == 6
    assert len({wid for wid, _ in results}) == 1
    assert sum(opened for _, opened in results) == 1
