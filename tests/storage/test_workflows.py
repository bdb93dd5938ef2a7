"""WorkflowStore conformance (storage/workflows.py), run on both drivers."""

from __future__ import annotations

import threading

import pytest

from tests.storage.builders import Hints, queued, step, trips, wf
from transact.storage import OwnershipLost, Store
from transact.storage.rows import WorkflowRow


def test_insert_is_idempotent(store: Store) -> None:
    (stored, inserted), n = trips(store, lambda: store.workflow_insert(wf("w1")))
    assert inserted and stored.workflow_id == "w1" and n == 1
    (again, inserted), n = trips(store, lambda: store.workflow_insert(wf("w1", executor="ex-2")))
    assert not inserted and again.executor_id == "ex-1" and n == 2


def test_insert_hints_queued_work(store: Store) -> None:
    hints = Hints(store)
    store.workflow_insert(wf("plain"))
    store.workflow_insert(queued("ready", queue="q1"))
    store.workflow_insert(wf("later", executor=None, status="DELAYED", queue_name="q2", available_at=50))
    assert hints.take() == [("queue", "q1", ""), ("queue", "q2", "delayed")]


def test_child_insert_records_the_child_as_the_parents_step(store: Store) -> None:
    store.workflow_insert(wf("parent"))
    child = wf("child", executor="ex-1", parent_workflow_id="parent")
    stored, inserted = store.child_insert(child, parent_id="parent", function_id=1, executor_id="ex-1", now=5)
    assert inserted and stored == child
    recorded = store.steps_load("parent")[1]
    assert recorded.child_workflow_id == "child" and recorded.function_name == "wf"
    # the same start again (a replay): the recorded child comes back, nothing new is written
    stored, inserted = store.child_insert(child, parent_id="parent", function_id=1, executor_id="ex-1", now=6)
    assert not inserted and stored.workflow_id == "child"


def test_child_insert_is_fenced_on_the_parent(store: Store) -> None:
    store.workflow_insert(wf("parent"))
    with pytest.raises(OwnershipLost):
        store.child_insert(wf("child"), parent_id="parent", function_id=1, executor_id="intruder", now=5)
    assert store.workflow_get("child") is None  # the child's row rolled back with the step


def test_get_returns_every_field(store: Store) -> None:
    full = WorkflowRow(
        workflow_id="w1",
        status="PENDING",
        name="wf",
        class_name="C",
        config_name="cfg",
        queue_name="q",
        queue_partition_key="p",
        deduplication_id="d",
        priority=3,
        inputs=b"\x00in",
        output=b"out",
        error=b"err",
        executor_id="ex",
        app_version="v1",
        recovery_attempts=2,
        parent_workflow_id="parent",
        forked_from="src",
        created_at=10,
        updated_at=11,
        available_at=12,
        started_at=13,
        timeout_ms=14,
        deadline_at=15,
    )
    store.workflow_insert(full)
    got, n = trips(store, lambda: store.workflow_get("w1"))
    assert got == full and n == 1
    assert store.workflow_get("missing") is None


def test_finish_is_fenced_and_retry_safe(store: Store) -> None:
    store.workflow_insert(wf("w1"))
    hints = Hints(store)
    with pytest.raises(OwnershipLost):
        store.workflow_finish(workflow_id="w1", executor_id="ex-2", status="SUCCESS", output=b"1", error=None, now=2)
    _, n = trips(
        store,
        lambda: store.workflow_finish(
            workflow_id="w1", executor_id="ex-1", status="SUCCESS", output=b"1", error=None, now=2
        ),
    )
    assert n == 1 and ("done", "w1", "") in hints.take()
    # a retried finish whose first attempt committed is accepted
    store.workflow_finish(workflow_id="w1", executor_id="ex-1", status="SUCCESS", output=b"1", error=None, now=3)
    got = store.workflow_get("w1")
    assert got is not None and got.status == "SUCCESS" and got.output == b"1" and got.updated_at == 2


def test_set_status_is_unconditional(store: Store) -> None:
    store.workflow_insert(wf("w1", status="SUCCESS"))
    hints = Hints(store)
    _, n = trips(store, lambda: store.workflow_set_status("w1", "MAX_RECOVERY_ATTEMPTS_EXCEEDED", 7))
    got = store.workflow_get("w1")
    assert got is not None and got.status == "MAX_RECOVERY_ATTEMPTS_EXCEEDED" and got.updated_at == 7
    assert n == 1 and hints.take() == [("done", "w1", "")]


