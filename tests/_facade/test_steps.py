"""Steps as DBOS users write them: retry controls, per-attempt time limits, the step's status,
steps run without a decorator, steps started or enqueued on their own, and class workflows."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from transact import DBOS, DBOSConfiguredInstance, Queue, SetWorkflowID, StepRetriesExceededError
from transact.errors import ConfigError, WorkflowCancelledError
from transact.models import StepStatus


def test_should_retry_false_stops_and_fails_with_the_original_error(dbos: type[DBOS]) -> None:
    calls: list[str] = []

    class Permanent(Exception):
        pass

    @DBOS.step(
        retries_allowed=True, interval_seconds=0, max_attempts=5, should_retry=lambda e: not isinstance(e, Permanent)
    )
    def flaky(kind: str) -> None:
        calls.append(kind)
        raise Permanent("no use retrying") if kind == "permanent" else ValueError("try again")

    @DBOS.workflow()
    def wf(kind: str) -> None:
        flaky(kind)

    with pytest.raises(Permanent, match="no use retrying"):
        wf("permanent")
    assert calls == ["permanent"]
    with pytest.raises(StepRetriesExceededError):
        wf("transient")
    assert calls.count("transient") == 5


def test_async_should_retry_may_be_a_coroutine(dbos: type[DBOS]) -> None:
    attempts: list[int] = []

    async def only_twice(exc: BaseException) -> bool:
        return len(attempts) < 2

    @DBOS.step(retries_allowed=True, interval_seconds=0, max_attempts=9, should_retry=only_twice)
    async def failing() -> None:
        attempts.append(1)
        raise RuntimeError("boom")

    @DBOS.workflow()
    async def wf() -> None:
        await failing()

    with pytest.raises(RuntimeError, match="boom"):
        asyncio.run(wf())
    assert len(attempts) == 2


def test_step_status_shows_the_attempt(dbos: type[DBOS]) -> None:
    seen: list[StepStatus | None] = []

    @DBOS.step(retries_allowed=True, interval_seconds=0, max_attempts=3)
    def retried() -> str:
        seen.append(DBOS.step_status)
        if len(seen) < 4:  # the plain step's status is seen[0]
            raise ValueError("again")
        return "ok"

    @DBOS.step()
    def plain() -> None:
        seen.append(DBOS.step_status)

    @DBOS.workflow()
    def wf() -> str:
        plain()
        return retried()

    assert DBOS.step_status is None
    assert wf() == "ok"
    assert seen == [StepStatus(1, None, None), StepStatus(2, 0, 3), StepStatus(2, 1, 3), StepStatus(2, 2, 3)]


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_an_attempt_past_its_timeout_fails_and_is_retried(dbos: type[DBOS], flavour: str) -> None:
    release = threading.Event()
    attempts: list[int] = []

    @DBOS.step(retries_allowed=True, interval_seconds=0, max_attempts=2, timeout_seconds=0.2)
    def slow_sync() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            release.wait(30)  # abandoned after 0.2 s: runs on in its thread, its result discarded
            return "late"
        return "second"

    @DBOS.step(retries_allowed=True, interval_seconds=0, max_attempts=2, timeout_seconds=0.2)
    async def slow_async() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            await asyncio.sleep(30)  # cancelled at the limit
        return "second"

    @DBOS.workflow()
    def sync_wf() -> str:
        return slow_sync()

    @DBOS.workflow()
    async def async_wf() -> str:
        return await slow_async()

    try:
        result = sync_wf() if flavour == "sync" else asyncio.run(async_wf())
    finally:
        release.set()
    assert result == "second" and len(attempts) == 2


def test_a_timed_out_step_without_retries_fails_with_a_timeout(dbos: type[DBOS]) -> None:
    release = threading.Event()

    @DBOS.step(timeout_seconds=0.1)
    def stuck() -> None:
        release.wait(30)

    @DBOS.workflow()
    def wf() -> None:
        stuck()

    try:
        with pytest.raises(TimeoutError, match=r"did not finish within 0\.1 s"):
            wf()
    finally:
        release.set()


def test_run_step_checkpoints_a_plain_function(dbos: type[DBOS]) -> None:
    calls: list[int] = []

    def fetch(n: int) -> int:
        calls.append(n)
        return n * 2

    async def fetch_async(n: int) -> int:
        calls.append(n)
        return n * 3

    @DBOS.workflow()
    def wf() -> int:
        return DBOS.run_step({"name": "fetch-step"}, fetch, 5) + DBOS.run_step(None, fetch, 1)

    @DBOS.workflow()
    async def awf() -> int:
        return await DBOS.run_step_async({"retries_allowed": True}, fetch_async, 2) + await DBOS.run_step_async(
            None, fetch, 4
        )

    with SetWorkflowID("run-step"):
        assert wf() == 12
    with SetWorkflowID("run-step"):
        assert wf() == 12  # replayed: the functions do not run again
    assert calls == [5, 1]
    names = [s["function_name"] for s in DBOS.list_workflow_steps("run-step")]
    assert names == ["fetch-step", fetch.__qualname__]
    assert asyncio.run(awf()) == 14
    with pytest.raises(ConfigError, match="unknown step option 'retries'"):
        DBOS.run_step({"retries": True}, fetch, 1)  # type: ignore[typeddict-unknown-key]


def test_steps_started_or_enqueued_directly_run_as_one_step_workflows(dbos: type[DBOS]) -> None:
    queue = Queue("step-q")
    calls: list[str] = []

    @DBOS.step()
    def index_document(url: str) -> int:
        calls.append(url)
        return len(url)

    @DBOS.step()
    async def index_async(url: str) -> int:
        return len(url) * 10

    with SetWorkflowID("started-step"):
        started = DBOS.start_workflow(index_document, "abc")
    enqueued = queue.enqueue(index_document, "abcd")
    assert started.get_result(timeout=10) == 3 and enqueued.get_result(timeout=10) == 4
    status = DBOS.get_workflow_status("started-step")
    assert status is not None and status.status == "SUCCESS" and status.name == index_document.__qualname__
    steps = DBOS.list_workflow_steps("started-step")
    assert [(s["function_id"], s["function_name"], s["output"]) for s in steps] == [(1, index_document.__qualname__, 3)]
    assert index_document("plain") == 5  # called outside a workflow: just runs

    async def main() -> int:
        handle = await queue.enqueue_async(index_async, "xy")
        return int(await handle.get_result(timeout=10))

    assert asyncio.run(main()) == 20
    assert sorted(calls) == ["abc", "abcd", "plain"]


def test_class_workflows_run_on_their_instance_or_class(dbos: type[DBOS]) -> None:
    queue = Queue("class-q")

    @DBOS.dbos_class()
    class Fetcher(DBOSConfiguredInstance):
        def __init__(self, base: str) -> None:
            self.base = base
            super().__init__(config_name=base)

        @DBOS.workflow()
        def fetch(self, path: str) -> str:
            return self.read(path)

        @DBOS.step()
        def read(self, path: str) -> str:
            return f"{self.base}/{path}"

        @classmethod
        @DBOS.workflow()
        def kind(cls, n: int) -> str:
            return f"{cls.__name__}:{n}"

        @staticmethod
        @DBOS.workflow()
        def twice(n: int) -> int:
            return n * 2

    fetcher = Fetcher("https://a.example")
    with SetWorkflowID("direct"):
        assert fetcher.fetch("x") == "https://a.example/x"
    started = DBOS.start_workflow(fetcher.fetch, "y")
    enqueued = queue.enqueue(fetcher.fetch, "z")
    assert started.get_result(timeout=10) == "https://a.example/y"
    assert enqueued.get_result(timeout=10) == "https://a.example/z"
    row: Any = DBOS.get_workflow_status(enqueued.workflow_id)
    assert (row.class_name, row.config_name) == (Fetcher.__qualname__, "https://a.example")
    assert row.input == (("z",), {})  # the instance is recorded by name, not pickled
    assert DBOS.start_workflow(Fetcher.kind, 3).get_result(timeout=10) == "Fetcher:3"
    assert queue.enqueue(Fetcher.kind, 4).get_result(timeout=10) == "Fetcher:4"
    assert DBOS.start_workflow(Fetcher.twice, 5).get_result(timeout=10) == 10
    # Resumed and forked runs find the instance again by its recorded name.
    forked = DBOS.fork_workflow(enqueued.workflow_id, 1)
    assert forked.get_result(timeout=10) == "https://a.example/z"


@pytest.mark.parametrize("canceller", ["dbos", "client"])
def test_cancelling_the_workflow_preempts_its_preemptible_step(dbos: type[DBOS], db_url: str, canceller: str) -> None:
    """The step's coroutine is cancelled at once (from this process or, through the database,
    another); nothing is recorded for it, so a resume runs it again."""
    started, interrupted = threading.Event(), threading.Event()
    mode = {"hang": True}

    @DBOS.step(preemptible=True)
    async def long_call() -> str:
        started.set()
        try:
            while mode["hang"]:
                await asyncio.sleep(0.01)
        except asyncio.CancelledError:
            interrupted.set()
            raise
        return "answered"

    @DBOS.workflow()
    async def wf() -> str:
        return await long_call()

    wid = f"preempted-{canceller}"
    with SetWorkflowID(wid):
        handle = DBOS.start_workflow(wf)
    assert started.wait(20)
    if canceller == "dbos":
        DBOS.cancel_workflow(wid)
    else:
        from transact import DBOSClient

        with DBOSClient(db_url) as client:
            client.cancel_workflow(wid)
    assert interrupted.wait(20), "the step was not interrupted"
    with pytest.raises(WorkflowCancelledError):
        handle.get_result(timeout=20)
    assert DBOS.list_workflow_steps(wid) == []  # nothing recorded for the interrupted step
    mode["hang"] = False
    assert DBOS.resume_workflow(wid).get_result(timeout=20) == "answered"


def test_a_preemptible_step_outside_cancellation_runs_normally(dbos: type[DBOS]) -> None:
    @DBOS.step(preemptible=True, retries_allowed=True, max_attempts=2, interval_seconds=0)
    async def fine(n: int) -> int:
        await asyncio.sleep(0)
        return n + 1

    @DBOS.workflow()
    async def wf() -> int:
        return await fine(1) + await DBOS.run_step_async({"preemptible": True}, fine, 10)

    async def main() -> int:
        with SetWorkflowID("preemptible-ok"):
            return await wf()

    assert asyncio.run(main()) == 2 + 11
    assert len(DBOS.list_workflow_steps("preemptible-ok")) == 2


def test_a_sync_step_cannot_be_preemptible(dbos: type[DBOS]) -> None:
    with pytest.raises(ConfigError, match="cannot be preemptible"):

        @DBOS.step(preemptible=True)
        def blocking() -> None:
            pass

    with pytest.raises(ConfigError, match="cannot be preemptible"):
        DBOS.run_step({"preemptible": True}, lambda: None)
    with pytest.raises(ConfigError, match="cannot be preemptible"):
        asyncio.run(DBOS.run_step_async({"preemptible": True}, lambda: None))
