"""Managing workflows: list filters and paging, steps, cancel, resume, fork, delete, index use."""

from __future__ import annotations

import asyncio
import contextlib
import pickle
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import wait_until
from transact import DBOS, DBOSClient, Queue, SetWorkflowID, WorkflowCancelledError, WorkflowNotFoundError
from transact.engine import admin
from transact.errors import ConfigError, WorkflowConflictError
from transact.storage import Store, open_store
from transact.storage.rows import StepRow, WorkflowRow

T0 = 1_700_000_000_000  # 2023-11-14T22:13:20Z


@pytest.fixture
def store(dbos: type[DBOS], db_url: str) -> Iterator[Store]:
    """A second connection to the launched app's database, for rows with chosen timestamps."""
    s = open_store(db_url)
    yield s
    s.close()


def put(store: Store, wid: str, *, status: str = "SUCCESS", name: str = "a", at: int = 0, **extra: Any) -> None:
    row = WorkflowRow(workflow_id=wid, status=status, name=name, created_at=T0 + at, updated_at=T0 + at, **extra)
    assert store.workflow_insert(row)[1]


def ids(statuses: list[Any]) -> list[str]:
    return [s.workflow_id for s in statuses]


# -- listing ------------------------------------------------------------------------------------
def test_list_filters_and_paging(store: Store) -> None:
    put(store, "ord-1", name="a", at=0, status="SUCCESS", app_version="v1")
    put(store, "ord-2", name="b", at=1000, status="ERROR", app_version="v1")
    put(store, "ord-3", name="a", at=2000, status="PENDING", queue_name="q1")
    put(store, "inv-1", name="b", at=3000, status="ENQUEUED", queue_name="q1", app_version="v2")
    put(store, "inv-2", name="a", at=4000, status="CANCELLED", queue_name="q2", parent_workflow_id="ord-1")
    put(store, "o_x%", name="c", at=5000, status="SUCCESS")  # LIKE wildcards in an id

    assert ids(DBOS.list_workflows()) == ["ord-1", "ord-2", "ord-3", "inv-1", "inv-2", "o_x%"]
    assert ids(DBOS.list_workflows(sort_desc=True, limit=2)) == ["o_x%", "inv-2"]
    assert ids(DBOS.list_workflows(limit=2, offset=2)) == ["ord-3", "inv-1"]
    assert ids(DBOS.list_workflows(offset=4)) == ["inv-2", "o_x%"]
    assert ids(DBOS.list_workflows(sort_desc=True, offset=5)) == ["ord-1"]
    assert ids(DBOS.list_workflows(status="SUCCESS")) == ["ord-1", "o_x%"]
    assert ids(DBOS.list_workflows(status=["ERROR", "CANCELLED"])) == ["ord-2", "inv-2"]
    assert ids(DBOS.list_workflows(name="b")) == ["ord-2", "inv-1"]
    assert ids(DBOS.list_workflows(name=["b", "c"], sort_desc=True)) == ["o_x%", "inv-1", "ord-2"]
    assert ids(DBOS.list_workflows(name="a", status="PENDING")) == ["ord-3"]
    assert ids(DBOS.list_workflows(workflow_id_prefix="ord-")) == ["ord-1", "ord-2", "ord-3"]
    assert ids(DBOS.list_workflows(workflow_id_prefix="o_")) == ["o_x%"]
    assert ids(DBOS.list_workflows(workflow_id_prefix="o_x%")) == ["o_x%"]
    assert ids(DBOS.list_workflows(workflow_id_prefix="zzz")) == []
    assert ids(DBOS.list_workflows(workflow_ids=["inv-2", "ord-1", "nope"])) == ["ord-1", "inv-2"]
    assert ids(DBOS.list_workflows(workflow_ids=[])) == []
    assert ids(DBOS.list_workflows(queue_name="q1")) == ["ord-3", "inv-1"]
    assert ids(DBOS.list_workflows(app_version="v1")) == ["ord-1", "ord-2"]
    assert ids(DBOS.list_workflows(parent_workflow_id="ord-1")) == ["inv-2"]
    # Times: ISO-8601, inclusive, "Z" or an offset or naive (UTC).
    assert ids(DBOS.list_workflows(start_time="2023-11-14T22:13:21Z", end_time="2023-11-14T22:13:23Z")) == [
        "ord-2",
        "ord-3",
        "inv-1",
    ]
    assert ids(DBOS.list_workflows(start_time="2023-11-14T23:13:24+01:00")) == ["inv-2", "o_x%"]
    assert ids(DBOS.list_workflows(end_time="2023-11-14T22:13:20")) == ["ord-1"]
    assert ids(DBOS.list_queued_workflows()) == ["ord-3", "inv-1"]
    assert ids(DBOS.list_queued_workflows(queue_name="q1", status="ENQUEUED")) == ["inv-1"]
    assert ids(DBOS.list_queued_workflows(queue_name="q2")) == []


