"""One start path: the row builder and the conflict translation every way of starting shares."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from transact import DBOS, DBOSClient, Queue, SetEnqueueOptions, SetWorkflowID
from transact._lib.states import Status
from transact.engine.starts import QueueSpec, new_row
from transact.errors import QueueDeduplicatedError, SerializationError, WorkflowConflictError


def test_new_row_shapes() -> None:
    direct = new_row(
        workflow_id="d", name="wf", inputs=b"x", now=1000, executor_id="ex", timeout_ms=50, deadline_at=1050
    )
    assert (direct.status, direct.executor_id, direct.started_at, direct.deadline_at) == (
        Status.PENDING,
        "ex",
        1000,
        1050,
    )
    queued = new_row(
        workflow_id="q",
        name="wf",
        inputs=b"x",
        now=1000,
        queue=QueueSpec("jobs", priority=3, app_version="v2"),
        executor_id="ex",
        app_version="v1",
        timeout_ms=50,
        deadline_at=1050,
    )
    # Queued work waits unowned; its timeout starts when a worker dequeues it.
    assert (queued.status, queued.executor_id, queued.started_at, queued.deadline_at) == (
        Status.ENQUEUED,
        None,
        None,
        None,
    )
    assert (queued.queue_name, queued.priority, queued.app_version, queued.timeout_ms) == ("jobs", 3, "v2", 50)
    delayed = new_row(workflow_id="l", name="wf", inputs=None, now=1000, queue=QueueSpec("jobs", delay_seconds=2.5))
    assert (delayed.status, delayed.available_at) == (Status.DELAYED, 3500)


def test_every_start_translates_an_id_conflict_the_same_way(dbos: type[DBOS], db_url: str) -> None:
    queue = Queue("starts-q")
    release = threading.Event()

    @DBOS.workflow()
    def first() -> str:
        release.wait(10)
        return "first"

    @DBOS.workflow()
    def other() -> str:
        return "other"

    with SetWorkflowID("taken"):
        handle = DBOS.start_workflow(first)
    messages: list[str] = []
    for start in (
        lambda: DBOS.start_workflow(other),
        lambda: queue.enqueue(other),
        lambda: other(),
    ):
        with SetWorkflowID("taken"), pytest.raises(WorkflowConflictError) as caught:
            start()
        messages.append(str(caught.value))
    with DBOSClient(db_url) as client, pytest.raises(WorkflowConflictError) as caught:
        client.enqueue({"workflow_name": other.__qualname__, "queue_name": "starts-q", "workflow_id": "taken"})
    messages.append(str(caught.value))
    assert len(set(messages)) == 1 and "already belongs to workflow" in messages[0]
    release.set()
    assert handle.get_result(timeout=10) == "first"


def test_deduplication_is_one_error_for_queues_and_clients(dbos: type[DBOS], db_url: str) -> None:
    queue = Queue("dedup-q")
    gate = threading.Event()

    @DBOS.workflow()
    def job(n: int) -> int:
        gate.wait(10)
        return n

    with SetEnqueueOptions(deduplication_id="once"):
        handle = queue.enqueue(job, 1)
    with SetEnqueueOptions(deduplication_id="once"), pytest.raises(QueueDeduplicatedError):
        queue.enqueue(job, 2)
    with DBOSClient(db_url) as client, pytest.raises(QueueDeduplicatedError):
        client.enqueue({"workflow_name": job.__qualname__, "queue_name": "dedup-q", "deduplication_id": "once"}, 3)
    gate.set()
    assert handle.get_result(timeout=10) == 1


def test_client_enqueue_names_the_unpicklable_argument_and_writes_nothing(dbos: type[DBOS], db_url: str) -> None:
    lock: Any = threading.Lock()
    with DBOSClient(db_url) as client:
        with pytest.raises(SerializationError, match=r"argument '#1' of workflow 'by-name'.*Nothing was started"):
            client.enqueue({"workflow_name": "by-name", "queue_name": "q", "workflow_id": "never"}, 1, lock)
        assert client.get_workflow_status("never") is None


def test_async_start_and_enqueue_run_on_the_one_path(dbos: type[DBOS]) -> None:
    queue = Queue("async-starts")

    @DBOS.workflow()
    async def doubled(n: int) -> int:
        return n * 2

    @DBOS.workflow()
    def tripled(n: int) -> int:
        return n * 3

    async def main() -> tuple[int, int, int, str]:
        with SetWorkflowID("async-started"):
            started = await DBOS.start_workflow_async(doubled, 4)
        enqueued = await queue.enqueue_async(tripled, 5)
        with SetWorkflowID("async-started"):  # the same id again: the first run's result
            again = await DBOS.start_workflow_async(doubled, 100)
        results = [await h.get_result(timeout=10) for h in (started, enqueued, again)]
        return results[0], results[1], results[2], started.workflow_id

    assert asyncio.run(main()) == (8, 15, 8, "async-started")
