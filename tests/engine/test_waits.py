"""Waiting for the first of many workflows (wait_first) and the durable asyncio_wait, on both
databases: the first finisher wins, a workflow records the answer and a replay returns it without
reading or waiting, async forms, the client form, and bad input."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import wait_until
from transact import DBOS, DBOSClient, SetWorkflowID, WorkflowCancelledError, WorkflowNotFoundError
from transact._handles import WorkflowHandle
from transact._lib.states import Hint
from transact.engine import serialization, waits
from transact.engine import workflow as wf
from transact.engine.clock import now_ms
from transact.errors import ConfigError

GATES: dict[str, threading.Event] = {}


@pytest.fixture(autouse=True)
def _open_gates(dbos: type[DBOS]) -> Iterator[None]:
    """Every gate opens at the end of a test (before DBOS is destroyed), so no child is left blocked."""
    GATES.clear()
    yield
    for gate in list(GATES.values()):
        gate.set()


def gate(name: str) -> threading.Event:
    return GATES.setdefault(name, threading.Event())


def steps(wid: str) -> list[tuple[str, Any]]:
    rows = DBOS._rt().store.steps_load(wid)
    return [(r.function_name, serialization.loads(r.output)) for _, r in sorted(rows.items())]


def replay(wid: str) -> Any:
    """Run a finished workflow again from its checkpoints (what recovery does after a crash)."""
    rt = DBOS._rt()
    rt.store.workflow_set_status(wid, "PENDING", now_ms())
    row = rt.store.workflow_get(wid)
    assert row is not None and wf.resume(rt, row, max_attempts_checked=True)
    return rt.await_result(wid, timeout=20)


def status(wid: str) -> str:
    st = DBOS.get_workflow_status(wid)
    assert st is not None
    return st.status


def forbid_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    """From here on, any read of the watched workflows' statuses fails the test."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a recorded wait read the statuses again")

    monkeypatch.setattr(waits, "winner", refuse)
    monkeypatch.setattr(waits, "_partition", refuse)


def register_children() -> tuple[Any, Any, Any]:
    @DBOS.step()
    def wait_gate(name: str) -> None:
        assert gate(name).wait(30)

    @DBOS.workflow()
    def child(name: str) -> str:
        wait_gate(name)
        return name

    @DBOS.workflow()
    def failing(name: str) -> str:
        wait_gate(name)
        raise RuntimeError(f"{name} failed")

    @DBOS.step()
    async def wait_gate_async(name: str) -> None:
        assert await asyncio.to_thread(gate(name).wait, 30)

    @DBOS.workflow()
    async def child_async(name: str) -> str:
        await wait_gate_async(name)
        return name

    return child, failing, child_async


def start(fn: Any, wid: str) -> WorkflowHandle[Any]:
    with SetWorkflowID(wid):
        return DBOS.start_workflow(fn, wid)


# -- wait_first -----------------------------------------------------------------------------------
def test_wait_first_outside_a_workflow_returns_the_handle_that_finished(dbos: type[DBOS]) -> None:
    child, _, _ = register_children()
    slow, fast = start(child, "slow"), start(child, "fast")
    threading.Timer(0.2, gate("fast").set).start()  # finishes while wait_first is already waiting
    assert DBOS.wait_first([slow, fast]) is fast
    assert status("slow") == "PENDING"


def test_wait_first_picks_the_earliest_finisher_when_several_have_finished(dbos: type[DBOS]) -> None:
    child, _, _ = register_children()
    first = start(child, "first")
    gate("first").set()
    assert first.get_result() == "first"
    finished_at = DBOS._rt().store.workflow_get("first")
    assert finished_at is not None
    wait_until(lambda: now_ms() > finished_at.updated_at, what="the clock to move past the first finish")
    second = start(child, "second")
    gate("second").set()
    assert second.get_result() == "second"
    assert DBOS.wait_first([second, first]) is first
    assert DBOS.wait_first([first, second]) is first


def test_a_failed_or_cancelled_workflow_counts_as_finished(dbos: type[DBOS]) -> None:
    child, failing, _ = register_children()
    slow, bad = start(child, "slow"), start(failing, "bad")
    gate("bad").set()
    won = DBOS.wait_first([slow, bad])
    assert won is bad
    with pytest.raises(RuntimeError, match="bad failed"):
        won.get_result()
    other = start(child, "other")
    DBOS.cancel_workflow("other")
    assert DBOS.wait_first([slow, other]) is other