def test_list_decodes_inputs_and_outputs_on_request(dbos: type[DBOS]) -> None:
    @DBOS.workflow()
    def double(x: int) -> int:
        return x * 2

    with SetWorkflowID("dbl"):
        assert double(21) == 42
    [full] = DBOS.list_workflows(workflow_ids=["dbl"])
    assert (full.input, full.output, full.error, full.status) == (((21,), {}), 42, None, "SUCCESS")
    assert full.name.endswith("double") and full.created_at > 1_600_000_000_000
    [light] = DBOS.list_workflows(workflow_ids=["dbl"], load_input=False, load_output=False)
    assert (light.input, light.output, light.status) == (None, None, "SUCCESS")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"status": "DONE"}, "status 'DONE' is not a workflow status"),
        ({"start_time": "yesterday"}, "start_time must be an ISO-8601 time"),
        ({"end_time": 5}, "end_time must be an ISO-8601 string"),
        ({"limit": -1}, "limit must be an int >= 0"),
        ({"offset": "3"}, "offset must be an int >= 0"),
        ({"name": 3}, "name must be a string or a list of strings"),
    ],
)
def test_list_rejects_bad_arguments(dbos: type[DBOS], kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        DBOS.list_workflows(**kwargs)


def test_list_rejects_unknown_filters(dbos: type[DBOS]) -> None:
    with pytest.raises(TypeError, match="unexpected keyword argument 'state'"):
        DBOS.list_workflows(state="SUCCESS")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match=r"list_queued_workflows\(\) got an unexpected keyword argument 'workflow_ids'"):
        DBOS.list_queued_workflows(workflow_ids=["x"])  # type: ignore[call-arg]


def test_list_queries_use_indexes(store: Store) -> None:
    """Newest 50 (optionally by status or name) walk an index in created_at order: no table scan.
    Realistic shares: 1 row in 20 is an ERROR, each of 10 names has 1 row in 10."""
    names = [f"name{i}" for i in range(10)]
    store.admin_insert_synthetic(
        count=40_000, id_prefix="syn-", names=names, statuses=["ERROR", *["SUCCESS"] * 19], now=T0
    )
    assert len(DBOS.list_workflows(limit=50, sort_desc=True, load_input=False)) == 50
    cases = {
        "ws_created_idx": admin.list_query(limit=50, sort_desc=True),
        "ws_status_created_idx": admin.list_query(limit=50, sort_desc=True, status="ERROR"),
        "ws_name_created_idx": admin.list_query(limit=50, sort_desc=True, name="name3"),
    }
    for index, query in cases.items():
        plan = store.workflows_explain(query)
        if store.dialect == "postgres":
            # The planner may also walk ws_created_idx and filter (cheap when the filter is common);
            # either way it reads rows in created_at order and stops at the limit: no full sort.
            assert index in plan or "ws_created_idx" in plan, plan
            assert "Seq Scan" not in plan and "Bitmap" not in plan, plan
            nodes = [line.strip().removeprefix("->").strip() for line in plan.splitlines()]
            assert not any(node.startswith("Sort  (") for node in nodes), plan  # a full sort node
        else:
            assert index in plan and "TEMP B-TREE FOR ORDER BY" not in plan, plan
    prefix_plan = store.workflows_explain(admin.list_query(workflow_id_prefix="syn-123", limit=50))
    if store.dialect == "postgres":
        assert "workflow_status_pkey" in prefix_plan and "Seq Scan" not in prefix_plan, prefix_plan
    else:
        assert "SEARCH workflow_status USING" in prefix_plan and "workflow_id>?" in prefix_plan, prefix_plan
    newest = DBOS.list_workflows(status="ERROR", limit=3, sort_desc=True, load_input=False)
    assert [w.workflow_id for w in newest] == ["syn-40000", "syn-39980", "syn-39960"]
    newest = DBOS.list_workflows(name="name3", offset=1, limit=2, sort_desc=True, load_input=False)
    assert [w.workflow_id for w in newest] == ["syn-39983", "syn-39973"]
    assert len(DBOS.list_workflows(workflow_id_prefix="syn-2999")) == 11


