"""DBOSClient from a process that never launches: enqueue by name to a real worker subprocess,
messages and events, listing, cancel/resume/fork, and clear errors. Then every ``*_async`` method
of the client against its sync form, with the application launched in this process."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import spawn, wait_until
from transact import (
    DBOS,
    DBOSClient,
    Queue,
    QueueDeduplicatedError,
    SetWorkflowID,
    WorkflowCancelledError,
    WorkflowNotFoundError,
    WorkflowStatus,
)
from transact._client_handles import WorkflowHandleClient, WorkflowHandleClientAsync
from transact.errors import ConfigError, DatabaseUnavailableError, SerializationError, WorkflowConflictError

APP = Path(__file__).parent / "apps" / "admin_worker_app.py"


@pytest.fixture
def worker(db_url: str) -> Iterator[subprocess.Popen[str]]:
    """The worker app in its own process; stopped with SIGTERM (graceful) at the end."""
    proc = spawn(APP, db_url)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@pytest.fixture
def client(db_url: str) -> Iterator[DBOSClient]:
    with DBOSClient(db_url) as c:
        yield c


def test_enqueue_to_another_process_and_get_the_result(client: DBOSClient, worker: subprocess.Popen[str]) -> None:
    # Enqueued before the worker may even be up: the row waits in the queue.
    handle = client.enqueue({"workflow_name": "greet", "queue_name": "client-q"}, "world", punctuation="?")
    assert handle.get_result(timeout=60) == "HELLO WORLD?"
    status = handle.get_status()
    assert (status.status, status.queue_name, status.name, status.input) == (
        "SUCCESS",
        "client-q",
        "greet",
        (("world",), {"punctuation": "?"}),
    )
    assert status.executor_id is not None  # the worker's
    [step] = client.list_workflow_steps(handle.workflow_id)
    assert (step["function_id"], step["output"]) == (1, "HELLO WORLD")

    # A chosen id runs once, however often it is enqueued.
    options = {"workflow_name": "greet", "queue_name": "client-q", "workflow_id": "greet-once"}
    first = client.enqueue(options, "a")
    second = client.enqueue(options, "b")
    assert first.get_result(timeout=30) == second.get_result(timeout=30) == "HELLO A!"
    with pytest.raises(WorkflowConflictError, match="already belongs to workflow 'greet'"):
        client.enqueue({"workflow_name": "echo_event", "queue_name": "client-q", "workflow_id": "greet-once"})

    # Messages and events across processes.
    echo = client.enqueue({"workflow_name": "echo_event", "queue_name": "client-q", "workflow_id": "echo-1"})
    client.send("echo-1", 21, topic="in")
    assert client.get_event("echo-1", "out", timeout_seconds=30) == 42
    assert client.retrieve_workflow("echo-1").get_result(timeout=30) == 21 == echo.get_result()
    assert client.get_event("echo-1", "never-set", timeout_seconds=0.1) is None

    # Listing from the client.
    greets = client.list_workflows(name="greet", load_input=False)
    assert [w.workflow_id for w in greets] == [handle.workflow_id, "greet-once"]
    assert client.list_workflows(workflow_id_prefix="echo-", status="SUCCESS")[0].output == 21
    assert client.list_queued_workflows(queue_name="client-q") == []

    # Fork from step 2: the forked workflow reuses step 1's recorded outcome (its times are copied).
    forked = client.fork_workflow(handle.workflow_id, 2)
    assert forked.get_result(timeout=30) == "HELLO WORLD?"
    [copied] = client.list_workflow_steps(forked.workflow_id)
    assert copied == step
    assert forked.get_status().forked_from == handle.workflow_id


def test_cancelled_queued_work_never_starts_and_resume_requeues_it(
    client: DBOSClient, worker: subprocess.Popen[str]
) -> None:
    late = {"workflow_name": "greet", "queue_name": "client-q", "delay_seconds": 1.5}
    cancelled = client.enqueue({**late, "workflow_id": "late-cancelled"}, "x")
    control = client.enqueue({**late, "workflow_id": "late-control"}, "y")
    client.cancel_workflow("late-cancelled")
    assert control.get_result(timeout=30) == "HELLO Y!"  # the delay passed and the queue ran
    with pytest.raises(WorkflowCancelledError):
        cancelled.get_result(timeout=5)
    assert client.list_workflow_steps("late-cancelled") == []  # it never started

    resumed = client.resume_workflow("late-cancelled")
    assert resumed.get_result(timeout=30) == "HELLO X!"
    assert resumed.get_status().queue_name == "client-q"


def test_async_client(client: DBOSClient, worker: subprocess.Popen[str]) -> None:
    async def main() -> None:
        handle = await client.enqueue_async({"workflow_name": "greet", "queue_name": "client-q"}, "async")
        assert await handle.get_result(timeout=60) == "HELLO ASYNC!"
        assert (await handle.get_status()).status == "SUCCESS"
        echo = await client.enqueue_async({"workflow_name": "echo_event", "queue_name": "client-q"})
        await client.send_async(echo.workflow_id, 5, "in")
        assert await client.get_event_async(echo.workflow_id, "out", 30) == 10
        assert len(await client.list_workflows_async(name=["greet", "echo_event"])) == 2
        assert len(await client.list_workflow_steps_async(handle.workflow_id)) == 1
        retrieved = await client.retrieve_workflow_async(echo.workflow_id)
        assert await retrieved.get_result(timeout=30) == 5
        forked = await client.fork_workflow_async(handle.workflow_id, 1)
        assert await forked.get_result(timeout=30) == "HELLO ASYNC!"
        await client.delete_workflow_async(forked.workflow_id)
        assert client.get_workflow_status(forked.workflow_id) is None

    asyncio.run(main())


def test_unknown_ids_and_bad_input(client: DBOSClient) -> None:
    for call in (
        lambda: client.retrieve_workflow("nope"),
        lambda: client.send("nope", 1),
        lambda: client.cancel_workflow("nope"),
        lambda: client.resume_workflow("nope"),
        lambda: client.fork_workflow("nope", 1),
        lambda: client.delete_workflow("nope"),
        lambda: client.list_workflow_steps("nope"),
    ):
        with pytest.raises(WorkflowNotFoundError, match="'nope'"):
            call()
    with pytest.raises(ConfigError, match="'queue_name' must be a non-empty string"):
        client.enqueue({"workflow_name": "greet"})
    with pytest.raises(ConfigError, match="unknown enqueue option 'queue'"):
        client.enqueue({"workflow_name": "greet", "queue_name": "q", "queue": "q"})
    with pytest.raises(ConfigError, match="'priority' must be an int >= 0"):
        client.enqueue({"workflow_name": "greet", "queue_name": "q", "priority": -1})
    with pytest.raises(SerializationError, match="argument 'lock' of workflow 'greet'"):
        client.enqueue({"workflow_name": "greet", "queue_name": "q"}, "ok", lock=threading.Lock())
    # The same option rules as SetEnqueueOptions (the column is a 32-bit INTEGER).
    with pytest.raises(ConfigError, match="'priority' must be an int >= 0 and <= 2147483647"):
        client.enqueue({"workflow_name": "greet", "queue_name": "q", "priority": 2**31})
    with pytest.raises(ConfigError, match="'deduplication_id' must be a non-empty string"):
        client.enqueue({"workflow_name": "greet", "queue_name": "q", "deduplication_id": ""})
    # The same argument checks as DBOS.send / DBOS.get_event.
    with pytest.raises(ValueError, match="topic is 2001 characters long; use at most 2000"):
        client.send("nope", 1, topic="t" * 2001)
    with pytest.raises(TypeError, match="destination_id must be a non-empty string"):
        client.send("", 1)
    with pytest.raises(ValueError, match="timeout_seconds must be a finite number of seconds"):
        client.get_event("nope", "k", timeout_seconds=float("nan"))
    assert client.list_workflows() == []  # nothing was written
    assert client.get_workflow_status("nope") is None


def test_client_without_a_reachable_database(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRANSACT_SYSTEM_DATABASE_URL", raising=False)
    with pytest.raises(ConfigError, match="needs system_database_url"):
        DBOSClient()
    with pytest.raises(ConfigError, match="unsupported database URL"):
        DBOSClient("mysql://localhost/db")
    started = time.monotonic()
    with pytest.raises(DatabaseUnavailableError, match="cannot reach the system database"):
        DBOSClient("postgresql://postgres@127.0.0.1:1/nothing", retry_timeout_s=0.5)
    assert time.monotonic() - started < 10


def test_check_connection(db_url: str) -> None:
    # Never migrated: on Postgres a schema nobody created (the suite's database is migrated).
    schema = None if db_url.startswith("sqlite") else "never_migrated"
    with (
        DBOSClient(db_url, migrate=False, dbos_system_schema=schema) as bare,
        pytest.raises(ConfigError, match="has no Transact tables"),
    ):
        bare.check_connection()
    with DBOSClient(db_url) as client:  # migrates
        assert client.check_connection() is None
        assert asyncio.run(client.check_connection_async()) is None
    with pytest.raises(DatabaseUnavailableError, match=r"127\.0\.0\.1:1"):
        DBOSClient("postgresql://postgres@127.0.0.1:1/nothing", retry_timeout_s=0.5).check_connection()


def test_get_result_waits_for_a_workflow_started_later(client: DBOSClient, db_url: str) -> None:
    """No worker yet: the handle waits (pushed wake-ups or back-off re-reads) until one runs it."""
    handle = client.enqueue({"workflow_name": "greet", "queue_name": "client-q"}, "later")
    with pytest.raises(TimeoutError, match="did not finish within"):
        handle.get_result(timeout=0.2)
    proc = spawn(APP, db_url)
    try:
        assert handle.get_result(timeout=60) == "HELLO LATER!"
    finally:
        proc.terminate()
        proc.wait(timeout=15)


# -- the async twins: every DBOSClient *_async method against its sync form ---------------------
# The application runs in this process (the ``dbos`` fixture, on the client's database): it
# registers the workflows below by name and serves their queues.
T = 20.0  # deadline (s) for anything that should happen at once


class TwinApp:
    """Workflows known to the client by name, and gates that hold them."""

    def __init__(self) -> None:
        self.queue = Queue("twin-q")
        self.serial = Queue("twin-serial", concurrency=1)
        self.release = {"blocker": threading.Event(), "runner": threading.Event()}
        self.reached: set[str] = set()
        self.step_runs: list[str] = []

        @DBOS.workflow(name="twin_double")
        def double(x: int) -> int:
            return 2 * x

        @DBOS.workflow(name="twin_fail")
        def fail() -> None:
            raise ValueError("failing on purpose")

        @DBOS.step(name="twin_add")
        def add(tag: str, x: int) -> int:
            self.step_runs.append(tag)
            if tag == "oops":
                raise KeyError("oops")
            return x + 1

        @DBOS.workflow(name="twin_steps")
        def steps(x: int) -> int:
            with contextlib.suppress(KeyError):
                add("oops", x)
            return add("c", add("b", add("a", x)))

        @DBOS.step(name="twin_wait")
        def wait(gate: str) -> str:
            self.reached.add(str(DBOS.workflow_id))
            assert self.release[gate].wait(T), f"gate {gate} never released"
            return gate

        @DBOS.workflow(name="twin_gated")
        def gated(gate: str) -> str:
            return wait(gate) + "!"

        @DBOS.workflow(name="twin_echo")
        def echo() -> int:
            total = DBOS.recv("in", T) + DBOS.recv("in", T)
            DBOS.set_event("out", total)
            return int(total)

        @DBOS.workflow(name="twin_parent")
        def parent() -> int:
            return double(1) + double(2)

        self.steps = steps
        self.parent = parent

    def wait_reached(self, *ids: str) -> None:
        wait_until(lambda: self.reached.issuperset(ids), T, what=f"{ids} at their gate")


def in_queue(workflow: str, queue: str = "twin-q", /, **options: Any) -> dict[str, Any]:
    return {"workflow_name": workflow, "queue_name": queue, **options}


def with_workflow_id(workflow_id: str, fn: Callable[[], Any]) -> Any:
    with SetWorkflowID(workflow_id):
        return fn()


def twins(client: DBOSClient, api: str, /, *args: Any, **kwargs: Any) -> list[Any]:
    """``client.<api>(...)`` and ``client.<api>_async(...)`` run to completion, in that order."""
    return [getattr(client, api)(*args, **kwargs), asyncio.run(getattr(client, f"{api}_async")(*args, **kwargs))]


def raised(fn: Callable[[], Any]) -> tuple[type[BaseException], str]:
    try:
        fn()
    except Exception as exc:
        return type(exc), str(exc)
    raise AssertionError("no error was raised")


def twin_error(client: DBOSClient, expected: type[BaseException], api: str, /, *args: Any, **kwargs: Any) -> str:
    """Both forms raise the same error (type and message); the message."""
    errors = [
        raised(lambda: getattr(client, api)(*args, **kwargs)),
        raised(lambda: asyncio.run(getattr(client, f"{api}_async")(*args, **kwargs))),
    ]
    assert errors[0] == errors[1], f"sync and async differ: {errors}"
    assert issubclass(errors[0][0], expected), errors[0]
    return errors[0][1]


def get_result(handle: Any, timeout: float = T) -> Any:
    if isinstance(handle, WorkflowHandleClientAsync):
        return asyncio.run(handle.get_result(timeout=timeout))
    return handle.get_result(timeout=timeout)


def get_status(handle: Any) -> WorkflowStatus:
    if isinstance(handle, WorkflowHandleClientAsync):
        return asyncio.run(handle.get_status())
    return handle.get_status()


def view(status: WorkflowStatus | None, *drop: str) -> dict[str, Any] | None:
    if status is None:
        return None
    d = dict(vars(status))
    d["error"] = None if status.error is None else (type(status.error), str(status.error))
    for key in drop:
        del d[key]
    return d


def shape(status: WorkflowStatus | None) -> dict[str, Any] | None:
    """Without id and times (and error messages, which name the id): twin runs look alike."""
    d = view(status, "workflow_id", "created_at", "updated_at", "started_at", "deadline_at")
    if d is not None and d["error"] is not None:
        d["error"] = d["error"][0]
    return d


def steps_view(steps: list[dict[str, Any]], *, exact: bool = True) -> list[dict[str, Any]]:
    out = []
    for step in steps:
        d = {**step, "error": None if step["error"] is None else (type(step["error"]), str(step["error"]))}
        if not exact:
            for key in ("started_at_epoch_ms", "completed_at_epoch_ms", "child_workflow_id"):
                del d[key]
        out.append(d)
    return out


def test_client_async_enqueue_and_handles_match_sync(dbos: type[DBOS], client: DBOSClient) -> None:
    TwinApp()
    handles = [
        client.enqueue(in_queue("twin_double", workflow_id="ce-sync"), 21),
        asyncio.run(client.enqueue_async(in_queue("twin_double", workflow_id="ce-async"), 21)),
    ]
    assert [type(h) for h in handles] == [WorkflowHandleClient, WorkflowHandleClientAsync]
    assert [h.get_workflow_id() for h in handles] == ["ce-sync", "ce-async"]
    assert [get_result(h) for h in handles] == [42, 42]
    statuses = [get_status(h) for h in handles]
    assert shape(statuses[0]) == shape(statuses[1])
    assert [(s.status, s.queue_name, s.input) for s in statuses] == [("SUCCESS", "twin-q", ((21,), {}))] * 2
    assert [view(s) for s in statuses] == [view(DBOS.get_workflow_status(h.workflow_id)) for h in handles]
    # A reused id never runs twice: both forms return the first run's handle.
    again = [
        client.enqueue(in_queue("twin_double", workflow_id="ce-sync"), 1),
        asyncio.run(client.enqueue_async(in_queue("twin_double", workflow_id="ce-async"), 1)),
    ]
    assert [get_result(h) for h in again] == [42, 42]

    # A failed workflow fails both handles alike; an unfinished one times out alike.
    failed = [
        client.enqueue(in_queue("twin_fail", workflow_id="ce-fail")),
        asyncio.run(client.enqueue_async(in_queue("twin_fail", workflow_id="ce-fail"))),
    ]
    assert [raised(lambda h=h: get_result(h)) for h in failed] == [(ValueError, "failing on purpose")] * 2
    assert shape(get_status(failed[0])) == shape(get_status(failed[1]))
    later = client.enqueue(in_queue("twin_double", workflow_id="ce-later", delay_seconds=600), 1)
    waiting = [later, asyncio.run(client.retrieve_workflow_async("ce-later"))]
    timeouts = [raised(lambda h=h: get_result(h, timeout=0.1)) for h in waiting]
    assert timeouts == [(TimeoutError, "workflow 'ce-later' did not finish within 0.1 s")] * 2
    assert [get_status(h).status for h in waiting] == ["DELAYED", "DELAYED"]

    # retrieve_workflow / retrieve_workflow_async.
    retrieved = twins(client, "retrieve_workflow", "ce-sync")
    assert [type(h) for h in retrieved] == [WorkflowHandleClient, WorkflowHandleClientAsync]
    assert [get_result(h) for h in retrieved] == [42, 42]
    assert [view(get_status(h)) for h in retrieved] == [view(statuses[0])] * 2
    assert "'nope'" in twin_error(client, WorkflowNotFoundError, "retrieve_workflow", "nope")
    blind = twins(client, "retrieve_workflow", "nope", existing_workflow=False)
    assert [type(h) for h in blind] == [WorkflowHandleClient, WorkflowHandleClientAsync]
    not_found = (WorkflowNotFoundError, "no workflow with id 'nope' exists in the system database")
    assert [raised(lambda h=h: get_status(h)) for h in blind] == [not_found] * 2
    assert [raised(lambda h=h: get_result(h, timeout=1)) for h in blind] == [not_found] * 2

    # The same refusals, nothing written.
    before = [view(s) for s in client.list_workflows()]
    assert "'queue_name'" in twin_error(client, ConfigError, "enqueue", {"workflow_name": "twin_double"})
    assert "unknown enqueue option" in twin_error(client, ConfigError, "enqueue", in_queue("twin_double", queue="q"))
    assert "'priority'" in twin_error(client, ConfigError, "enqueue", in_queue("twin_double", priority=-1))
    assert "'lock'" in twin_error(client, SerializationError, "enqueue", in_queue("twin_double"), lock=threading.Lock())
    conflict = twin_error(client, WorkflowConflictError, "enqueue", in_queue("twin_fail", workflow_id="ce-sync"))
    assert "ce-sync" in conflict
    assert [view(s) for s in client.list_workflows()] == before
    client.enqueue(in_queue("twin_double", deduplication_id="dd", delay_seconds=600), 2)
    before = [view(s) for s in client.list_workflows()]
    dedup = in_queue("twin_double", workflow_id="ce-dup", deduplication_id="dd", delay_seconds=600)
    assert "'dd'" in twin_error(client, QueueDeduplicatedError, "enqueue", dedup, 3)
    assert [view(s) for s in client.list_workflows()] == before


def test_client_async_listing_matches_sync(dbos: type[DBOS], client: DBOSClient) -> None:
    app = TwinApp()
    assert with_workflow_id("cl-a-steps", lambda: app.steps(0)) == 3
    client.enqueue(in_queue("twin_gated", "twin-serial", workflow_id="cl-b-block"), "blocker")
    app.wait_reached("cl-b-block")
    try:
        for i in (1, 2):
            client.enqueue(in_queue("twin_double", "twin-serial", workflow_id=f"cl-c-wait-{i}"), i)
        client.enqueue(in_queue("twin_double", workflow_id="cl-d-later", delay_seconds=600), 9)

        cases: list[dict[str, Any]] = [
            {},
            {"sort_desc": True, "limit": 2},
            {"offset": 1, "limit": 3},
            {"status": "ENQUEUED"},
            {"status": ["PENDING", "DELAYED"]},
            {"name": "twin_double"},
            {"workflow_id_prefix": "cl-c-wait-"},
            {"workflow_ids": ["cl-d-later", "cl-a-steps", "nope"]},
            {"queue_name": "twin-serial", "load_input": False},
            {"start_time": "2000-01-01T00:00:00Z", "load_output": False},
            {"end_time": "2000-01-01T00:00:00Z"},
        ]
        for filters in cases:
            sync, asyn = twins(client, "list_workflows", **filters)
            assert [view(s) for s in sync] == [view(s) for s in asyn], filters
            assert [view(s) for s in sync] == [view(s) for s in DBOS.list_workflows(**filters)], filters
        ids = [s.workflow_id for s in twins(client, "list_workflows")[1]]
        assert ids == ["cl-a-steps", "cl-b-block", "cl-c-wait-1", "cl-c-wait-2", "cl-d-later"]

        queued_cases: list[dict[str, Any]] = [
            {},
            {"queue_name": "twin-serial"},
            {"status": "DELAYED"},
            {"name": "twin_gated"},
            {"sort_desc": True, "offset": 1},
            {"queue_name": "nowhere"},
        ]
        for filters in queued_cases:
            sync, asyn = twins(client, "list_queued_workflows", **filters)
            assert [view(s) for s in sync] == [view(s) for s in asyn], filters
            assert [view(s) for s in sync] == [view(s) for s in DBOS.list_queued_workflows(**filters)], filters
        queued = [(s.workflow_id, s.status) for s in twins(client, "list_queued_workflows")[1]]
        assert queued == [
            ("cl-b-block", "PENDING"),
            ("cl-c-wait-1", "ENQUEUED"),
            ("cl-c-wait-2", "ENQUEUED"),
            ("cl-d-later", "DELAYED"),
        ]

        sync_steps, async_steps = twins(client, "list_workflow_steps", "cl-a-steps")
        assert steps_view(sync_steps) == steps_view(async_steps) == steps_view(DBOS.list_workflow_steps("cl-a-steps"))
        assert [(s["function_name"], s["output"]) for s in async_steps] == [
            ("twin_add", None),
            ("twin_add", 1),
            ("twin_add", 2),
            ("twin_add", 3),
        ]
        assert isinstance(async_steps[0]["error"], KeyError)
        assert twins(client, "list_workflow_steps", "cl-c-wait-1") == [[], []]  # not started yet
        assert "'nope'" in twin_error(client, WorkflowNotFoundError, "list_workflow_steps", "nope")

        # The same refusals.
        assert "bogus" in twin_error(client, TypeError, "list_workflows", bogus=1)
        assert "is not a workflow status" in twin_error(client, ConfigError, "list_workflows", status="DONE")
        assert "limit" in twin_error(client, ConfigError, "list_workflows", limit=-1)
        assert "start_time" in twin_error(client, ConfigError, "list_workflows", start_time="yesterday")
        assert "workflow_ids" in twin_error(client, TypeError, "list_queued_workflows", workflow_ids=["x"])
    finally:
        app.release["blocker"].set()
    assert [get_result(client.retrieve_workflow(f"cl-c-wait-{i}")) for i in (1, 2)] == [2, 4]


def test_client_async_cancel_and_resume_match_sync(dbos: type[DBOS], client: DBOSClient) -> None:
    app = TwinApp()
    client.enqueue(in_queue("twin_gated", "twin-serial", workflow_id="cr-block"), "blocker")
    app.wait_reached("cr-block")
    try:
        for f in ("sync", "async"):
            client.enqueue(in_queue("twin_gated", "twin-serial", workflow_id=f"cr-queued-{f}"), "runner")
            client.enqueue(in_queue("twin_gated", workflow_id=f"cr-run-{f}"), "runner")
        app.wait_reached("cr-run-sync", "cr-run-async")
        # Cancel: a queued workflow never starts; a running one stops at its next step.
        assert client.cancel_workflow("cr-queued-sync") is None
        assert asyncio.run(client.cancel_workflow_async("cr-queued-async")) is None
        assert client.cancel_workflow("cr-run-sync") is None
        assert asyncio.run(client.cancel_workflow_async("cr-run-async")) is None
        app.release["runner"].set()
        for kind in ("queued", "run"):
            ids = [f"cr-{kind}-sync", f"cr-{kind}-async"]
            for wid in ids:  # the local runs have ended (the app's handle waits for them)
                with pytest.raises(WorkflowCancelledError):
                    DBOS.retrieve_workflow(wid).get_result(timeout=T)
            statuses = [client.get_workflow_status(wid) for wid in ids]
            assert [s and s.status for s in statuses] == ["CANCELLED"] * 2
            assert shape(statuses[0]) == shape(statuses[1])
            steps = [client.list_workflow_steps(wid) for wid in ids]
            assert steps_view(steps[0], exact=False) == steps_view(steps[1], exact=False)
            # a step that finished while its workflow was being cancelled is kept (resume replays it)
            assert [s["function_name"] for s in steps[0]] == ([] if kind == "queued" else ["twin_wait"])
            handles = [client.retrieve_workflow(ids[0]), asyncio.run(client.retrieve_workflow_async(ids[1]))]
            assert [raised(lambda h=h: get_result(h))[0] for h in handles] == [WorkflowCancelledError] * 2

        # Resume: the running ones are adopted by the app and finish; the queued ones rejoin the
        # queue (still held by the blocker).
        resumed = [client.resume_workflow("cr-run-sync"), asyncio.run(client.resume_workflow_async("cr-run-async"))]
        assert [type(h) for h in resumed] == [WorkflowHandleClient, WorkflowHandleClientAsync]
        assert [get_result(h) for h in resumed] == ["runner!", "runner!"]
        assert shape(get_status(resumed[0])) == shape(get_status(resumed[1]))
        requeued = [
            client.resume_workflow("cr-queued-sync"),
            asyncio.run(client.resume_workflow_async("cr-queued-async")),
        ]
        assert [type(h) for h in requeued] == [WorkflowHandleClient, WorkflowHandleClientAsync]
        waiting = [get_status(h) for h in requeued]
        assert [(s.status, s.queue_name) for s in waiting] == [("ENQUEUED", "twin-serial")] * 2
        assert shape(waiting[0]) == shape(waiting[1])
    finally:
        app.release["blocker"].set()
    assert [get_result(h) for h in requeued] == ["runner!", "runner!"]
    assert shape(get_status(requeued[0])) == shape(get_status(requeued[1]))

    # Finished workflows are left as they are; unknown ids are refused.
    assert twins(client, "cancel_workflow", "cr-block") == [None, None]
    again = twins(client, "resume_workflow", "cr-block")
    assert [get_result(h) for h in again] == ["blocker!", "blocker!"]
    assert [get_status(h).status for h in again] == ["SUCCESS", "SUCCESS"]
    assert "'nope'" in twin_error(client, WorkflowNotFoundError, "cancel_workflow", "nope")
    assert "'nope'" in twin_error(client, WorkflowNotFoundError, "resume_workflow", "nope")


def test_client_async_fork_and_delete_match_sync(dbos: type[DBOS], client: DBOSClient) -> None:
    app = TwinApp()
    assert with_workflow_id("cf-src", lambda: app.steps(0)) == 3
    source_steps = client.list_workflow_steps("cf-src")
    app.step_runs.clear()
    forks = [
        client.fork_workflow("cf-src", 3, new_workflow_id="cf-sync"),
        asyncio.run(client.fork_workflow_async("cf-src", 3, new_workflow_id="cf-async")),
    ]
    assert [type(h) for h in forks] == [WorkflowHandleClient, WorkflowHandleClientAsync]
    assert [h.get_workflow_id() for h in forks] == ["cf-sync", "cf-async"]
    assert [get_result(h) for h in forks] == [3, 3]  # run by the app, which adopts them
    assert sorted(app.step_runs) == ["b", "b", "c", "c"]  # steps 1 and 2 reused by both forks
    statuses = [get_status(h) for h in forks]
    assert [(s.forked_from, s.input) for s in statuses] == [("cf-src", ((0,), {}))] * 2
    assert shape(statuses[0]) == shape(statuses[1])
    fork_steps = [client.list_workflow_steps(h.workflow_id) for h in forks]
    assert steps_view(fork_steps[0], exact=False) == steps_view(fork_steps[1], exact=False)
    assert [steps_view(steps[:2]) for steps in fork_steps] == [steps_view(source_steps[:2])] * 2  # copied
    # Without new_workflow_id: a fresh id each.
    fresh = twins(client, "fork_workflow", "cf-src", 10)
    assert [get_result(h) for h in fresh] == [3, 3]
    assert len({h.workflow_id for h in fresh} | {"cf-src", "cf-sync", "cf-async"}) == 5

    assert "start_step" in twin_error(client, ConfigError, "fork_workflow", "cf-src", 0)
    assert "application_version" in twin_error(client, ConfigError, "fork_workflow", "cf-src", 1, application_version=5)
    assert "'nope'" in twin_error(client, WorkflowNotFoundError, "fork_workflow", "nope", 1)

    # delete_workflow / delete_workflow_async, with and without the children.
    for f in ("sync", "async"):
        for kind in ("keep", "all"):
            assert with_workflow_id(f"cd-{kind}-{f}", app.parent) == 6

    def remaining(prefix: str) -> list[str]:
        return [s.workflow_id for s in client.list_workflows(workflow_id_prefix=prefix)]

    assert client.delete_workflow("cd-keep-sync") is None
    assert asyncio.run(client.delete_workflow_async("cd-keep-async")) is None
    assert client.delete_workflow("cd-all-sync", delete_children=True) is None
    assert asyncio.run(client.delete_workflow_async("cd-all-async", delete_children=True)) is None
    for f in ("sync", "async"):
        assert remaining(f"cd-keep-{f}") == [f"cd-keep-{f}-1", f"cd-keep-{f}-2"], f
        assert remaining(f"cd-all-{f}") == [], f
    assert "'cd-keep-sync'" in twin_error(client, WorkflowNotFoundError, "delete_workflow", "cd-keep-sync")
    assert "'nope'" in twin_error(client, WorkflowNotFoundError, "delete_workflow", "nope", delete_children=True)

    # A taken id, refused alike however often it is tried (a refusal leaves the store usable).
    tries = [
        lambda: client.fork_workflow("cf-src", 1, new_workflow_id="cf-sync"),
        lambda: asyncio.run(client.fork_workflow_async("cf-src", 1, new_workflow_id="cf-sync")),
    ]
    taken = (WorkflowConflictError, "cannot fork workflow 'cf-src' as 'cf-sync': that id is taken; choose another id")
    assert [raised(fn) for fn in tries * 2] == [taken] * 4
    assert [get_result(h) for h in twins(client, "fork_workflow", "cf-src", 4)] == [3, 3]


def test_client_async_send_and_get_event_match_sync(dbos: type[DBOS], client: DBOSClient) -> None:
    TwinApp()
    handles = [client.enqueue(in_queue("twin_echo", workflow_id=f"cm-{f}")) for f in ("sync", "async")]
    assert client.get_event("cm-sync", "out", 0.05) is None
    assert asyncio.run(client.get_event_async("cm-async", "out", 0.05)) is None

    client.send("cm-sync", 1, "in")
    client.send("cm-sync", 2, "in", idempotency_key="k")
    client.send("cm-sync", 100, "in", idempotency_key="k")  # the same key: not delivered again

    async def async_form() -> Any:
        await client.send_async("cm-async", 1, "in")
        await client.send_async("cm-async", 2, "in", idempotency_key="k")
        await client.send_async("cm-async", 100, "in", idempotency_key="k")
        return await client.get_event_async("cm-async", "out", T)

    assert [client.get_event("cm-sync", "out", T), asyncio.run(async_form())] == [3, 3]
    assert [get_result(h) for h in handles] == [3, 3]
    assert twins(client, "get_event", "cm-sync", "out", 0) == [3, 3]
    assert twins(client, "get_event", "cm-sync", "unset", 0.05) == [None, None]
    assert twins(client, "get_event", "nope", "out", 0.05) == [None, None]
    steps = [client.list_workflow_steps(h.workflow_id) for h in handles]
    assert [[s["output"] for s in x if s["function_name"] == "DBOS.recv"] for x in steps] == [[1, 2], [1, 2]]

    # The same refusals.
    assert "'nope'" in twin_error(client, WorkflowNotFoundError, "send", "nope", 1)
    assert "topic" in twin_error(client, TypeError, "send", "cm-sync", 1, topic=5)
    assert "destination_id" in twin_error(client, TypeError, "send", "", 1)
    assert "at most 2000" in twin_error(client, ValueError, "send", "cm-sync", 1, "t" * 2001)
    assert "cm-sync" in twin_error(client, SerializationError, "send", "cm-sync", threading.Lock())
    assert "key" in twin_error(client, TypeError, "get_event", "cm-sync", "")
    assert "timeout_seconds" in twin_error(client, ValueError, "get_event", "cm-sync", "out", float("nan"))