def test_in_a_workflow_the_winner_is_recorded_and_a_replay_returns_it_without_waiting(
    dbos: type[DBOS], monkeypatch: pytest.MonkeyPatch
) -> None:
    child, _, _ = register_children()

    @DBOS.workflow()
    def parent() -> tuple[str, Any]:
        with SetWorkflowID("p-slow"):
            slow = DBOS.start_workflow(child, "p-slow")
        with SetWorkflowID("p-fast"):
            fast = DBOS.start_workflow(child, "p-fast")
        won = DBOS.wait_first([slow, fast])
        return won.get_workflow_id(), won.get_result()

    with SetWorkflowID("parent"):
        handle = DBOS.start_workflow(parent)
    gate("p-fast").set()
    assert tuple(handle.get_result(timeout=20)) == ("p-fast", "p-fast")
    assert ("DBOS.wait_first", "p-fast") in steps("parent")
    assert status("p-slow") == "PENDING"  # still blocked: a fresh wait would have to wait for it
    forbid_waiting(monkeypatch)
    assert tuple(replay("parent")) == ("p-fast", "p-fast")
    assert status("p-slow") == "PENDING"
    assert [name for name, _ in steps("parent")].count("DBOS.wait_first") == 1


def test_wait_first_async_in_an_async_workflow_records_and_replays(
    dbos: type[DBOS], monkeypatch: pytest.MonkeyPatch
) -> None:
    child, _, child_async = register_children()

    @DBOS.workflow()
    async def parent_async() -> str:
        with SetWorkflowID("a-slow"):  # a thread-run child: asyncio.run below does not wait for it
            slow = await DBOS.start_workflow_async(child, "a-slow")
        with SetWorkflowID("a-fast"):
            fast = await DBOS.start_workflow_async(child_async, "a-fast")
        won = await DBOS.wait_first_async([slow, fast])
        assert won is fast
        return str(await won.get_result())

    async def main() -> str:
        with SetWorkflowID("parent-async"):
            handle = await DBOS.start_workflow_async(parent_async)
        asyncio.get_running_loop().call_later(0.2, gate("a-fast").set)
        return str(await handle.get_result(timeout=20))

    assert asyncio.run(main()) == "a-fast"
    assert ("DBOS.wait_first", "a-fast") in steps("parent-async")
    assert status("a-slow") == "PENDING"
    forbid_waiting(monkeypatch)
    assert replay("parent-async") == "a-fast"


def test_wait_first_async_outside_a_workflow(dbos: type[DBOS]) -> None:
    child, _, _ = register_children()
    start(child, "x-slow")
    start(child, "x-fast")

    async def main() -> str:
        handles = [await DBOS.retrieve_workflow_async("x-slow"), await DBOS.retrieve_workflow_async("x-fast")]
        asyncio.get_running_loop().call_later(0.2, gate("x-fast").set)
        won = await DBOS.wait_first_async(handles)
        assert won is handles[1]
        return won.get_workflow_id()

    assert asyncio.run(main()) == "x-fast"


def test_a_waiting_workflow_stops_promptly_when_cancelled(dbos: type[DBOS]) -> None:
    child, _, _ = register_children()
    start(child, "c-slow")

    @DBOS.workflow()
    def parent(child_id: str) -> str:
        return DBOS.wait_first([DBOS.retrieve_workflow(child_id)]).get_workflow_id()

    with SetWorkflowID("c-parent"):
        handle = DBOS.start_workflow(parent, "c-slow")
    watched = (Hint.DONE, "c-slow", "")
    wait_until(lambda: watched in DBOS._rt().waiters._by_key, what="the parent waiting on its child")
    time_started = time.monotonic()
    DBOS.cancel_workflow("c-parent", cancel_children=False)
    with pytest.raises(WorkflowCancelledError):
        handle.get_result(timeout=10)
    assert time.monotonic() - time_started < 5
    assert status("c-slow") == "PENDING"


# -- asyncio_wait ---------------------------------------------------------------------------------
def test_asyncio_wait_first_completed_first_exception_and_all_completed(dbos: type[DBOS]) -> None:
    child, failing, _ = register_children()
    for wid in ("w-slow", "w-fast", "w-next"):
        start(child, wid)
    start(failing, "w-bad")

    async def main() -> None:
        slow, fast, nxt, bad = [await DBOS.retrieve_workflow_async(w) for w in ("w-slow", "w-fast", "w-next", "w-bad")]
        asyncio.get_running_loop().call_later(0.1, gate("w-fast").set)
        done, pending = await DBOS.asyncio_wait([slow, fast], return_when=asyncio.FIRST_COMPLETED)
        assert (done, pending) == ({fast}, {slow})
        asyncio.get_running_loop().call_later(0.1, gate("w-bad").set)
        done, pending = await DBOS.asyncio_wait([slow, fast, bad], return_when=asyncio.FIRST_EXCEPTION)
        assert (done, pending) == ({fast, bad}, {slow})
        asyncio.get_running_loop().call_later(0.1, gate("w-next").set)
        asyncio.get_running_loop().call_later(0.2, gate("w-slow").set)
        done, pending = await DBOS.asyncio_wait([slow, nxt, fast])
        assert (done, pending) == ({slow, nxt, fast}, set())

    asyncio.run(main())