# -- steps --------------------------------------------------------------------------------------
def test_list_workflow_steps(dbos: type[DBOS]) -> None:
    @DBOS.step()
    def ok(x: int) -> int:
        return x + 1

    @DBOS.step()
    def bad() -> None:
        raise ValueError("no good")

    @DBOS.workflow()
    def child() -> str:
        return "kid"

    @DBOS.workflow()
    def parent() -> str:
        ok(1)
        with contextlib.suppress(ValueError):
            bad()
        return child()

    with SetWorkflowID("steps-1"):
        assert parent() == "kid"
    steps = DBOS.list_workflow_steps("steps-1")
    assert [s["function_id"] for s in steps] == [1, 2, 3]
    assert [s["function_name"].rsplit(".", 1)[-1] for s in steps] == ["ok", "bad", "child"]
    assert steps[0]["output"] == 2 and steps[0]["error"] is None and steps[0]["child_workflow_id"] is None
    assert isinstance(steps[1]["error"], ValueError) and str(steps[1]["error"]) == "no good"
    assert steps[2]["child_workflow_id"] == "steps-1-3"
    for s in steps:
        assert set(s) == {
            "function_id",
            "function_name",
            "output",
            "error",
            "child_workflow_id",
            "started_at_epoch_ms",
            "completed_at_epoch_ms",
        }
        assert s["started_at_epoch_ms"] <= s["completed_at_epoch_ms"]
    assert DBOS.list_workflow_steps("steps-1-3") == []
    with pytest.raises(WorkflowNotFoundError, match="'no-such'"):
        DBOS.list_workflow_steps("no-such")


# -- cancel and resume --------------------------------------------------------------------------
class Gate:
    """Steps that record each run; step 2 holds until released."""

    def __init__(self) -> None:
        self.runs: Counter[int] = Counter()
        self.release = threading.Event()

    def run(self, i: int) -> int:
        self.runs[i] += 1
        if i == 2:
            assert self.release.wait(20), "step 2 was never released"
        return i * 10


def three_step_workflow(gate: Gate) -> Any:
    @DBOS.step()
    def numbered(i: int) -> int:
        return gate.run(i)

    @DBOS.workflow()
    def three() -> int:
        return numbered(1) + numbered(2) + numbered(3)

    return three


def test_cancel_stops_after_current_step_and_resume_finishes(dbos: type[DBOS]) -> None:
    gate = Gate()
    three = three_step_workflow(gate)
    with SetWorkflowID("cancel-1"):
        handle = DBOS.start_workflow(three)
    wait_until(lambda: gate.runs[2] == 1, what="step 2 to start")
    DBOS.cancel_workflow("cancel-1")
    assert handle.get_status().status == "CANCELLED"
    gate.release.set()
    with pytest.raises(WorkflowCancelledError):
        handle.get_result(timeout=20)
    assert gate.runs == Counter({1: 1, 2: 1})  # step 3 never ran
    # step 2 finished after the cancel: its outcome is kept, so the resume does not run it again
    assert [s["function_id"] for s in DBOS.list_workflow_steps("cancel-1")] == [1, 2]
    DBOS.cancel_workflow("cancel-1")  # cancelling again changes nothing

    resumed = DBOS.resume_workflow("cancel-1")
    assert resumed.get_result(timeout=20) == 60
    assert gate.runs == Counter({1: 1, 2: 1, 3: 1})  # steps 1 and 2 replayed
    status = DBOS.get_workflow_status("cancel-1")
    assert status is not None and status.status == "SUCCESS" and status.recovery_attempts <= 1
    assert DBOS.resume_workflow("cancel-1").get_result() == 60  # finished: resume changes nothing
    assert gate.runs == Counter({1: 1, 2: 1, 3: 1})


