"""DBOSClient from a process that never launches: enqueue by name to a real worker subprocess,
messages and events, listing, cancel/resume/fork, and clear errors."""

from __future__ import annotations

import asyncio
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import spawn
from transact import DBOSClient, WorkflowCancelledError, WorkflowNotFoundError
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