def test_cancel_reaches_descendants(store: Store) -> None:
    store.workflow_insert(wf("p"))
    store.workflow_insert(wf("c", executor=None, parent_workflow_id="p"))
    store.workflow_insert(wf("g", executor=None, status="ENQUEUED", parent_workflow_id="c"))
    store.workflow_insert(wf("done", status="SUCCESS", parent_workflow_id="p"))
    hints = Hints(store)
    assert sorted(store.workflow_cancel("p", 9)) == ["c", "g", "p"]
    assert sorted(hints.take()) == sorted([(k, w, "") for w in ("c", "g", "p") for k in ("done", "cancel")])
    assert store.workflow_cancel("p", 10) == []
    finished = store.workflow_get("done")
    assert finished is not None and finished.status == "SUCCESS"


def test_cancelled_lists_only_cancelled_ones(store: Store) -> None:
    for wid in ("a", "b", "c"):
        store.workflow_insert(wf(wid))
    store.workflow_cancel("b", 2)
    assert store.workflows_cancelled(["a", "b", "missing"]) == ["b"]
    result, n = trips(store, lambda: store.workflows_cancelled([]))
    assert result == [] and n == 0
    # More ids than a statement may have placeholders (Postgres's protocol allows 65,535, this
    # machine's SQLite 250,000): one read still.
    many = [f"running-{i}" for i in range(250_000)] + ["b"]
    result, n = trips(store, lambda: store.workflows_cancelled(many))
    assert result == ["b"] and n == 1


def test_pending_of_executors_oldest_first(store: Store) -> None:
    store.workflow_insert(wf("late", executor="e1", created_at=5))
    store.workflow_insert(wf("early", executor="e2", created_at=2))
    store.workflow_insert(wf("other", executor="e3"))
    store.workflow_insert(wf("finished", executor="e1", status="SUCCESS"))
    assert [r.workflow_id for r in store.workflows_pending(["e1", "e2"])] == ["early", "late"]
    assert store.workflows_pending([]) == []


def test_orphans_with_no_live_executor_include_owned_work(store: Store) -> None:
    """With nobody alive, every PENDING workflow is an orphan, owned or not (an empty NOT IN
    list would be NOT IN (NULL), which matches nothing)."""
    store.workflow_insert(wf("owned", executor="dead-ex"))
    store.workflow_insert(wf("unowned", executor=None))
    assert sorted(r.workflow_id for r in store.workflows_orphaned([], 10)) == ["owned", "unowned"]
    assert [r.workflow_id for r in store.workflows_orphaned(["dead-ex"], 10)] == ["unowned"]


def test_orphans_by_name_and_limit(store: Store) -> None:
    store.workflow_insert(wf("a", executor="dead", name="mine", created_at=1))
    store.workflow_insert(wf("b", executor="dead", name="mine", created_at=2))
    store.workflow_insert(wf("c", executor="dead", name="theirs", created_at=3))
    assert [r.workflow_id for r in store.workflows_orphaned(["live"], 1, names=["mine"])] == ["a"]
    assert [r.workflow_id for r in store.workflows_orphaned(["live"], 10, names=["theirs"])] == ["c"]
    assert store.workflows_orphaned(["live"], 10, names=[]) == []


def test_adopt_a_batch(store: Store) -> None:
    store.workflow_insert(wf("direct", executor="dead"))
    store.workflow_insert(wf("from-queue", executor="dead", queue_name="q", started_at=3))
    store.workflow_insert(wf("someone-elses", executor="alive"))
    store.workflow_insert(wf("unowned", executor=None))
    hints = Hints(store)
    adopted, n = trips(
        store,
        lambda: store.workflows_adopt(
            workflow_ids=["direct", "from-queue", "someone-elses"], from_executor="dead", to_executor="me", now=9
        ),
    )
    assert n == 1
    by_id = {r.workflow_id: r for r in adopted}
    assert set(by_id) == {"direct", "from-queue"}
    assert by_id["direct"].status == "PENDING" and by_id["direct"].executor_id == "me"
    assert by_id["from-queue"].status == "ENQUEUED" and by_id["from-queue"].executor_id is None
    assert by_id["from-queue"].started_at is None
    assert all(r.recovery_attempts == 1 and r.updated_at == 9 for r in adopted)
    assert hints.take() == [("queue", "q", "")]
    taken = store.workflows_adopt(workflow_ids=["unowned"], from_executor=None, to_executor="me", now=9)
    assert [r.executor_id for r in taken] == ["me"]
    assert store.workflows_adopt(workflow_ids=[], from_executor=None, to_executor="me", now=9) == []
    # More ids than a statement takes placeholders (a bulk resume names them): one statement still.
    store.workflow_insert(wf("last", executor=None))
    many = [f"gone-{i}" for i in range(250_000)] + ["last"]
    taken, n = trips(
        store, lambda: store.workflows_adopt(workflow_ids=many, from_executor=None, to_executor="me", now=9)
    )
    assert [r.workflow_id for r in taken] == ["last"] and n == 1