def test_cancel_from_another_process_is_fenced_and_resume_is_adopted(dbos: type[DBOS], db_url: str) -> None:
    """A client (its own connections, no runtime) cancels: the running workflow learns it at its
    next checkpoint write; a client resume leaves it unowned and the live app adopts it."""
    gate = Gate()
    three = three_step_workflow(gate)
    with SetWorkflowID("cancel-2"):
        handle = DBOS.start_workflow(three)
    wait_until(lambda: gate.runs[2] == 1, what="step 2 to start")
    with DBOSClient(db_url) as client:
        client.cancel_workflow("cancel-2")
        gate.release.set()
        with pytest.raises(WorkflowCancelledError):
            handle.get_result(timeout=20)
        assert gate.runs == Counter({1: 1, 2: 1})
        assert client.get_workflow_status("cancel-2").status == "CANCELLED"  # type: ignore[union-attr]
        assert client.resume_workflow("cancel-2").get_result(timeout=30) == 60
    assert gate.runs == Counter({1: 1, 2: 1, 3: 1})  # step 2 finished after the cancel: kept, replayed


def test_cancel_and_resume_cover_child_workflows(dbos: type[DBOS]) -> None:
    gate = Gate()
    child = three_step_workflow(gate)

    @DBOS.workflow()
    def parent() -> int:
        return child() + 1

    with SetWorkflowID("tree"):
        handle = DBOS.start_workflow(parent)
    wait_until(lambda: gate.runs[2] == 1, what="the child's step 2 to start")
    DBOS.cancel_workflow("tree")
    assert [w.status for w in DBOS.list_workflows(workflow_ids=["tree", "tree-1"])] == ["CANCELLED", "CANCELLED"]
    gate.release.set()
    with pytest.raises(WorkflowCancelledError):
        handle.get_result(timeout=20)
    assert DBOS.resume_workflow("tree").get_result(timeout=20) == 61
    assert [w.status for w in DBOS.list_workflows(workflow_ids=["tree", "tree-1"])] == ["SUCCESS", "SUCCESS"]
    assert gate.runs == Counter({1: 1, 2: 1, 3: 1})


def test_resume_dead_lettered_and_queued_workflows(dbos: type[DBOS], store: Store) -> None:
    runs: list[int] = []

    @DBOS.step(name="first")
    def first() -> int:
        runs.append(1)
        return 5

    @DBOS.workflow(name="dead-lettered")
    def dead(x: int) -> int:
        return first() + x

    # A workflow that crashed too often: step 1 recorded, then MAX_RECOVERY_ATTEMPTS_EXCEEDED.
    me = DBOS._rt().executor_id
    put(store, "dlq-1", status="PENDING", name="dead-lettered", executor_id=me, inputs=pickle.dumps(((3,), {})))
    assert store.step_record(StepRow("dlq-1", 1, "first", pickle.dumps(5), None, None, T0, T0), executor_id=me) is None
    store.workflow_set_status("dlq-1", "MAX_RECOVERY_ATTEMPTS_EXCEEDED", T0)
    assert DBOS.resume_workflow("dlq-1").get_result(timeout=20) == 8
    assert runs == []  # step 1 came from its checkpoint
    assert DBOS.get_workflow_status("dlq-1").recovery_attempts <= 1  # type: ignore[union-attr]

    # A cancelled queued workflow goes back to its queue (its limits apply), unowned.
    put(store, "queued-1", status="CANCELLED", name="dead-lettered", queue_name="q", recovery_attempts=4)
    DBOS.resume_workflow("queued-1")
    status = DBOS.get_workflow_status("queued-1")
    assert status is not None and (status.status, status.executor_id, status.recovery_attempts) == ("ENQUEUED", None, 0)
    with pytest.raises(WorkflowNotFoundError, match="'nope'"):
        DBOS.resume_workflow("nope")


