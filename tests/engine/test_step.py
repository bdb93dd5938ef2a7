"""Step retries: the sync and async twins behave alike, including waking on cancellation.

Written with the product's own pytest plugin (``transact_app``, ``wait_for_workflow``), launched on
the suite's database of each backend (tests/conftest.py points ``transact_database_url`` there)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from tests.conftest import wait_until
from transact import DBOS, SetWorkflowID, StepRetriesExceededError, WorkflowCancelledError
from transact.testing import wait_for_workflow


def test_retry_twins_retry_then_succeed_or_give_up_alike(transact_app: type[DBOS]) -> None:
    calls = {"sync": 0, "async": 0}

    @DBOS.step(retries_allowed=True, interval_seconds=0.001, max_attempts=3)
    def flaky_sync(succeed_on: int) -> str:
        calls["sync"] += 1
        if calls["sync"] < succeed_on:
            raise ValueError(f"attempt {calls['sync']}")
        return "ok"

    @DBOS.step(retries_allowed=True, interval_seconds=0.001, max_attempts=3)
    async def flaky_async(succeed_on: int) -> str:
        calls["async"] += 1
        if calls["async"] < succeed_on:
            raise ValueError(f"attempt {calls['async']}")
        return "ok"

    @DBOS.workflow()
    def sync_wf(succeed_on: int) -> str:
        return flaky_sync(succeed_on)

    @DBOS.workflow()
    async def async_wf(succeed_on: int) -> str:
        return await flaky_async(succeed_on)

    assert sync_wf(3) == "ok" and asyncio.run(async_wf(3)) == "ok"
    assert calls == {"sync": 3, "async": 3}
    calls.update(sync=0, **{"async": 0})
    with pytest.raises(StepRetriesExceededError):
        sync_wf(10)
    with pytest.raises(StepRetriesExceededError):
        asyncio.run(async_wf(10))
    assert calls == {"sync": 3, "async": 3}


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_a_retry_wait_ends_when_the_workflow_is_cancelled(transact_app: type[DBOS], flavour: str) -> None:
    """The wait between attempts (an hour here) is cut short by a cancel, in both twins."""
    failed_once = threading.Event()

    @DBOS.step(retries_allowed=True, interval_seconds=3600, max_attempts=2)
    def stuck_sync() -> None:
        failed_once.set()
        raise ValueError("retry me later")

    @DBOS.step(retries_allowed=True, interval_seconds=3600, max_attempts=2)
    async def stuck_async() -> None:
        failed_once.set()
        raise ValueError("retry me later")

    @DBOS.workflow()
    def sync_wf() -> None:
        stuck_sync()

    @DBOS.workflow()
    async def async_wf() -> None:
        await stuck_async()

    target: Any = sync_wf if flavour == "sync" else async_wf
    with SetWorkflowID(f"retry-cancel-{flavour}"):
        handle = transact_app.start_workflow(target)
    assert failed_once.wait(10)
    transact_app.cancel_workflow(handle.workflow_id)
    with pytest.raises(WorkflowCancelledError):
        handle.get_result(timeout=10)  # an un-woken wait would still sleep for an hour
    wait_until(lambda: DBOS._rt().runs.future(handle.workflow_id) is None, what="the run to leave the table")
    assert wait_for_workflow(handle.workflow_id, timeout=5).status == "CANCELLED"