def test_only_one_adopter_wins(store: Store) -> None:
    for i in range(20):
        store.workflow_insert(wf(f"w{i}", executor="dead"))
    wins: dict[str, list[str]] = {"a": [], "b": []}

    def adopt(me: str) -> None:
        for i in range(20):
            if store.workflow_adopt(workflow_id=f"w{i}", from_executor="dead", to_executor=me, now=5) is not None:
                wins[me].append(f"w{i}")

    threads = [threading.Thread(target=adopt, args=(me,)) for me in wins]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(wins["a"] + wins["b"], key=lambda w: int(w[1:])) == [f"w{i}" for i in range(20)]
    assert not set(wins["a"]) & set(wins["b"])
    for i in range(20):
        got = store.workflow_get(f"w{i}")
        assert got is not None and got.recovery_attempts == 1


def test_rerun_own_counts_an_attempt_for_own_pending_work(store: Store) -> None:
    store.workflow_insert(wf("mine"))
    store.workflow_insert(wf("theirs", executor="ex-2"))
    store.workflow_insert(wf("finished", status="SUCCESS"))
    rows, n = trips(
        store, lambda: store.workflows_rerun_own(workflow_ids=["mine", "theirs", "finished"], executor_id="ex-1", now=4)
    )
    assert n == 1 and [(r.workflow_id, r.recovery_attempts) for r in rows] == [("mine", 1)]
    assert store.workflows_rerun_own(workflow_ids=[], executor_id="ex-1", now=4) == []


def test_release_gives_up_ownership(store: Store) -> None:
    for wid in ("a", "b", "c"):
        store.workflow_insert(wf(wid))
    store.workflow_insert(wf("other", executor="ex-2"))
    assert store.workflows_release(executor_id="ex-1", now=5, workflow_id="a") == 1
    a = store.workflow_get("a")
    assert a is not None and a.executor_id is None and a.status == "PENDING"
    assert store.workflows_release(executor_id="ex-1", now=5) == 2
    other = store.workflow_get("other")
    assert other is not None and other.executor_id == "ex-2"


def test_concurrent_checkpoints_keep_their_own_fence(store: Store) -> None:
    """Many threads checkpoint at once (on Postgres they share group-commit batches): each write
    succeeds or misses on its own merits, never because of a neighbour in the batch."""
    n = 60
    for i in range(n):
        store.workflow_insert(wf(f"w{i}"))
    outcomes: dict[int, str] = {}
    barrier = threading.Barrier(n)

    def checkpoint(i: int) -> None:
        barrier.wait()
        owner = "ex-1" if i % 3 else "intruder"  # every third writer does not own its workflow
        try:
            for fid in (1, 2, 3):
                store.step_record(step(f"w{i}", fid), executor_id=owner)
            store.workflow_finish(
                workflow_id=f"w{i}", executor_id=owner, status="SUCCESS", output=b"1", error=None, now=5
            )
            outcomes[i] = "ok"
        except OwnershipLost:
            outcomes[i] = "fenced"

    threads = [threading.Thread(target=checkpoint, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for i in range(n):
        got = store.workflow_get(f"w{i}")
        assert got is not None
        if i % 3:
            assert outcomes[i] == "ok" and got.status == "SUCCESS"
            assert sorted(store.steps_load(f"w{i}")) == [1, 2, 3]
        else:
            assert outcomes[i] == "fenced" and got.status == "PENDING"
            assert store.steps_load(f"w{i}") == {}