# -- fork ---------------------------------------------------------------------------------------
def test_fork_reuses_steps_before_start_step(dbos: type[DBOS]) -> None:
    runs: Counter[int] = Counter()

    @DBOS.step()
    def numbered(i: int, x: int) -> int:
        runs[i] += 1
        return i * x

    @DBOS.workflow()
    def four(x: int) -> list[int]:
        return [numbered(i, x) for i in range(1, 5)]

    with SetWorkflowID("orig"):
        assert four(10) == [10, 20, 30, 40]
    handle = DBOS.fork_workflow("orig", 2)
    assert handle.workflow_id != "orig"
    assert handle.get_result(timeout=20) == [10, 20, 30, 40]
    assert runs == Counter({1: 1, 2: 2, 3: 2, 4: 2})  # step 1 reused, steps 2-4 re-ran
    forked = handle.get_status()
    assert (forked.forked_from, forked.input, forked.status) == ("orig", ((10,), {}), "SUCCESS")
    assert (forked.executor_id, forked.recovery_attempts) == (DBOS._rt().executor_id, 0)
    assert [s["function_id"] for s in DBOS.list_workflow_steps(handle.workflow_id)] == [1, 2, 3, 4]
    assert ids(DBOS.list_workflows(forked_from="orig")) == [handle.workflow_id]

    with SetWorkflowID("fork-all"):
        assert DBOS.fork_workflow("orig", 1, application_version="v9").get_result(timeout=20) == [10, 20, 30, 40]
    assert runs == Counter({1: 2, 2: 3, 3: 3, 4: 3})
    assert DBOS.get_workflow_status("fork-all").app_version == "v9"  # type: ignore[union-attr]
    with pytest.raises(ConfigError, match=r"start_step \(1 re-runs every step\) must be an int >= 1"):
        DBOS.fork_workflow("orig", 0)
    with pytest.raises(WorkflowNotFoundError, match="'nope'"):
        DBOS.fork_workflow("nope", 1)
    with SetWorkflowID("fork-all"), pytest.raises(WorkflowConflictError, match="that id is taken"):
        DBOS.fork_workflow("orig", 1)


# -- delete -------------------------------------------------------------------------------------
def test_delete_workflow_and_children(dbos: type[DBOS]) -> None:
    @DBOS.step()
    def work() -> int:
        return 1

    @DBOS.workflow()
    def child() -> int:
        return work()

    @DBOS.workflow()
    def parent() -> int:
        return child() + child()

    for wid in ("del-1", "del-2"):
        with SetWorkflowID(wid):
            assert parent() == 2
    DBOS.delete_workflow("del-1")
    assert DBOS.get_workflow_status("del-1") is None
    assert ids(DBOS.list_workflows(workflow_id_prefix="del-1")) == ["del-1-1", "del-1-2"]
    DBOS.delete_workflow("del-2", delete_children=True)
    assert ids(DBOS.list_workflows(workflow_id_prefix="del-2")) == []
    with pytest.raises(WorkflowNotFoundError):
        DBOS.list_workflow_steps("del-2-1")
    with pytest.raises(WorkflowNotFoundError, match="'del-2'"):
        DBOS.delete_workflow("del-2")


# -- async variants -----------------------------------------------------------------------------
def test_async_variants(dbos: type[DBOS]) -> None:
    gate = Gate()
    three = three_step_workflow(gate)
    gate.release.set()

    async def main() -> None:
        with SetWorkflowID("async-1"):
            assert three() == 60
        assert ids(await DBOS.list_workflows_async(name=three.__qualname__)) == ["async-1"]
        assert len(await DBOS.list_workflow_steps_async("async-1")) == 3
        assert await DBOS.list_queued_workflows_async() == []
        forked = await DBOS.fork_workflow_async("async-1", 3)
        assert await forked.get_result() == 60
        status = await DBOS.get_workflow_status_async(forked.workflow_id)
        assert status is not None and status.forked_from == "async-1"
        gate.release.clear()
        with SetWorkflowID("async-2"):
            handle = await DBOS.start_workflow_async(three)
        await asyncio.to_thread(wait_until, lambda: gate.runs[2] == 2, 20)
        await DBOS.cancel_workflow_async("async-2")
        gate.release.set()
        resumed = await DBOS.resume_workflow_async("async-2")
        assert await resumed.get_result() == 60
        assert (await handle.get_status()).status == "SUCCESS"
        await DBOS.delete_workflow_async("async-2")
        assert await DBOS.get_workflow_status_async("async-2") is None

    asyncio.run(main())