def test_asyncio_wait_in_a_workflow_records_its_deadline_and_split(
    dbos: type[DBOS], monkeypatch: pytest.MonkeyPatch
) -> None:
    child, _, _ = register_children()
    start(child, "t-slow")
    start(child, "t-fast")
    gate("t-fast").set()
    DBOS.retrieve_workflow("t-fast").get_result(timeout=20)

    @DBOS.workflow()
    async def splitter() -> list[list[str]]:
        slow = await DBOS.retrieve_workflow_async("t-slow")
        fast = await DBOS.retrieve_workflow_async("t-fast")
        done, pending = await DBOS.asyncio_wait([slow, fast], timeout=0.3)  # ALL_COMPLETED: times out
        return [sorted(h.workflow_id for h in done), sorted(h.workflow_id for h in pending)]

    async def main() -> Any:
        with SetWorkflowID("splitter"):
            handle = await DBOS.start_workflow_async(splitter)
        return await handle.get_result(timeout=20)

    assert asyncio.run(main()) == [["t-fast"], ["t-slow"]]
    names = dict(steps("splitter"))
    assert names["DBOS.asyncio_wait"] == ["t-fast"] and isinstance(names["DBOS.asyncio_wait.deadline"], int)
    forbid_waiting(monkeypatch)
    assert replay("splitter") == [["t-fast"], ["t-slow"]]


# -- DBOSClient -----------------------------------------------------------------------------------
def test_client_wait_first_sync_and_async(dbos: type[DBOS], db_url: str) -> None:
    child, _, _ = register_children()
    for wid in ("k-slow", "k-fast", "k-later"):
        start(child, wid)
    with DBOSClient(db_url) as client:
        slow, fast = client.retrieve_workflow("k-slow"), client.retrieve_workflow("k-fast")
        threading.Timer(0.2, gate("k-fast").set).start()
        assert client.wait_first([slow, fast]) is fast

        async def main() -> str:
            handles = [await client.retrieve_workflow_async(w) for w in ("k-slow", "k-later")]
            asyncio.get_running_loop().call_later(0.2, gate("k-later").set)
            won = await client.wait_first_async(handles)
            assert won is handles[1]
            return str(await won.get_result(timeout=10))

        assert asyncio.run(main()) == "k-later"
    assert status("k-slow") == "PENDING"


# -- bad input ------------------------------------------------------------------------------------
def test_bad_arguments_are_refused_at_the_call(dbos: type[DBOS], db_url: str) -> None:
    child, _, _ = register_children()
    handle = start(child, "b-1")
    with pytest.raises(ValueError, match="non-empty list"):
        DBOS.wait_first([])
    with pytest.raises(ConfigError, match=r"handles\[1\].*WorkflowHandle"):
        DBOS.wait_first([handle, "b-1"])  # type: ignore[list-item]
    with pytest.raises(ConfigError, match="non-empty list"):
        DBOS.wait_first(handle)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="polling_interval_sec"):
        DBOS.wait_first([handle], polling_interval_sec=0)
    with pytest.raises(WorkflowNotFoundError):
        DBOS.wait_first([handle, DBOS.retrieve_workflow("no-such-workflow", existing_workflow=False)])
    with pytest.raises(ConfigError, match="non-empty list"):
        asyncio.run(DBOS.wait_first_async([]))
    with pytest.raises(ConfigError, match="return_when"):
        asyncio.run(DBOS.asyncio_wait([handle], return_when="SOMETIME"))  # type: ignore[list-item]
    with pytest.raises(ConfigError, match="timeout"):
        asyncio.run(DBOS.asyncio_wait([handle], timeout=-1))  # type: ignore[list-item]
    with DBOSClient(db_url) as client:
        with pytest.raises(ConfigError, match="WorkflowHandleClient"):
            client.wait_first([handle])  # type: ignore[list-item]
        with pytest.raises(ValueError, match="non-empty list"):
            asyncio.run(client.wait_first_async([]))
    assert status("b-1") == "PENDING"
