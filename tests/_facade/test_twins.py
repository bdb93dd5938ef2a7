"""Every public sync/async twin of the DBOS facade, the queues and the handles behaves alike: one
scenario through the sync form and through the async form gives the same rows, statuses, values
and errors, on SQLite and Postgres (the ``dbos`` fixture runs each test on both).

Async forms are driven with ``asyncio.run``; an async workflow started with
``start_workflow_async`` runs on its caller's loop, so those scenarios run in one coroutine."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from tests.conftest import wait_until
from transact import (
    DBOS,
    ConfigError,
    NotInWorkflowError,
    Queue,
    QueueDeduplicatedError,
    SerializationError,
    SetEnqueueOptions,
    SetWorkflowID,
    SetWorkflowTimeout,
    TransactError,
    WorkflowCancelledError,
    WorkflowConflictError,
    WorkflowHandle,
    WorkflowHandleAsync,
    WorkflowNotFoundError,
    WorkflowStatus,
)
from transact.errors import WorkflowNotRegisteredError

FLAVOURS = ("sync", "async")
T = 20.0  # deadline (s) for anything that should happen at once
TIMES = ("created_at", "updated_at", "started_at", "deadline_at")
NOT_FOUND = "no workflow with id 'nope' exists in the system database"


# -- driving both forms --------------------------------------------------------------------------
def call(flavour: str, api: str, /, *args: Any, **kwargs: Any) -> Any:
    """``DBOS.<api>(...)``, or ``DBOS.<api>_async(...)`` run to completion."""
    if flavour == "sync":
        return getattr(DBOS, api)(*args, **kwargs)
    return asyncio.run(getattr(DBOS, f"{api}_async")(*args, **kwargs))


def both(api: str, /, *args: Any, **kwargs: Any) -> list[Any]:
    return [call(f, api, *args, **kwargs) for f in FLAVOURS]


def error_of(fn: Callable[[], Any]) -> tuple[type[BaseException], str]:
    try:
        fn()
    except (Exception, asyncio.CancelledError) as exc:
        return type(exc), str(exc)
    raise AssertionError("no error was raised")


def same_errors(expected: type[BaseException], run: Callable[[str], Any]) -> str:
    """``run(flavour)`` raises the same error (type and message) for both flavours; its message."""
    errors = [error_of(lambda f=f: run(f)) for f in FLAVOURS]
    assert errors[0] == errors[1], f"sync and async differ: {errors}"
    assert issubclass(errors[0][0], expected), errors[0]
    return errors[0][1]


def same_error(expected: type[BaseException], api: str, /, *args: Any, **kwargs: Any) -> str:
    return same_errors(expected, lambda f: call(f, api, *args, **kwargs))


def with_id(workflow_id: str, fn: Callable[[], Any]) -> Any:
    with SetWorkflowID(workflow_id):
        return fn()


def result(handle: Any, timeout: float = T) -> Any:
    if isinstance(handle, WorkflowHandleAsync):
        return asyncio.run(handle.get_result(timeout=timeout))
    return handle.get_result(timeout=timeout)


def status(handle: Any) -> WorkflowStatus:
    if isinstance(handle, WorkflowHandleAsync):
        return asyncio.run(handle.get_status())
    return handle.get_status()


def outcome(fn: Callable[[], Any]) -> Any:
    """The value, or the error as (type, message)."""
    try:
        return fn()
    except (Exception, asyncio.CancelledError) as exc:
        return type(exc), str(exc)


def view(s: WorkflowStatus | None, *drop: str) -> dict[str, Any] | None:
    """A status as comparable data (errors as (type, message))."""
    if s is None:
        return None
    d = dict(vars(s))
    d["error"] = None if s.error is None else (type(s.error), str(s.error))
    for key in drop:
        del d[key]
    return d


def shape(s: WorkflowStatus | None) -> dict[str, Any] | None:
    """A status without its id and times: twin runs of one scenario have the same shape."""
    d = view(s, "workflow_id", *TIMES)
    if d is not None and d["error"] is not None:
        d["error"] = d["error"][0]  # messages name the workflow id
    return d


def views(statuses: list[WorkflowStatus]) -> list[dict[str, Any] | None]:
    return [view(s) for s in statuses]


def steps_view(steps: list[dict[str, Any]], *, exact: bool = True) -> list[dict[str, Any]]:
    """Steps as comparable data. ``exact=False`` (twin runs) drops times and child ids, wake-up
    times of sleeps, and the deadlines of recv/get_event (recorded only when they had to wait)."""
    out = []
    for step in steps:
        d = dict(step)
        d["error"] = None if d["error"] is None else (type(d["error"]), str(d["error"]))
        if not exact:
            if d["function_name"].endswith(".deadline"):
                continue
            for key in ("started_at_epoch_ms", "completed_at_epoch_ms", "child_workflow_id"):
                del d[key]
            if d["function_name"] == "DBOS.sleep":
                d["output"] = "<wake-up time>"
        out.append(d)
    return out


def step_names(workflow_id: str) -> list[str]:
    return [s["function_name"] for s in DBOS.list_workflow_steps(workflow_id)]


async def collect(stream: AsyncIterator[Any]) -> list[Any]:
    return [value async for value in stream]


class Gate:
    """Workflow ``gated(x)``: a step, a step that blocks until ``release`` is set, a step."""

    def __init__(self, name: str = "gated") -> None:
        self.release = threading.Event()
        self.reached: set[str] = set()

        @DBOS.step(name=f"{name}.wait")
        def gate_step() -> str:
            self.reached.add(str(DBOS.workflow_id))
            assert self.release.wait(T), "gate never released"
            return "opened"

        @DBOS.step(name=f"{name}.tag")
        def tag(x: Any) -> str:
            return f"<{x}>"

        @DBOS.workflow(name=name)
        def gated(x: Any) -> str:
            first = tag(x)
            gate_step()
            return tag(first)

        self.gated = gated

    def wait_reached(self, *ids: str) -> None:
        wait_until(lambda: self.reached.issuperset(ids), T, what=f"{ids} at the gate")


# -- reading --------------------------------------------------------------------------------------
def test_list_workflows(dbos: type[DBOS]) -> None:
    @DBOS.step()
    def double(x: int) -> int:
        return 2 * x

    @DBOS.workflow()
    def ok(x: int) -> int:
        return double(x)

    @DBOS.workflow()
    def bad(x: int) -> int:
        raise ValueError(f"bad {x}")

    for i in range(3):
        assert with_id(f"ok-{i}", lambda i=i: ok(i)) == 2 * i
    with pytest.raises(ValueError, match="bad 7"):
        with_id("zz-bad", lambda: bad(7))

    cases: list[tuple[dict[str, Any], list[str]]] = [
        ({}, ["ok-0", "ok-1", "ok-2", "zz-bad"]),
        ({"sort_desc": True, "limit": 2}, ["zz-bad", "ok-2"]),
        ({"limit": 2, "offset": 1}, ["ok-1", "ok-2"]),
        ({"status": "ERROR"}, ["zz-bad"]),
        ({"status": ["SUCCESS", "ERROR"], "sort_desc": True}, ["zz-bad", "ok-2", "ok-1", "ok-0"]),
        ({"name": ok.__qualname__}, ["ok-0", "ok-1", "ok-2"]),
        ({"workflow_id_prefix": "ok-"}, ["ok-0", "ok-1", "ok-2"]),
        ({"workflow_ids": ["zz-bad", "ok-1", "nope"]}, ["ok-1", "zz-bad"]),
        ({"load_input": False, "load_output": False}, ["ok-0", "ok-1", "ok-2", "zz-bad"]),
        ({"start_time": "2000-01-01T00:00:00Z", "end_time": "2999-01-01T00:00:00"}, ["ok-0", "ok-1", "ok-2", "zz-bad"]),
        ({"end_time": "2000-01-01T00:00:00Z"}, []),
        ({"queue_name": "nowhere"}, []),
    ]
    for filters, ids in cases:
        sync, asyn = both("list_workflows", **filters)
        assert views(sync) == views(asyn), filters
        assert [s.workflow_id for s in sync] == ids, filters
    sync, asyn = both("list_workflows", workflow_ids=["ok-2", "zz-bad"])
    assert [(s.status, s.input, s.output) for s in asyn] == [("SUCCESS", ((2,), {}), 4), ("ERROR", ((7,), {}), None)]
    assert isinstance(asyn[1].error, ValueError) and str(asyn[1].error) == "bad 7"
    [light] = both("list_workflows", workflow_ids=["ok-2"], load_input=False, load_output=False)[1]
    assert (light.input, light.output) == (None, None)

    # Bad filters: the same error from both, before anything is read.
    assert "bogus" in same_error(TypeError, "list_workflows", bogus=1)
    assert "is not a workflow status" in same_error(ConfigError, "list_workflows", status="DONE")
    assert "limit must be an int >= 0" in same_error(ConfigError, "list_workflows", limit=-1)
    assert "ISO-8601" in same_error(ConfigError, "list_workflows", start_time="yesterday")
    assert "string or a list" in same_error(ConfigError, "list_workflows", name=5)


def test_list_queued_workflows(dbos: type[DBOS]) -> None:
    gate = Gate()
    q = Queue("twins-q", concurrency=1)

    @DBOS.workflow()
    def plain(x: int) -> int:
        return x

    assert plain(1) == 1  # not queued: never listed
    running = with_id("q-0", lambda: q.enqueue(gate.gated, 0))
    gate.wait_reached("q-0")
    waiting = [with_id(f"q-{i}", lambda i=i: q.enqueue(plain, i)) for i in (1, 2)]
    with SetEnqueueOptions(delay_seconds=600):
        with_id("q-later", lambda: q.enqueue(plain, 9))

    cases: list[tuple[dict[str, Any], list[tuple[str, str]]]] = [
        ({}, [("q-0", "PENDING"), ("q-1", "ENQUEUED"), ("q-2", "ENQUEUED"), ("q-later", "DELAYED")]),
        ({"queue_name": "twins-q", "sort_desc": True, "limit": 2}, [("q-later", "DELAYED"), ("q-2", "ENQUEUED")]),
        ({"queue_name": "other"}, []),
        ({"status": "ENQUEUED"}, [("q-1", "ENQUEUED"), ("q-2", "ENQUEUED")]),
        ({"status": ["DELAYED", "PENDING"]}, [("q-0", "PENDING"), ("q-later", "DELAYED")]),
        ({"name": "gated"}, [("q-0", "PENDING")]),
        ({"offset": 3, "load_input": False}, [("q-later", "DELAYED")]),
        ({"status": "SUCCESS"}, []),
    ]
    for filters, rows in cases:
        sync, asyn = both("list_queued_workflows", **filters)
        assert views(sync) == views(asyn), filters
        assert [(s.workflow_id, s.status) for s in sync] == rows, filters
    [first] = both("list_queued_workflows", status="PENDING")[1]
    assert (first.queue_name, first.input, first.output) == ("twins-q", ((0,), {}), None)

    # list_workflows-only filters are not queued filters, for either form.
    assert "workflow_ids" in same_error(TypeError, "list_queued_workflows", workflow_ids=["q-1"])
    assert "load_output" in same_error(TypeError, "list_queued_workflows", load_output=True)
    assert "is not a workflow status" in same_error(ConfigError, "list_queued_workflows", status="QUEUED")

    gate.release.set()
    assert [result(h) for h in (running, *waiting)] == ["<<0>>", 1, 2]
    assert [s.workflow_id for s in both("list_queued_workflows")[1]] == ["q-later"]


def test_list_workflow_steps(dbos: type[DBOS]) -> None:
    @DBOS.step()
    def fine() -> str:
        return "fine"

    @DBOS.step()
    def oops() -> None:
        raise KeyError("oops")

    @DBOS.workflow()
    def child() -> str:
        return "child"

    @DBOS.workflow()
    def parent() -> str:
        fine()
        with contextlib.suppress(KeyError):
            oops()
        handle = DBOS.start_workflow(child)
        DBOS.sleep(0)
        DBOS.set_event("k", "v")
        return handle.get_result()

    @DBOS.workflow()
    def nothing() -> None:
        return None

    assert with_id("steps-1", parent) == "child"
    with_id("steps-0", nothing)
    sync, asyn = both("list_workflow_steps", "steps-1")
    assert steps_view(sync) == steps_view(asyn)
    assert [(s["function_id"], s["function_name"], s["output"]) for s in sync[:2]] == [
        (1, fine.__qualname__, "fine"),
        (2, oops.__qualname__, None),
    ]
    assert isinstance(asyn[1]["error"], KeyError)
    assert asyn[2]["child_workflow_id"] == "steps-1-3"
    assert {"DBOS.sleep", "DBOS.set_event"} <= {s["function_name"] for s in asyn}
    assert both("list_workflow_steps", "steps-0") == [[], []]
    assert "'nope'" in same_error(WorkflowNotFoundError, "list_workflow_steps", "nope")


def test_get_workflow_status_and_retrieve_workflow(dbos: type[DBOS]) -> None:
    gate = Gate()
    q = Queue("twins-later")

    @DBOS.workflow()
    def ok(x: int) -> int:
        return x + 1

    @DBOS.workflow()
    def bad() -> None:
        raise RuntimeError("broken")

    with_id("r-ok", lambda: ok(1))
    with pytest.raises(RuntimeError):
        with_id("r-bad", bad)
    gated = with_id("r-gated", lambda: DBOS.start_workflow(gate.gated, "g"))
    gate.wait_reached("r-gated")
    with SetEnqueueOptions(delay_seconds=600):
        with_id("r-later", lambda: q.enqueue(ok, 5))

    for wid in ("r-ok", "r-bad", "r-gated", "r-later", "nope"):
        sync, asyn = both("get_workflow_status", wid)
        assert view(sync) == view(asyn), wid
    assert [s and s.status for s in both("get_workflow_status", "r-bad")] == ["ERROR", "ERROR"]
    assert [s and s.status for s in both("get_workflow_status", "r-gated")] == ["PENDING", "PENDING"]
    assert both("get_workflow_status", "nope") == [None, None]

    handles = both("retrieve_workflow", "r-ok")
    assert [type(h) for h in handles] == [WorkflowHandle, WorkflowHandleAsync]
    assert [h.get_workflow_id() for h in handles] == ["r-ok", "r-ok"]
    assert [result(h) for h in handles] == [2, 2]
    assert view(status(handles[0])) == view(status(handles[1])) == view(DBOS.get_workflow_status("r-ok"))
    failed = [outcome(lambda h=h: result(h)) for h in both("retrieve_workflow", "r-bad")]
    assert failed == [(RuntimeError, "broken")] * 2
    # Unfinished (and not running here): both time out alike.
    later = both("retrieve_workflow", "r-later")
    timeouts = [outcome(lambda h=h: result(h, timeout=0.1)) for h in later]
    assert timeouts == [(TimeoutError, "workflow 'r-later' did not finish within 0.1 s")] * 2
    assert [view(status(h)) for h in later] == [view(DBOS.get_workflow_status("r-later"))] * 2

    # Unknown ids: refused at once, or (existing_workflow=False) a handle that finds nothing.
    assert "'nope'" in same_error(WorkflowNotFoundError, "retrieve_workflow", "nope")
    blind = both("retrieve_workflow", "nope", existing_workflow=False)
    assert [type(h) for h in blind] == [WorkflowHandle, WorkflowHandleAsync]
    assert [error_of(lambda h=h: status(h)) for h in blind] == [(WorkflowNotFoundError, NOT_FOUND)] * 2
    assert [error_of(lambda h=h: result(h, timeout=1)) for h in blind] == [(WorkflowNotFoundError, NOT_FOUND)] * 2

    running = both("retrieve_workflow", "r-gated")
    gate.release.set()
    assert [result(h) for h in (*running, gated)] == ["<<g>>"] * 3


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_a_timed_out_get_result_leaves_the_run_to_other_waiters(dbos: type[DBOS], flavour: str) -> None:
    """A handle's ``get_result(timeout=...)`` that times out only ends that wait: the run goes on,
    and every other handle of it (the start handle, sync and async ones) still gets its result."""
    gate = Gate()
    started = with_id("t-1", lambda: DBOS.start_workflow(gate.gated, "t"))
    gate.wait_reached("t-1")
    impatient = call(flavour, "retrieve_workflow", "t-1")
    try:
        seen = {
            "impatient, timed out": outcome(lambda: result(impatient, timeout=0.1)),
            "start handle, timed out": outcome(lambda: result(started, timeout=0.1)),
        }
    finally:
        gate.release.set()
    seen["start handle"] = outcome(lambda: result(started))
    seen["DBOS.get_result"] = outcome(lambda: DBOS.get_result("t-1"))
    sync, asyn = both("retrieve_workflow", "t-1")
    seen["sync handle"] = outcome(lambda: result(sync))
    seen["async handle"] = outcome(lambda: result(asyn))
    seen["impatient"] = outcome(lambda: result(impatient))
    timed_out = (TimeoutError, "workflow 't-1' did not finish within 0.1 s")
    assert seen == {
        "impatient, timed out": timed_out,
        "start handle, timed out": timed_out,
        "start handle": "<<t>>",
        "DBOS.get_result": "<<t>>",
        "sync handle": "<<t>>",
        "async handle": "<<t>>",
        "impatient": "<<t>>",
    }


# -- steering ------------------------------------------------------------------------------------
def test_cancel_workflow(dbos: type[DBOS]) -> None:
    gate = Gate()
    q = Queue("twins-cancel")

    @DBOS.workflow()
    def done() -> str:
        return "done"

    starts = {f: with_id(f"c-{f}", lambda: DBOS.start_workflow(gate.gated, "x")) for f in FLAVOURS}
    gate.wait_reached("c-sync", "c-async")
    with SetEnqueueOptions(delay_seconds=600):
        for f in FLAVOURS:
            with_id(f"cq-{f}", lambda: q.enqueue(gate.gated, "y"))
    with_id("c-done", done)
    try:
        assert [call(f, "cancel_workflow", f"c-{f}") for f in FLAVOURS] == [None, None]  # running here
        assert [call(f, "cancel_workflow", f"cq-{f}") for f in FLAVOURS] == [None, None]  # waiting in a queue
    finally:
        gate.release.set()

    # Running ones stop at their next step; queued ones never start.
    assert [error_of(lambda h=h: result(h))[0] for h in starts.values()] == [WorkflowCancelledError] * 2
    for prefix, steps in (("c-", ["gated.tag", "gated.wait"]), ("cq-", [])):  # a step that finished is kept
        cancelled = [DBOS.get_workflow_status(f"{prefix}{f}") for f in FLAVOURS]
        assert [s and s.status for s in cancelled] == ["CANCELLED"] * 2
        assert shape(cancelled[0]) == shape(cancelled[1])
        assert [step_names(f"{prefix}{f}") for f in FLAVOURS] == [steps, steps]
        ids = [f"{prefix}{f}" for f in FLAVOURS]
        outcomes = [error_of(lambda wid=wid: result(DBOS.retrieve_workflow(wid)))[0] for wid in ids]
        assert outcomes == [WorkflowCancelledError] * 2

    # A finished workflow is left as it is; an unknown id is refused.
    assert both("cancel_workflow", "c-done") == [None, None]
    status_done = DBOS.get_workflow_status("c-done")
    assert status_done is not None and (status_done.status, status_done.output) == ("SUCCESS", "done")
    assert "'nope'" in same_error(WorkflowNotFoundError, "cancel_workflow", "nope")


def test_resume_workflow(dbos: type[DBOS]) -> None:
    runners, blocker = Gate("runner"), Gate("blocker")
    q = Queue("twins-resume", concurrency=1)

    @DBOS.workflow()
    def done() -> str:
        return "done"

    block = with_id("rs-block", lambda: q.enqueue(blocker.gated, "b"))
    blocker.wait_reached("rs-block")
    starts = [with_id(f"rs-run-{f}", lambda: DBOS.start_workflow(runners.gated, "x")) for f in FLAVOURS]
    runners.wait_reached("rs-run-sync", "rs-run-async")
    for f in FLAVOURS:
        with_id(f"rs-q-{f}", lambda: q.enqueue(runners.gated, "y"))  # behind the blocker
        DBOS.cancel_workflow(f"rs-run-{f}")
        DBOS.cancel_workflow(f"rs-q-{f}")
    runners.release.set()
    assert [error_of(lambda h=h: result(h))[0] for h in starts] == [WorkflowCancelledError] * 2

    try:
        # A cancelled run continues from its checkpoints, here and now.
        resumed = [call(f, "resume_workflow", f"rs-run-{f}") for f in FLAVOURS]
        assert [type(h) for h in resumed] == [WorkflowHandle, WorkflowHandleAsync]
        assert [h.get_workflow_id() for h in resumed] == ["rs-run-sync", "rs-run-async"]
        assert [result(h) for h in resumed] == ["<<x>>", "<<x>>"]
        assert shape(status(resumed[0])) == shape(status(resumed[1]))
        assert [step_names(h.workflow_id) for h in resumed] == [["runner.tag", "runner.wait", "runner.tag"]] * 2

        # A cancelled queued workflow rejoins its queue (still held by the blocker).
        requeued = [call(f, "resume_workflow", f"rs-q-{f}") for f in FLAVOURS]
        assert [type(h) for h in requeued] == [WorkflowHandle, WorkflowHandleAsync]
        waiting = [status(h) for h in requeued]
        assert [(s.status, s.queue_name) for s in waiting] == [("ENQUEUED", "twins-resume")] * 2
        assert shape(waiting[0]) == shape(waiting[1])
    finally:
        blocker.release.set()
    assert [result(h) for h in (*requeued, block)] == ["<<y>>", "<<y>>", "<<b>>"]
    assert shape(status(requeued[0])) == shape(status(requeued[1]))

    # Other statuses are left as they are; unknown ids are refused.
    with_id("rs-done", done)
    again = both("resume_workflow", "rs-done")
    assert [result(h) for h in again] == ["done", "done"]
    assert [status(h).status for h in again] == ["SUCCESS", "SUCCESS"]
    assert step_names("rs-done") == []
    assert "'nope'" in same_error(WorkflowNotFoundError, "resume_workflow", "nope")


def test_fork_workflow(dbos: type[DBOS]) -> None:
    runs: list[str] = []

    @DBOS.step()
    def add(tag: str, x: int) -> int:
        runs.append(tag)
        return x + 1

    @DBOS.workflow()
    def three(x: int) -> int:
        return add("c", add("b", add("a", x)))

    assert with_id("f-src", lambda: three(0)) == 3
    [source_step, *_] = DBOS.list_workflow_steps("f-src")
    runs.clear()
    forks = [with_id(f"f-{f}", lambda f=f: call(f, "fork_workflow", "f-src", 2)) for f in FLAVOURS]
    assert [type(h) for h in forks] == [WorkflowHandle, WorkflowHandleAsync]
    assert [h.get_workflow_id() for h in forks] == ["f-sync", "f-async"]
    assert [result(h) for h in forks] == [3, 3]
    assert sorted(runs) == ["b", "b", "c", "c"]  # step 1 reused by both forks
    statuses = [status(h) for h in forks]
    assert [(s.forked_from, s.input) for s in statuses] == [("f-src", ((0,), {}))] * 2
    assert shape(statuses[0]) == shape(statuses[1])
    fork_steps = [DBOS.list_workflow_steps(h.workflow_id) for h in forks]
    assert steps_view(fork_steps[0], exact=False) == steps_view(fork_steps[1], exact=False)
    assert [steps[0] for steps in fork_steps] == [source_step] * 2  # copied as recorded

    # Past the last step: everything reused; without SetWorkflowID: a new id.
    runs.clear()
    replays = both("fork_workflow", "f-src", 10)
    assert [result(h) for h in replays] == [3, 3] and runs == []
    assert len({h.workflow_id for h in replays} | {"f-src"}) == 3

    # The same refusals.
    assert "must be an int >= 1" in same_error(ConfigError, "fork_workflow", "f-src", 0)
    assert "must be an int >= 1" in same_error(ConfigError, "fork_workflow", "f-src", "2")
    assert "application_version" in same_error(ConfigError, "fork_workflow", "f-src", 1, application_version=5)
    assert "'nope'" in same_error(WorkflowNotFoundError, "fork_workflow", "nope", 1)
    # A taken id, refused alike however often it is tried (a refusal leaves the store usable).
    conflict = (WorkflowConflictError, "cannot fork workflow 'f-src' as 'f-sync': that id is taken; choose another id")
    tries = [lambda f=f: with_id("f-sync", lambda: call(f, "fork_workflow", "f-src", 1)) for f in FLAVOURS * 2]
    assert [error_of(fn) for fn in tries] == [conflict] * 4
    assert [result(h) for h in both("fork_workflow", "f-src", 3)] == [3, 3]


def test_delete_workflow(dbos: type[DBOS]) -> None:
    @DBOS.workflow()
    def child() -> int:
        return 1

    @DBOS.workflow()
    def parent() -> int:
        return child() + child()

    @DBOS.step()
    def note() -> str:
        return "noted"

    @DBOS.workflow()
    def chatty() -> None:
        note()
        DBOS.set_event("k", "v")

    for f in FLAVOURS:
        for kind in ("keep", "all"):
            assert with_id(f"d-{kind}-{f}", parent) == 2
        with_id(f"d-chatty-{f}", chatty)

    def remaining(prefix: str) -> list[str]:
        return [s.workflow_id for s in DBOS.list_workflows(workflow_id_prefix=prefix)]

    assert [call(f, "delete_workflow", f"d-keep-{f}") for f in FLAVOURS] == [None, None]
    assert [call(f, "delete_workflow", f"d-all-{f}", delete_children=True) for f in FLAVOURS] == [None, None]
    assert [call(f, "delete_workflow", f"d-chatty-{f}") for f in FLAVOURS] == [None, None]
    for f in FLAVOURS:
        assert remaining(f"d-keep-{f}") == [f"d-keep-{f}-1", f"d-keep-{f}-2"], f
        assert remaining(f"d-all-{f}") == [], f
        assert DBOS.get_workflow_status(f"d-chatty-{f}") is None
        assert DBOS.get_event(f"d-chatty-{f}", "k", timeout_seconds=0) is None  # its events went with it
    assert "'d-all-sync-1'" in same_error(WorkflowNotFoundError, "list_workflow_steps", "d-all-sync-1")
    assert "'d-keep-sync'" in same_error(WorkflowNotFoundError, "delete_workflow", "d-keep-sync")
    assert "'nope'" in same_error(WorkflowNotFoundError, "delete_workflow", "nope", delete_children=True)


# -- starting -------------------------------------------------------------------------------------
def test_start_workflow(dbos: type[DBOS]) -> None:
    runs: list[int] = []

    @DBOS.step()
    def inc(x: int) -> int:
        runs.append(x)
        return x + 1

    @DBOS.step()
    async def inc_async(x: int) -> int:
        runs.append(x)
        return x + 1

    @DBOS.workflow()
    def sync_wf(x: int) -> int:
        return inc(x) * 10

    @DBOS.workflow()
    async def async_wf(x: int) -> int:
        return await inc_async(x) * 10

    @DBOS.workflow()
    def failing() -> None:
        raise ValueError("failing on purpose")

    def plain(x: int) -> int:
        return x

    def sync_form() -> list[Any]:
        seen: list[Any] = []
        for wf, x in ((sync_wf, 1), (async_wf, 2)):
            handle = with_id(f"st-sync-{x}", lambda wf=wf, x=x: DBOS.start_workflow(wf, x))
            assert type(handle) is WorkflowHandle and handle.get_workflow_id() == f"st-sync-{x}"
            seen += [handle.get_result(timeout=T), shape(handle.get_status())]
            again = with_id(f"st-sync-{x}", lambda wf=wf, x=x: DBOS.start_workflow(wf, x))  # same id: same run
            seen += [again.get_workflow_id(), again.get_result(timeout=T)]
        failed = DBOS.start_workflow(failing)
        seen += [outcome(lambda: failed.get_result(timeout=T)), shape(failed.get_status())]
        return seen

    async def async_form() -> list[Any]:
        seen: list[Any] = []
        for wf, x in ((sync_wf, 1), (async_wf, 2)):
            with SetWorkflowID(f"st-async-{x}"):
                handle = await DBOS.start_workflow_async(wf, x)
            assert type(handle) is WorkflowHandleAsync and handle.get_workflow_id() == f"st-async-{x}"
            seen += [await handle.get_result(timeout=T), shape(await handle.get_status())]
            with SetWorkflowID(f"st-async-{x}"):
                again = await DBOS.start_workflow_async(wf, x)
            seen += [again.get_workflow_id().replace("async", "sync"), await again.get_result(timeout=T)]
        failed = await DBOS.start_workflow_async(failing)
        try:
            seen.append(await failed.get_result(timeout=T))
        except ValueError as exc:
            seen.append((type(exc), str(exc)))
        seen.append(shape(await failed.get_status()))
        return seen

    sync = sync_form()
    assert sorted(runs) == [1, 2]
    asyn = asyncio.run(async_form())
    assert sync == asyn
    assert sorted(runs) == [1, 1, 2, 2]  # a second start of one id runs nothing
    assert sync[0::4][:2] == [20, 30] and sync[8] == (ValueError, "failing on purpose")
    assert [s["status"] for s in (sync[1], sync[5], sync[9])] == ["SUCCESS", "SUCCESS", "ERROR"]

    # The same refusals, before anything is written.
    assert "is not a workflow" in same_error(WorkflowNotRegisteredError, "start_workflow", plain, 1)
    assert "lock" in same_error(SerializationError, "start_workflow", sync_wf, threading.Lock())
    taken = same_errors(
        WorkflowConflictError, lambda f: with_id("st-sync-1", lambda: call(f, "start_workflow", failing))
    )
    assert "st-sync-1" in taken
    assert DBOS.list_workflows(name=plain.__qualname__) == []
    # A bad call of the body fails the workflow alike.
    wrong = [outcome(lambda f=f: result(call(f, "start_workflow", sync_wf, 1, 2))) for f in FLAVOURS]
    assert wrong[0] == wrong[1] and wrong[0][0] is TypeError


def test_start_children_and_timeouts(dbos: type[DBOS]) -> None:
    @DBOS.workflow()
    def child(x: int) -> int:
        return x * 2

    @DBOS.workflow()
    def parent(x: int) -> int:
        return int(DBOS.start_workflow(child, x).get_result())

    @DBOS.workflow()
    async def parent_async(x: int) -> int:
        return int(await (await DBOS.start_workflow_async(child, x)).get_result())

    @DBOS.workflow()
    def sleeper(seconds: float) -> str:
        DBOS.sleep(seconds)
        return "woke"

    @DBOS.workflow()
    async def sleeper_async(seconds: float) -> str:
        await DBOS.sleep_async(seconds)
        return "woke"

    def sync_form() -> list[Any]:
        family = with_id("ch-sync", lambda: DBOS.start_workflow(parent, 4))
        with SetWorkflowTimeout(0.3):
            late = with_id("to-sync", lambda: DBOS.start_workflow(sleeper, 60))
        return [family.get_result(timeout=T), outcome(lambda: late.get_result(timeout=T))[0]]

    async def async_form() -> list[Any]:
        with SetWorkflowID("ch-async"):
            family = await DBOS.start_workflow_async(parent_async, 4)
        with SetWorkflowTimeout(0.3), SetWorkflowID("to-async"):
            late = await DBOS.start_workflow_async(sleeper_async, 60)
        try:
            stopped: Any = await late.get_result(timeout=T)
        except WorkflowCancelledError as exc:
            stopped = type(exc)
        return [await family.get_result(timeout=T), stopped]

    assert sync_form() == asyncio.run(async_form()) == [8, WorkflowCancelledError]
    # A child started from a workflow: the same id, parent and checkpoints.
    children = [DBOS.get_workflow_status(f"ch-{f}-1") for f in FLAVOURS]
    assert [(c and c.parent_workflow_id, c and c.output) for c in children] == [("ch-sync", 8), ("ch-async", 8)]
    assert [{**(shape(c) or {}), "parent_workflow_id": "-"} for c in children] == [
        {**(shape(children[0]) or {}), "parent_workflow_id": "-"}
    ] * 2
    steps = [DBOS.list_workflow_steps(f"ch-{f}") for f in FLAVOURS]
    assert [[s["child_workflow_id"] for s in x][:1] for x in steps] == [["ch-sync-1"], ["ch-async-1"]]
    assert steps_view(steps[0], exact=False) == steps_view(steps[1], exact=False)
    # SetWorkflowTimeout: the same deadline, and the run is cancelled when it passes.
    timed = [DBOS.get_workflow_status(f"to-{f}") for f in FLAVOURS]
    assert [(t.status, t.deadline_at - t.created_at) for t in timed if t and t.deadline_at] == [("CANCELLED", 300)] * 2


def test_queue_enqueue(dbos: type[DBOS]) -> None:
    q = Queue("twins-enqueue")
    prio = Queue("twins-prio", priority_enabled=True)
    parts = Queue("twins-parts", partition_queue=True)

    @DBOS.workflow()
    def sync_wf(x: int) -> int:
        return x * 2

    @DBOS.workflow()
    async def async_wf(x: int) -> int:
        await DBOS.sleep_async(0)
        return x * 3

    def sync_form() -> dict[str, Any]:
        seen: dict[str, Any] = {}
        for wf, x in ((sync_wf, 1), (async_wf, 2)):
            handle = with_id(f"e-sync-{x}", lambda wf=wf, x=x: q.enqueue(wf, x))
            assert type(handle) is WorkflowHandle and handle.get_workflow_id() == f"e-sync-{x}"
            seen[wf.__name__] = (handle.get_result(timeout=T), shape(handle.get_status()))
        with SetEnqueueOptions(priority=7):
            handle = prio.enqueue(sync_wf, 3)
        seen["priority"] = (handle.get_result(timeout=T), shape(handle.get_status()))
        with SetEnqueueOptions(queue_partition_key="p1"):
            seen["partition"] = parts.enqueue(sync_wf, 4).get_result(timeout=T)
        with SetEnqueueOptions(deduplication_id="dd", delay_seconds=600):
            seen["first"] = shape(with_id("e-dd-sync", lambda: q.enqueue(sync_wf, 5)).get_status())
            seen["duplicate"] = error_of(lambda: q.enqueue(sync_wf, 6))[0]
        DBOS.cancel_workflow("e-dd-sync")  # inactive: the deduplication id is free again
        return seen

    async def async_form() -> dict[str, Any]:
        seen: dict[str, Any] = {}
        for wf, x in ((sync_wf, 1), (async_wf, 2)):
            with SetWorkflowID(f"e-async-{x}"):
                handle = await q.enqueue_async(wf, x)
            assert type(handle) is WorkflowHandleAsync and handle.get_workflow_id() == f"e-async-{x}"
            seen[wf.__name__] = (await handle.get_result(timeout=T), shape(await handle.get_status()))
        with SetEnqueueOptions(priority=7):
            handle = await prio.enqueue_async(sync_wf, 3)
        seen["priority"] = (await handle.get_result(timeout=T), shape(await handle.get_status()))
        with SetEnqueueOptions(queue_partition_key="p1"):
            seen["partition"] = await (await parts.enqueue_async(sync_wf, 4)).get_result(timeout=T)
        with SetEnqueueOptions(deduplication_id="dd", delay_seconds=600):
            with SetWorkflowID("e-dd-async"):
                seen["first"] = shape(await (await q.enqueue_async(sync_wf, 5)).get_status())
            try:
                await q.enqueue_async(sync_wf, 6)
                seen["duplicate"] = None
            except QueueDeduplicatedError as exc:
                seen["duplicate"] = type(exc)
        return seen

    sync, asyn = sync_form(), asyncio.run(async_form())
    assert sync == asyn
    for (value, s), expected in zip((sync["sync_wf"], sync["async_wf"]), (2, 6), strict=True):
        assert (value, s["status"], s["queue_name"]) == (expected, "SUCCESS", "twins-enqueue")
    assert sync["priority"][0] == 6 and (sync["priority"][1]["queue_name"], sync["priority"][1]["priority"]) == (
        "twins-prio",
        7,
    )
    assert sync["partition"] == 8 and sync["duplicate"] is QueueDeduplicatedError
    assert (sync["first"]["status"], sync["first"]["deduplication_id"]) == ("DELAYED", "dd")

    # The same refusals (the queue's own rules first, then the workflow's).
    def enqueue(flavour: str, queue: Queue, *args: Any) -> Any:
        return queue.enqueue(*args) if flavour == "sync" else asyncio.run(queue.enqueue_async(*args))

    def refused(expected: type[BaseException], queue: Queue, *args: Any, **options: Any) -> str:
        def run(flavour: str) -> Any:
            with SetWorkflowID("e-refused"):  # one id: messages name it
                if not options:
                    return enqueue(flavour, queue, *args)
                with SetEnqueueOptions(**options):
                    return enqueue(flavour, queue, *args)

        return same_errors(expected, run)

    before = views(DBOS.list_workflows())

    assert "does not have priorities" in refused(ConfigError, q, sync_wf, 1, priority=1)
    assert "is partitioned" in refused(ConfigError, parts, sync_wf, 1)
    assert "is not partitioned" in refused(ConfigError, q, sync_wf, 1, queue_partition_key="p")
    assert "deduplication_id" in refused(ConfigError, q, sync_wf, 1, deduplication_id="")
    assert "is not a workflow" in refused(WorkflowNotRegisteredError, q, len, "x")
    assert "lock" in refused(SerializationError, q, sync_wf, threading.Lock())
    assert "'dd'" in refused(QueueDeduplicatedError, q, sync_wf, 1, deduplication_id="dd")
    assert views(DBOS.list_workflows()) == before  # nothing was written


# -- communication --------------------------------------------------------------------------------
def test_send_and_recv(dbos: type[DBOS]) -> None:
    @DBOS.workflow()
    def receiver() -> list[Any]:
        DBOS.send(str(DBOS.workflow_id), "to myself", "self")  # from a workflow: a step
        got = [DBOS.recv("self", T), DBOS.recv("t", T), DBOS.recv("t", T), DBOS.recv(None, T)]
        return [*got, DBOS.recv("t", 0.1)]  # the duplicate was never delivered: a timeout

    @DBOS.workflow()
    async def receiver_async() -> list[Any]:
        await DBOS.send_async(str(DBOS.workflow_id), "to myself", "self")
        got = [await DBOS.recv_async("self", T), await DBOS.recv_async("t", T), await DBOS.recv_async("t", T)]
        return [*got, await DBOS.recv_async(None, T), await DBOS.recv_async("t", 0.1)]

    def sync_form() -> str:
        handle = with_id("m-sync", lambda: DBOS.start_workflow(receiver))
        DBOS.send("m-sync", "one", "t")
        DBOS.send("m-sync", {"two": 2}, "t", idempotency_key="k")
        DBOS.send("m-sync", "duplicate", "t", idempotency_key="k")
        DBOS.send("m-sync", 3)
        return handle.workflow_id

    async def async_form() -> str:
        with SetWorkflowID("m-async"):
            handle = await DBOS.start_workflow_async(receiver_async)
        await DBOS.send_async("m-async", "one", "t")
        await DBOS.send_async("m-async", {"two": 2}, "t", idempotency_key="k")
        await DBOS.send_async("m-async", "duplicate", "t", idempotency_key="k")
        await DBOS.send_async("m-async", 3)
        await handle.get_result(timeout=T)
        return handle.workflow_id

    ids = [sync_form(), asyncio.run(async_form())]
    outcomes = [DBOS.retrieve_workflow(wid).get_result(timeout=T) for wid in ids]
    assert outcomes == [["to myself", "one", {"two": 2}, 3, None]] * 2
    steps = [steps_view(DBOS.list_workflow_steps(wid), exact=False) for wid in ids]
    assert steps[0] == steps[1]
    assert [(s["function_id"], s["function_name"]) for s in steps[0]][:2] == [(1, "DBOS.send"), (3, "DBOS.recv")]

    # The same refusals.
    assert "inside a workflow" in same_error(NotInWorkflowError, "recv", "t", 1)
    assert "'nope'" in same_error(WorkflowNotFoundError, "send", "nope", 1)
    assert "topic must be" in same_error(TypeError, "send", "m-sync", 1, topic=5)
    assert "destination_id must be" in same_error(TypeError, "send", "", 1)
    assert "at most 2000" in same_error(ValueError, "send", "m-sync", 1, idempotency_key="k" * 2001)
    assert "m-sync" in same_error(SerializationError, "send", "m-sync", threading.Lock())


def test_set_event_and_get_event(dbos: type[DBOS]) -> None:
    @DBOS.workflow()
    def publisher() -> list[Any]:
        DBOS.recv("go", T)
        DBOS.set_event("k", 1)
        DBOS.set_event("k", {"v": 2})  # last write wins
        DBOS.set_event("none", None)
        return [DBOS.get_event(str(DBOS.workflow_id), "k", 0), DBOS.get_event(str(DBOS.workflow_id), "unset", 0.05)]

    @DBOS.workflow()
    async def publisher_async() -> list[Any]:
        await DBOS.recv_async("go", T)
        await DBOS.set_event_async("k", 1)
        await DBOS.set_event_async("k", {"v": 2})
        await DBOS.set_event_async("none", None)
        wid = str(DBOS.workflow_id)
        return [await DBOS.get_event_async(wid, "k", 0), await DBOS.get_event_async(wid, "unset", 0.05)]

    def sync_form() -> list[Any]:
        handle = with_id("ev-sync", lambda: DBOS.start_workflow(publisher))
        threading.Timer(0.1, DBOS.send, ("ev-sync", "go", "go")).start()
        seen = [DBOS.get_event("ev-sync", "k", T)]  # waits for the first value
        seen += [handle.get_result(timeout=T), DBOS.get_event("ev-sync", "k", 0)]
        return [*seen, DBOS.get_event("ev-sync", "none", 0), DBOS.get_event("ev-sync", "unset", 0.05)]

    async def async_form() -> list[Any]:
        with SetWorkflowID("ev-async"):
            handle = await DBOS.start_workflow_async(publisher_async)
        asyncio.get_running_loop().call_later(0.1, asyncio.ensure_future, DBOS.send_async("ev-async", "go", "go"))
        seen = [await DBOS.get_event_async("ev-async", "k", T)]
        seen += [await handle.get_result(timeout=T), await DBOS.get_event_async("ev-async", "k", 0)]
        none, unset = (
            await DBOS.get_event_async("ev-async", "none", 0),
            await DBOS.get_event_async("ev-async", "unset", 0.05),
        )
        return [*seen, none, unset]

    sync, asyn = sync_form(), asyncio.run(async_form())
    assert sync[0] in (1, {"v": 2}) and asyn[0] in (1, {"v": 2})  # whichever write the reader woke to
    assert sync[1:] == asyn[1:] == [[{"v": 2}, None], {"v": 2}, None, None]
    steps = [steps_view(DBOS.list_workflow_steps(wid), exact=False) for wid in ("ev-sync", "ev-async")]
    assert steps[0] == steps[1]
    assert [s["function_name"] for s in steps[0]][1:4] == ["DBOS.set_event"] * 3
    assert both("get_event", "nope", "k", 0.05) == [None, None]  # an unknown workflow has no events (yet)

    # The same refusals.
    assert "inside a workflow" in same_error(NotInWorkflowError, "set_event", "k", 1)
    assert "key must be" in same_error(TypeError, "get_event", "ev-sync", "")
    assert "timeout_seconds must be" in same_error(ValueError, "get_event", "ev-sync", "k", -1)
    assert "timeout_seconds must be" in same_error(TypeError, "get_event", "ev-sync", "k", "1")


def test_streams(dbos: type[DBOS]) -> None:
    @DBOS.workflow()
    def writer(n: int) -> str:
        DBOS.recv("go", T)
        DBOS.write_stream("open", "left open")  # ends with the workflow
        for i in range(n):
            DBOS.write_stream("s", i)
        DBOS.close_stream("s")
        try:
            DBOS.write_stream("s", "late")
        except TransactError as exc:
            return type(exc).__name__
        return "written after close"

    @DBOS.workflow()
    async def writer_async(n: int) -> str:
        await DBOS.recv_async("go", T)
        await DBOS.write_stream_async("open", "left open")
        for i in range(n):
            await DBOS.write_stream_async("s", i)
        await DBOS.close_stream_async("s")
        try:
            await DBOS.write_stream_async("s", "late")
        except TransactError as exc:
            return type(exc).__name__
        return "written after close"

    def sync_form() -> list[Any]:
        handle = with_id("st-sync", lambda: DBOS.start_workflow(writer, 3))
        threading.Timer(0.1, DBOS.send, ("st-sync", "go", "go")).start()
        live = list(DBOS.read_stream("st-sync", "s"))  # waits for the values, ends at the close
        return [live, handle.get_result(timeout=T)]

    async def async_form() -> list[Any]:
        with SetWorkflowID("st-async"):
            handle = await DBOS.start_workflow_async(writer_async, 3)
        asyncio.get_running_loop().call_later(0.1, asyncio.ensure_future, DBOS.send_async("st-async", "go", "go"))
        live = await collect(DBOS.read_stream_async("st-async", "s"))
        return [live, await handle.get_result(timeout=T)]

    assert sync_form() == asyncio.run(async_form()) == [[0, 1, 2], "TransactError"]
    # Each stream read both ways, after the fact.
    for wid in ("st-sync", "st-async"):
        for key, values in (("s", [0, 1, 2]), ("open", ["left open"]), ("never", [])):
            assert list(DBOS.read_stream(wid, key)) == asyncio.run(collect(DBOS.read_stream_async(wid, key))) == values
    steps = [steps_view(DBOS.list_workflow_steps(wid), exact=False) for wid in ("st-sync", "st-async")]
    assert steps[0] == steps[1]
    assert [s["function_name"] for s in steps[0]][-2:] == ["DBOS.write_stream", "DBOS.close_stream"]

    # The same refusals: arguments at the call, unknown workflows at the first read.
    read = {
        "sync": lambda wid, key: DBOS.read_stream(wid, key),
        "async": lambda wid, key: DBOS.read_stream_async(wid, key),
    }
    assert "workflow_id must be" in same_errors(TypeError, lambda f: read[f]("", "s"))
    assert "key must be" in same_errors(TypeError, lambda f: read[f]("st-sync", 5))
    unknown = {
        "sync": lambda: list(DBOS.read_stream("nope", "s")),
        "async": lambda: asyncio.run(collect(DBOS.read_stream_async("nope", "s"))),
    }
    assert "'nope'" in same_errors(WorkflowNotFoundError, lambda f: unknown[f]())
    assert "inside a workflow" in same_error(NotInWorkflowError, "write_stream", "s", 1)
    assert "inside a workflow" in same_error(NotInWorkflowError, "close_stream", "s")


def test_sleep(dbos: type[DBOS]) -> None:
    @DBOS.workflow()
    def sleeper(seconds: float) -> str:
        DBOS.sleep(seconds)
        return "woke"

    @DBOS.workflow()
    async def sleeper_async(seconds: float) -> str:
        await DBOS.sleep_async(seconds)
        return "woke"

    def sync_form() -> list[Any]:
        began = time.monotonic()
        short = with_id("sl-sync", lambda: DBOS.start_workflow(sleeper, 0.3))
        woke = short.get_result(timeout=T)
        slept = time.monotonic() - began
        long = with_id("sl-long-sync", lambda: DBOS.start_workflow(sleeper, 60))
        wait_until(lambda: DBOS.list_workflow_steps("sl-long-sync"), T)
        DBOS.cancel_workflow("sl-long-sync")  # wakes the sleeper: it stops at once
        return [woke, slept >= 0.3, outcome(lambda: long.get_result(timeout=5))[0]]

    async def async_form() -> list[Any]:
        began = time.monotonic()
        with SetWorkflowID("sl-async"):
            short = await DBOS.start_workflow_async(sleeper_async, 0.3)
        woke = await short.get_result(timeout=T)
        slept = time.monotonic() - began
        with SetWorkflowID("sl-long-async"):
            long = await DBOS.start_workflow_async(sleeper_async, 60)
        await asyncio.to_thread(wait_until, lambda: DBOS.list_workflow_steps("sl-long-async"), T)
        await DBOS.cancel_workflow_async("sl-long-async")
        try:
            await long.get_result(timeout=5)
            stopped: Any = None
        except WorkflowCancelledError as exc:
            stopped = type(exc)
        return [woke, slept >= 0.3, stopped]

    assert sync_form() == asyncio.run(async_form()) == ["woke", True, WorkflowCancelledError]
    for pair in (("sl-sync", "sl-async"), ("sl-long-sync", "sl-long-async")):
        steps = [steps_view(DBOS.list_workflow_steps(wid), exact=False) for wid in pair]
        assert steps[0] == steps[1]
        assert [s["function_name"] for s in steps[0]] == ["DBOS.sleep"]
    statuses = [DBOS.get_workflow_status(wid) for wid in ("sl-long-sync", "sl-long-async")]
    assert [s and s.status for s in statuses] == ["CANCELLED"] * 2

    # Outside a workflow: an ordinary sleep; the same refusals.
    began = time.monotonic()
    assert both("sleep", 0.05) == [None, None]
    assert time.monotonic() - began >= 0.1
    assert "seconds must be" in same_error(ValueError, "sleep", -1)
    assert "seconds must be" in same_error(ValueError, "sleep", float("nan"))
    assert "seconds must be" in same_error(TypeError, "sleep", "1")