def test_cancel_without_children_leaves_them_running(dbos: type[DBOS]) -> None:
    gate = threading.Event()
    child_started = threading.Event()

    @DBOS.workflow()
    def child() -> str:
        child_started.set()
        gate.wait(10)
        return "child done"

    @DBOS.workflow()
    def parent() -> str:
        handle = DBOS.start_workflow(child)
        DBOS.recv("never", timeout_seconds=30)
        return str(handle.get_result())

    with SetWorkflowID("cc-parent"):
        handle = DBOS.start_workflow(parent)
    assert child_started.wait(10)
    DBOS.cancel_workflow("cc-parent", cancel_children=False)
    with pytest.raises(WorkflowCancelledError):
        handle.get_result(timeout=10)
    gate.set()
    assert DBOS.retrieve_workflow("cc-parent-1").get_result(timeout=10) == "child done"


def test_resume_runs_a_queued_workflow_now_or_moves_it_to_another_queue(dbos: type[DBOS]) -> None:
    slow = Queue("slow-lane", concurrency=1)
    Queue("fast-lane")
    gate = threading.Event()

    @DBOS.workflow()
    def blocker() -> str:
        gate.wait(10)
        return "blocked"

    @DBOS.workflow()
    def job(n: int) -> int:
        return n

    first = slow.enqueue(blocker)  # holds the queue's one slot
    wait_until(lambda: DBOS.get_workflow_status(first.workflow_id).status == "PENDING")  # type: ignore[union-attr]
    waiting, moved = slow.enqueue(job, 1), slow.enqueue(job, 2)
    assert DBOS.get_workflow_status(waiting.workflow_id).status == "ENQUEUED"  # type: ignore[union-attr]
    assert DBOS.resume_workflow(waiting.workflow_id).get_result(timeout=10) == 1  # out of the queue, at once
    assert DBOS.get_workflow_status(waiting.workflow_id).queue_name is None  # type: ignore[union-attr]
    DBOS.resume_workflow(moved.workflow_id, queue_name="fast-lane")
    assert moved.get_result(timeout=10) == 2
    assert DBOS.get_workflow_status(moved.workflow_id).queue_name == "fast-lane"  # type: ignore[union-attr]
    gate.set()
    assert first.get_result(timeout=10) == "blocked"


def test_get_all_events_outside_and_inside_a_workflow(dbos: type[DBOS], db_url: str) -> None:
    reads: list[dict[str, Any]] = []

    @DBOS.workflow()
    def publisher() -> None:
        DBOS.set_event("a", 1)
        DBOS.set_event("b", {"x": 2})
        DBOS.set_event("a", 3)

    @DBOS.workflow()
    def reader(target: str) -> dict[str, Any]:
        seen = DBOS.get_all_events(target)
        reads.append(seen)
        return seen

    with SetWorkflowID("pub"):
        publisher()
    expected = {"a": 3, "b": {"x": 2}}
    assert DBOS.get_all_events("pub") == expected
    assert asyncio.run(DBOS.get_all_events_async("pub")) == expected
    with DBOSClient(db_url) as client:
        assert client.get_all_events("pub") == expected
        assert client.get_all_events("nobody") == {}
    with SetWorkflowID("reader"):
        assert reader("pub") == expected
    with SetWorkflowID("reader"):
        assert reader("pub") == expected  # replayed from its step
    assert len(reads) == 1
    assert [s["function_name"] for s in DBOS.list_workflow_steps("reader")] == ["DBOS.get_all_events"]


def test_get_result_accepts_a_polling_interval(dbos: type[DBOS]) -> None:
    @DBOS.workflow()
    def answer() -> int:
        return 42

    handle = DBOS.start_workflow(answer)
    assert handle.get_result(polling_interval_sec=0.5) == 42
    assert DBOS.get_result(handle.workflow_id, polling_interval_sec=0.5) == 42
    assert asyncio.run(DBOS.get_result_async(handle.workflow_id)) == 42
