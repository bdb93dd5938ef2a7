"""Workflows and steps: checkpoints, replay, idempotency, children, async, timeouts, bad input."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from typing import Any

import pytest

from tests.conftest import wait_until
from transact import (
    DBOS,
    SerializationError,
    SetWorkflowID,
    SetWorkflowTimeout,
    StepRetriesExceededError,
    WorkflowCancelledError,
    WorkflowNotFoundError,
)
from transact.errors import ConfigError, NotLaunchedError, WorkflowConflictError


def test_steps_checkpoint_and_replay(dbos: type[DBOS]) -> None:
    calls: list[str] = []

    @DBOS.step()
    def add(a: int, b: int) -> int:
        calls.append(f"add{a}")
        return a + b

    @DBOS.workflow()
    def wf(x: int) -> int:
        assert DBOS.workflow_id == "wf-1"
        return add(x, 1) + add(x, 2)

    with SetWorkflowID("wf-1"):
        assert wf(10) == 23
    assert calls == ["add10", "add10"]
    # Running the same id again replays the recorded result: no step runs twice.
    with SetWorkflowID("wf-1"):
        assert wf(10) == 23
    assert calls == ["add10", "add10"]
    status = DBOS.get_workflow_status("wf-1")
    assert status is not None and status.status == "SUCCESS" and status.output == 23 and status.input == ((10,), {})
    assert status.name.endswith("wf") and status.created_at > 1_600_000_000_000


def test_context_properties(dbos: type[DBOS]) -> None:
    seen: dict[str, Any] = {}

    @DBOS.step()
    def inner() -> None:
        seen["step_id"] = DBOS.step_id
        seen["wid_in_step"] = DBOS.workflow_id

    @DBOS.workflow()
    def wf() -> None:
        seen["wid"] = DBOS.workflow_id
        inner()
        inner()

    with SetWorkflowID("ctx-1"):
        wf()
    assert seen == {"wid": "ctx-1", "step_id": 2, "wid_in_step": "ctx-1"}
    assert DBOS.workflow_id is None and DBOS.step_id is None


def test_step_error_is_recorded_and_replayed(dbos: type[DBOS]) -> None:
    runs = []

    @DBOS.step()
    def boom() -> None:
        runs.append(1)
        raise ValueError("bad thing")

    @DBOS.workflow()
    def wf() -> str:
        try:
            boom()
        except ValueError as exc:
            return f"caught {exc}"
        return "no"

    with SetWorkflowID("err-1"):
        assert wf() == "caught bad thing"
    with SetWorkflowID("err-1"):
        assert wf() == "caught bad thing"
    assert runs == [1]


def test_workflow_error_status(dbos: type[DBOS]) -> None:
    @DBOS.workflow()
    def failing() -> None:
        raise KeyError("missing")

    handle = DBOS.start_workflow(failing)
    with pytest.raises(KeyError):
        handle.get_result()
    assert handle.get_status().status == "ERROR"
    assert isinstance(handle.get_status().error, KeyError)


def test_same_id_from_eight_threads_runs_once(dbos: type[DBOS]) -> None:
    runs: list[int] = []
    gate = threading.Event()

    @DBOS.workflow()
    def slow(x: int) -> int:
        runs.append(x)
        gate.wait(5)
        return x * 2

    results: list[Any] = []
    barrier = threading.Barrier(8)

    def call() -> None:
        barrier.wait()
        with SetWorkflowID("same-id"):
            results.append(slow(21))

    threads = [threading.Thread(target=call) for _ in range(8)]
    for t in threads:
        t.start()
    wait_until(lambda: runs, what="the body to start")
    gate.set()
    for t in threads:
        t.join(10)
    assert runs == [21]
    assert results == [42] * 8


def test_start_workflow_same_id_returns_same_workflow(dbos: type[DBOS]) -> None:
    runs: list[int] = []

    @DBOS.workflow()
    def once(x: int) -> int:
        runs.append(x)
        return x

    handles = []
    for _ in range(5):
        with SetWorkflowID("bg-1"):
            handles.append(DBOS.start_workflow(once, 7))
    assert [h.get_result() for h in handles] == [7] * 5
    assert runs == [7]


def test_id_reused_for_other_workflow_is_an_error(dbos: type[DBOS]) -> None:
    @DBOS.workflow()
    def first() -> int:
        return 1

    @DBOS.workflow()
    def second() -> int:
        return 2

    with SetWorkflowID("shared"):
        first()
    with SetWorkflowID("shared"), pytest.raises(WorkflowConflictError, match="already belongs"):
        second()


def test_child_workflows(dbos: type[DBOS]) -> None:
    runs: list[str] = []

    @DBOS.workflow()
    def child(x: int) -> int:
        runs.append(f"child{x}")
        return x + 100

    @DBOS.workflow()
    def parent() -> list[int]:
        a = child(1)
        h = DBOS.start_workflow(child, 2)
        return [a, h.get_result()]

    with SetWorkflowID("parent-1"):
        assert parent() == [101, 102]
    with SetWorkflowID("parent-1"):
        assert parent() == [101, 102]
    assert sorted(runs) == ["child1", "child2"]
    c1 = DBOS.get_workflow_status("parent-1-1")
    c2 = DBOS.get_workflow_status("parent-1-2")
    assert c1 is not None and c1.parent_workflow_id == "parent-1" and c1.output == 101
    assert c2 is not None and c2.output == 102


def test_step_retries_back_off_and_succeed(dbos: type[DBOS]) -> None:
    attempts: list[float] = []

    @DBOS.step(retries_allowed=True, interval_seconds=0.05, max_attempts=4, backoff_rate=2.0)
    def flaky() -> str:
        attempts.append(time.monotonic())
        if len(attempts) < 3:
            raise ConnectionError(f"try {len(attempts)}")
        return "ok"

    @DBOS.workflow()
    def wf() -> str:
        return flaky()

    assert wf() == "ok"
    assert len(attempts) == 3
    gaps = [b - a for a, b in itertools.pairwise(attempts)]
    assert gaps[0] >= 0.05 and gaps[1] >= 0.1  # interval, then interval * backoff_rate


def test_step_retries_exhausted_carry_every_error(dbos: type[DBOS]) -> None:
    @DBOS.step(retries_allowed=True, interval_seconds=0.01, max_attempts=3)
    def always() -> None:
        raise RuntimeError(f"fail at {time.monotonic()}")

    @DBOS.workflow()
    def wf() -> None:
        always()

    with pytest.raises(StepRetriesExceededError) as info:
        wf()
    assert len(info.value.errors) == 3
    assert all(isinstance(e, RuntimeError) for e in info.value.errors)
    assert "3 attempts" in str(info.value)


def test_timeout_cancels_workflow_and_children(dbos: type[DBOS]) -> None:
    @DBOS.step()
    def tick() -> None:
        time.sleep(0.05)

    @DBOS.workflow()
    def child_loop() -> None:
        for _ in range(1000):
            tick()

    @DBOS.workflow()
    def parent_loop() -> None:
        DBOS.start_workflow(child_loop)
        for _ in range(1000):
            tick()

    with SetWorkflowTimeout(0.5), SetWorkflowID("to-parent"):
        handle = DBOS.start_workflow(parent_loop)
    with pytest.raises(WorkflowCancelledError):
        handle.get_result(timeout=20)
    assert handle.get_status().status == "CANCELLED"
    wait_until(lambda: DBOS.get_workflow_status("to-parent-1").status == "CANCELLED", what="child cancelled")


def test_unserializable_argument_fails_at_call_site(dbos: type[DBOS], db_url: str) -> None:
    @DBOS.workflow()
    def takes(name: str, payload: Any) -> None:
        pass

    with SetWorkflowID("never"), pytest.raises(SerializationError, match="'payload'"):
        DBOS.start_workflow(takes, "ok", threading.Lock())
    assert DBOS.get_workflow_status("never") is None


def test_unknown_workflow_id(dbos: type[DBOS]) -> None:
    with pytest.raises(WorkflowNotFoundError, match="nope"):
        DBOS.retrieve_workflow("nope")
    with pytest.raises(WorkflowNotFoundError, match="nope"):
        DBOS.get_result("nope")


def test_async_workflows_and_steps(dbos: type[DBOS]) -> None:
    calls: list[int] = []

    @DBOS.step()
    async def double(x: int) -> int:
        calls.append(x)
        await asyncio.sleep(0)
        return x * 2

    @DBOS.workflow()
    async def wf(x: int) -> int:
        return await double(x) + await double(x + 1)

    async def main() -> tuple[int, int, int]:
        with SetWorkflowID("async-1"):
            direct = await wf(1)
        handle = await DBOS.start_workflow_async(wf, 5)
        with SetWorkflowID("async-1"):
            again = await wf(1)
        return direct, await handle.get_result(), again

    assert asyncio.run(main()) == (6, 22, 6)
    assert calls == [1, 2, 5, 6]
    # an async workflow started from sync code runs on the background loop
    assert DBOS.start_workflow(wf, 10).get_result() == 42


def test_round_trip_budgets(dbos: type[DBOS]) -> None:
    """One round trip to start, one per step checkpoint, one to finish."""
    store = dbos._rt().store

    @DBOS.step()
    def noop() -> None:
        pass

    @DBOS.workflow()
    def wf(n: int) -> None:
        for _ in range(n):
            noop()

    wf(0)  # warm up
    before = store.thread_round_trips()
    wf(0)
    base = store.thread_round_trips() - before
    before = store.thread_round_trips()
    wf(5)
    assert store.thread_round_trips() - before - base == 5
    assert base == 2  # insert + finish


def test_not_launched_error(config: dict[str, Any]) -> None:
    DBOS.destroy(destroy_registry=True)

    @DBOS.workflow()
    def wf() -> None:
        pass

    DBOS(config=config)
    try:
        with pytest.raises(NotLaunchedError, match=r"DBOS.launch\(\)"):
            wf()
    finally:
        DBOS.destroy(destroy_registry=True)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, "'name'"),
        ({"name": "bad name!"}, "'name'"),
        ({"name": "a", "system_database_url": "mysql://x"}, "'system_database_url'"),
        ({"name": "a", "sytem_database_url": "sqlite:///x"}, "'sytem_database_url'"),
        ({"name": "a", "lease_seconds": -1}, "'lease_seconds'"),
    ],
)
def test_invalid_config_names_the_key(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        DBOS(config=config)


def test_env_overrides_system_database_url(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'env.sqlite'}"
    monkeypatch.setenv("TRANSACT_SYSTEM_DATABASE_URL", url)
    DBOS.destroy(destroy_registry=True)
    dbos = DBOS(config={"name": "envtest", "system_database_url": "sqlite:///ignored.sqlite"})
    try:
        assert dbos._runtime.settings.system_database_url == url
    finally:
        DBOS.destroy(destroy_registry=True)


def test_default_is_sqlite_file_named_after_app(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TRANSACT_SYSTEM_DATABASE_URL", raising=False)
    DBOS.destroy(destroy_registry=True)
    DBOS(config={"name": "zero-setup"})
    try:
        DBOS.launch()

        @DBOS.workflow()
        def hello() -> str:
            return "hi"

        assert hello() == "hi"
        assert (tmp_path / "zero-setup.sqlite").exists()
    finally:
        DBOS.destroy(destroy_registry=True)


def test_stranded_workflows_view(dbos: type[DBOS]) -> None:
    from transact.storage.rows import WorkflowRow

    @DBOS.workflow()
    def known() -> None:
        pass

    store = dbos._rt().store
    store.workflow_insert(
        WorkflowRow(
            workflow_id="orphan-gone",
            status="PENDING",
            name="removed_workflow",
            executor_id="dead-executor",
            created_at=1,
            updated_at=1,
        )
    )
    stranded = DBOS.list_stranded_workflows()
    assert [s.workflow_id for s in stranded] == ["orphan-gone"]
    assert stranded[0].name == "removed_workflow"


def test_start_workflow_async_of_sync_workflow_keeps_context(dbos: type[DBOS]) -> None:
    @DBOS.workflow()
    def sync_child(x: int) -> int:
        return x + 1

    @DBOS.workflow()
    async def parent() -> int:
        handle = await DBOS.start_workflow_async(sync_child, 1)
        assert handle.workflow_id == f"{DBOS.workflow_id}-1"
        return int(await handle.get_result())

    async def main() -> tuple[str, int]:
        with SetWorkflowID("explicit-async"):
            handle = await DBOS.start_workflow_async(sync_child, 41)
        with SetWorkflowID("async-parent"):
            result = await parent()
        return handle.workflow_id, result + int(await handle.get_result())

    assert asyncio.run(main()) == ("explicit-async", 44)
    child = DBOS.get_workflow_status("async-parent-1")
    assert child is not None and child.parent_workflow_id == "async-parent"


def test_stale_cancel_signal_hands_the_workflow_back(dbos: type[DBOS]) -> None:
    """A cancel signal that the database does not confirm (e.g. a late notification after a resume)
    stops the local run, but the workflow is handed back to recovery and still finishes."""
    rt = dbos._rt()
    started = threading.Event()
    runs: list[int] = []

    @DBOS.step()
    def slow(i: int) -> int:
        runs.append(i)
        if i == 1:
            started.set()
            time.sleep(0.2)
        return i

    @DBOS.workflow()
    def wf() -> int:
        return slow(1) + slow(2)

    with SetWorkflowID("stale-cancel"):
        handle = DBOS.start_workflow(wf)
    assert started.wait(10)
    rt.runs.mark_cancelled(("stale-cancel",))  # as a stale hint would
    assert handle.get_result(timeout=30) == 3
    assert handle.get_status().status == "SUCCESS"
    assert runs.count(1) == 1  # the checkpointed step did not run again


def test_unpicklable_step_output_is_a_recorded_error_naming_the_step(dbos: type[DBOS]) -> None:
    calls: list[int] = []

    @DBOS.step()
    def returns_a_lock() -> Any:
        calls.append(1)
        return threading.Lock()

    @DBOS.workflow()
    def wf() -> Any:
        return returns_a_lock()

    with SetWorkflowID("lock-step"), pytest.raises(SerializationError, match=r"output of step .*returns_a_lock"):
        wf()
    with SetWorkflowID("lock-step"), pytest.raises(SerializationError, match="returns_a_lock"):
        wf()  # replayed from the recorded error: the step does not run again
    assert calls == [1]
