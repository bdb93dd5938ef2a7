"""DBOS.rewind_workflow / DBOSClient.rewind_workflow (engine/rewind.py), on both databases: the
same id re-runs from a step, earlier steps replay, later ones run again."""

from __future__ import annotations

import asyncio
import threading

import pytest

from transact import DBOS, DBOSClient, Queue, SetWorkflowID
from transact.errors import ConfigError, WorkflowNotFoundError


def test_rewind_reruns_from_the_step_under_the_same_id(dbos: type[DBOS], db_url: str) -> None:
    runs: list[str] = []

    @DBOS.step()
    def work(label: str) -> str:
        runs.append(label)
        return f"{label}{len(runs)}"

    @DBOS.workflow()
    def three() -> str:
        return work("a") + work("b") + work("c")

    with SetWorkflowID("rw-1"):
        assert three() == "a1b2c3"
    handle = DBOS.rewind_workflow("rw-1", 2)
    assert handle.get_workflow_id() == "rw-1"
    assert handle.get_result() == "a1b4c5"  # step 1 replayed, steps 2 and 3 ran again
    assert runs == ["a", "b", "c", "b", "c"]
    assert [s["function_id"] for s in DBOS.list_workflow_steps("rw-1")] == [1, 2, 3]
    status = DBOS.get_workflow_status("rw-1")
    assert status is not None and status.status == "SUCCESS"

    with DBOSClient(db_url) as client:  # a client's rewind is run by the live application
        assert client.rewind_workflow("rw-1", 3).get_result() == "a1b4c6"

        async def twins() -> None:
            assert await (await DBOS.rewind_workflow_async("rw-1", 1)).get_result() == "a7b8c9"
            assert await (await client.rewind_workflow_async("rw-1", 3)).get_result() == "a7b8c10"

        asyncio.run(twins())
    assert runs.count("a") == 2


def test_rewind_puts_a_queued_workflow_back_in_a_queue(dbos: type[DBOS]) -> None:
    queue = Queue("rewind-q")
    other = Queue("rewind-other")
    assert other.name == "rewind-other"

    @DBOS.workflow()
    def queued(x: int) -> int:
        return x * 2

    handle = queue.enqueue(queued, 21)
    assert handle.get_result() == 42
    again = DBOS.rewind_workflow(handle.get_workflow_id(), 1, queue_name="rewind-other")
    assert again.get_result() == 42
    status = again.get_status()
    assert status.queue_name == "rewind-other"


def test_rewind_refuses_active_or_unknown_workflows_and_bad_steps(dbos: type[DBOS]) -> None:
    release = threading.Event()

    @DBOS.step()
    def wait() -> None:
        assert release.wait(30)

    @DBOS.workflow()
    def blocked() -> str:
        wait()
        return "done"

    with SetWorkflowID("rw-active"):
        handle = DBOS.start_workflow(blocked)
    try:
        with pytest.raises(ConfigError, match=r"it is PENDING.*cancel it first"):
            DBOS.rewind_workflow("rw-active", 1)
    finally:
        release.set()
    assert handle.get_result() == "done"
    with pytest.raises(WorkflowNotFoundError):
        DBOS.rewind_workflow("rw-missing", 1)
    for bad in (0, -1, "2"):
        with pytest.raises(ConfigError, match="start_step"):
            DBOS.rewind_workflow("rw-active", bad)  # type: ignore[arg-type]
    assert [s["function_id"] for s in DBOS.list_workflow_steps("rw-active")] == [1]  # nothing deleted
