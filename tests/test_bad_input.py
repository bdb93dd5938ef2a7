"""The bad-input catalogue: one table of bad inputs across the public API, the client, the CLI and
the config. Each must raise one clear error at the call (its type and a phrase naming what is
wrong) and leave nothing behind (the workflow, step, message and event tables are unchanged).

Not here on purpose: a client enqueue naming a workflow or queue no process has registered yet.
As in DBOS that is allowed (the application may register them later; tests/engine/test_queues.py
enqueues before the queue exists), so it is not bad input; sends, cancels and retrievals of an
unknown workflow id are.

Each table is checked whole, on SQLite and Postgres, and a failure lists every case that missed."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.cli.test_cli import run
from transact import (
    DBOS,
    ConfigError,
    DBOSClient,
    Queue,
    SetWorkflowID,
    SetWorkflowTimeout,
)
from transact.errors import SerializationError, WorkflowNotFoundError

COUNTED = ("workflow_status", "operation_outputs", "notifications", "workflow_events")
HUGE = "x" * 5000


@dataclass(frozen=True)
class Case:
    name: str
    call: Callable[[], Any]
    error: type[BaseException]
    phrase: str


def counts(client: DBOSClient) -> dict[str, int]:
    store = client.store
    return {t: store.read(lambda tx, t=t: tx.one(f"SELECT count(*) FROM {t}"))[0] for t in COUNTED}  # type: ignore[attr-defined]


def check(cases: list[Case], client: DBOSClient) -> None:
    """Run every case; collect each miss (no error, another error, a message without the phrase,
    rows left behind) and fail once listing them all."""
    missed: list[str] = []
    for case in cases:
        before = counts(client)
        try:
            case.call()
        except case.error as exc:
            text = str(exc)
            if case.phrase.lower() not in text.lower():
                missed.append(f"{case.name}: {type(exc).__name__} without {case.phrase!r}: {text[:300]}")
        except BaseException as exc:
            missed.append(f"{case.name}: {type(exc).__name__} instead of {case.error.__name__}: {str(exc)[:300]}")
        else:
            missed.append(f"{case.name}: no error")
        after = counts(client)
        if after != before:
            missed.append(f"{case.name}: rows changed {before} -> {after}")
    assert not missed, "\n".join(missed)


@pytest.fixture
def app(dbos: type[DBOS], db_url: str) -> Iterator[DBOSClient]:
    client = DBOSClient(db_url)
    yield client
    client.destroy()


def test_public_api(app: DBOSClient) -> None:
    queue = Queue("bad-q", concurrency=2)

    @DBOS.workflow(name="bad_wf")
    def wf(x: Any) -> Any:
        return x

    lock = threading.Lock()

    def start_with_id(wid: Any) -> Any:
        with SetWorkflowID(wid):
            return DBOS.start_workflow(wf, 1)

    def start_with_timeout(seconds: Any) -> Any:
        with SetWorkflowTimeout(seconds):
            return DBOS.start_workflow(wf, 1)

    cases = [
        Case("unpicklable argument", lambda: DBOS.start_workflow(wf, lock), SerializationError, "cannot be serialized"),
        Case(
            "unpicklable enqueue argument", lambda: queue.enqueue(wf, lock), SerializationError, "cannot be serialized"
        ),
        Case("empty workflow id", lambda: start_with_id(""), ConfigError, "SetWorkflowID"),
        Case("workflow id not a string", lambda: start_with_id(42), ConfigError, "SetWorkflowID"),
        Case("huge workflow id", lambda: start_with_id(HUGE), ConfigError, "characters long"),
        Case("NUL in workflow id", lambda: start_with_id("a\x00b"), ConfigError, "NUL"),
        Case("newline in workflow id", lambda: start_with_id("a\nb"), ConfigError, "line break"),
        Case("negative workflow timeout", lambda: start_with_timeout(-1), ConfigError, "timeout"),
        Case("NaN workflow timeout", lambda: start_with_timeout(math.nan), ConfigError, "timeout"),
        Case("send to an empty id", lambda: DBOS.send("", 1), ConfigError, "destination_id"),
        Case("send an unpicklable message", lambda: DBOS.send("someone", lock), SerializationError, "message"),
        Case("send with a NUL topic", lambda: DBOS.send("someone", 1, "t\x00"), ConfigError, "NUL"),
        Case("send with a newline topic", lambda: DBOS.send("someone", 1, "a\nb"), ConfigError, "line break"),
        Case("send with a huge topic", lambda: DBOS.send("someone", 1, HUGE), ConfigError, "characters long"),
        Case("send with a topic not a string", lambda: DBOS.send("someone", 1, 7), ConfigError, "topic"),
        Case("get_event NaN timeout", lambda: DBOS.get_event("w", "k", math.nan), ConfigError, "timeout_seconds"),
        Case("get_event negative timeout", lambda: DBOS.get_event("w", "k", -1), ConfigError, "timeout_seconds"),
        Case("get_event empty key", lambda: DBOS.get_event("w", "", 0), ConfigError, "key"),
        Case("queue negative concurrency", lambda: Queue("bad-q2", concurrency=-1), ConfigError, "concurrency"),
        Case(
            "queue worker above global concurrency",
            lambda: Queue("bad-q3", concurrency=1, worker_concurrency=5),
            ConfigError,
            "worker_concurrency",
        ),
        Case("queue empty name", lambda: Queue(""), ConfigError, "name"),
        Case("queue malformed limiter", lambda: Queue("bad-q4", limiter={"limit": 0}), ConfigError, "limiter"),
        Case(
            "invalid cron",
            lambda: DBOS.create_schedule(schedule_name="s1", workflow_fn=wf, schedule="61 * * * *"),
            ConfigError,
            "61",
        ),
        Case(
            "invalid time zone",
            lambda: DBOS.create_schedule(
                schedule_name="s2", workflow_fn=wf, schedule="* * * * *", cron_timezone="Mars/Olympus"
            ),
            ConfigError,
            "Mars/Olympus",
        ),
        Case("list with negative limit", lambda: DBOS.list_workflows(limit=-1), ConfigError, "limit"),
        Case("list with unknown status", lambda: DBOS.list_workflows(status="BOGUS"), ConfigError, "BOGUS"),
        Case(
            "list with a bad time", lambda: DBOS.list_workflows(start_time="yesterday-ish"), ConfigError, "start_time"
        ),
        Case(
            "cancel unknown workflow", lambda: DBOS.cancel_workflow("no-such-wf"), WorkflowNotFoundError, "no-such-wf"
        ),
        Case("fork with negative step", lambda: DBOS.fork_workflow("no-such-wf", -1), ConfigError, "start_step"),
        Case("send_to_forks to an empty id", lambda: DBOS.send_to_forks("", 1), ConfigError, "destination_id"),
        Case("send_to_forks a NUL topic", lambda: DBOS.send_to_forks("w", 1, "\x00"), ConfigError, "NUL"),
        Case("send_to_forks unpicklable", lambda: DBOS.send_to_forks("w", lock), SerializationError, "message"),
        Case("send_to_forks unknown", lambda: DBOS.send_to_forks("no-wf", 1), WorkflowNotFoundError, "no-wf"),
        Case("read_stream_offset empty key", lambda: DBOS.read_stream_offset("w", ""), ConfigError, "key"),
        Case("read_stream_offset id not text", lambda: DBOS.read_stream_offset(7, "s"), ConfigError, "workflow_id"),
        Case(
            "read_stream_offset unknown", lambda: DBOS.read_stream_offset("no-wf", "s"), WorkflowNotFoundError, "no-wf"
        ),
    ]
    check(cases, app)


def test_client(app: DBOSClient, db_url: str) -> None:
    Queue("client-q")
    lock = threading.Lock()
    named: dict[str, Any] = {"workflow_name": "w", "queue_name": "client-q"}
    cases = [
        Case(
            "enqueue without queue_name",
            lambda: app.enqueue({"workflow_name": "bad_wf"}, 1),
            ConfigError,
            "queue_name",
        ),
        Case("client send to an unknown workflow", lambda: app.send("nope-wf", 1), WorkflowNotFoundError, "nope-wf"),
        Case(
            "client cancel an unknown workflow", lambda: app.cancel_workflow("nope-wf"), WorkflowNotFoundError, "nope"
        ),
        Case(
            "enqueue an unpicklable argument",
            lambda: app.enqueue({"workflow_name": "bad_wf", "queue_name": "client-q"}, lock),
            SerializationError,
            "cannot be serialized",
        ),
        Case(
            "enqueue with a NUL workflow id",
            lambda: app.enqueue({"workflow_name": "w", "queue_name": "client-q", "workflow_id": "a\x00"}, 1),
            ConfigError,
            "NUL",
        ),
        Case(
            "enqueue with a negative delay",
            lambda: app.enqueue({"workflow_name": "w", "queue_name": "client-q", "delay_seconds": -5}, 1),
            ConfigError,
            "delay_seconds",
        ),
        *(
            Case(f"enqueue with a bad {key}", lambda o=opts: app.enqueue({**named, **o}, 1), ConfigError, phrase)
            for key, opts, phrase in (
                ("workflow_class_name", {"workflow_class_name": 5}, "'workflow_class_name'"),
                (
                    "workflow_config_name",
                    {"workflow_class_name": "C", "workflow_config_name": 5},
                    "'workflow_config_name'",
                ),
                ("lone workflow_config_name", {"workflow_config_name": "eu"}, "'workflow_class_name'"),
                ("authenticated_user", {"authenticated_user": ["ann"]}, "'authenticated_user'"),
                ("authenticated_roles", {"authenticated_roles": "admin"}, "'authenticated_roles'"),
                ("duplication_policy", {"duplication_policy": "sometimes"}, "'duplication_policy'"),
                ("deduplication_policy", {"deduplication_policy": 0}, "'deduplication_policy'"),
                ("max_recovery_attempts", {"max_recovery_attempts": 5}, "'max_recovery_attempts'"),
            )
        ),
        Case("client send to an empty id", lambda: app.send("", 1), ConfigError, "destination_id"),
        Case("client send a NUL topic", lambda: app.send("someone", 1, "\x00"), ConfigError, "NUL"),
        Case("client malformed URL", lambda: DBOSClient("mysql://h/db"), ConfigError, "sqlite:///"),
        Case(
            "client retrieve unknown workflow", lambda: app.retrieve_workflow("nope-wf"), WorkflowNotFoundError, "nope"
        ),
        Case("client get_event NaN timeout", lambda: app.get_event("w", "k", math.nan), ConfigError, "timeout_seconds"),
        Case("client send_to_forks empty id", lambda: app.send_to_forks("", 1), ConfigError, "destination_id"),
        Case("client send_to_forks unknown", lambda: app.send_to_forks("nope-wf", 1), WorkflowNotFoundError, "nope"),
        Case("client read_stream_offset key", lambda: app.read_stream_offset("w", None), ConfigError, "key"),  # type: ignore[arg-type]
        Case(
            "client read_stream_offset unknown",
            lambda: app.read_stream_offset("nope-wf", "s"),
            WorkflowNotFoundError,
            "nope",
        ),
    ]
    check(cases, app)


def test_config(app: DBOSClient) -> None:
    def make(**config: Any) -> Any:
        return DBOS(config={"name": "bad-config", **config})

    cases = [
        Case("name not a string", lambda: DBOS(config={"name": 5}), ConfigError, "'name'"),
        Case("lease as a string", lambda: make(lease_seconds="10"), ConfigError, "lease_seconds"),
        Case("malformed database URL", lambda: make(system_database_url="mysql://h/db"), ConfigError, "database URL"),
        Case("zero threads", lambda: make(max_workflow_threads=0), ConfigError, "max_workflow_threads"),
        Case("synchronous mode", lambda: make(sqlite_synchronous="OFF"), ConfigError, "sqlite_synchronous"),
        Case("unknown key", lambda: make(leese_seconds=3), ConfigError, "lease_seconds"),
        Case(
            "conductor_key not a string",
            lambda: DBOS(config={"name": "bad-config"}, conductor_key=5),  # type: ignore[arg-type]
            ConfigError,
            "conductor_key",
        ),
    ]
    check(cases, app)


@pytest.mark.parametrize(
    ("args", "phrase"),
    [
        (["workflow", "list", "--db", "mysql://h/db"], "sqlite:///"),
        (["workflow", "list", "--limit", "-1"], "limit"),
        (["workflow", "fork", "no-such-wf", "--step", "0"], "step"),
        (["workflow", "get", "no-such-wf"], "no-such-wf"),
    ],
)
def test_cli(args: list[str], phrase: str, app: DBOSClient, db_url: str) -> None:
    before = counts(app)
    full = args if "--db" in args else [*args, "--db", db_url]
    proc = run(*full)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode != 0 and len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert phrase in lines[0], lines[0]
    assert counts(app) == before
