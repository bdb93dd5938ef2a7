"""The queue registry (DBOS 3.x): register / retrieve / list / delete queues with limits stored in
the system database, live setters obeyed by every process, ``on_conflict``, ``listen_queues``,
``enqueue_workflow``, enqueue policies (``duplication_policy``, ``workflow_id_reuse_policy``) and
``set_workflow_delay``; DBOSClient forms.

In-process tests run with ``queue_poll_seconds=30``: a change must act through pushed wake-ups,
never the fallback poll (a test relying on the poll would time out).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import spawn, wait_until
from transact import (
    DBOS,
    ConfigError,
    DBOSClient,
    NotLaunchedError,
    Queue,
    QueueDeduplicatedError,
    SetEnqueueOptions,
    SetWorkflowID,
    WorkflowNotFoundError,
)
from transact.errors import WorkflowConflictError
from transact.storage.rows import ExecutorRow

APP = Path(__file__).parent.parent / "crash" / "apps" / "registry_app.py"
Launch = Callable[..., type[DBOS]]
GATE = threading.Event()


@pytest.fixture
def launch(config: dict[str, Any]) -> Iterator[Launch]:
    """Declare queues and workflows first, then call ``launch(**extra_config)``."""
    DBOS.destroy(destroy_registry=True)
    GATE.clear()

    def go(**extra: Any) -> type[DBOS]:
        DBOS(config={**config, "queue_poll_seconds": 30, **extra})
        DBOS.launch()
        return DBOS

    yield go
    GATE.set()
    DBOS.destroy(destroy_registry=True)


def declare_workflows() -> tuple[Any, Any]:
    @DBOS.workflow(name="double")
    def double(x: int) -> int:
        return x * 2

    @DBOS.workflow(name="gated")
    def gated(x: int) -> int:
        GATE.wait(30)
        return x

    return double, gated


def statuses(ids: list[str]) -> list[str]:
    return [s.status for s in (DBOS.get_workflow_status(i) for i in ids) if s is not None]


# -- register / retrieve / list / delete ------------------------------------------------------------
def test_register_retrieve_list_delete(launch: Launch) -> None:
    double, _ = declare_workflows()
    launch()
    q = DBOS.register_queue("reg", concurrency=4, limiter={"limit": 10, "period": 2}, worker_concurrency=2)
    assert (q.name, q.concurrency, q.worker_concurrency, q.limiter) == ("reg", 4, 2, {"limit": 10, "period": 2.0})
    assert (q.priority_enabled, q.partition_queue, q.polling_interval_sec) == (False, False, None)
    got = DBOS.retrieve_queue("reg")
    assert got is not None and got.concurrency == 4 and got.limiter == {"limit": 10, "period": 2.0}
    assert DBOS.retrieve_queue("missing") is None
    DBOS.register_queue("other", priority_enabled=True)
    assert [x.name for x in DBOS.list_queues()] == ["other", "reg"]
    assert q.enqueue(double, 21).get_result(timeout=20) == 42
    assert DBOS.enqueue_workflow("reg", double, 5).get_result(timeout=20) == 10
    with pytest.raises(ConfigError, match="no queue 'nope' is registered"):
        DBOS.enqueue_workflow("nope", double, 1)
    assert DBOS.delete_queue("other") is True
    assert DBOS.delete_queue("other") is False
    assert [x.name for x in DBOS.list_queues()] == ["reg"]

    async def async_forms() -> tuple[Any, ...]:
        made = await DBOS.register_queue_async("aq", concurrency=3)
        found = await DBOS.retrieve_queue_async("aq")
        listed = await DBOS.list_queues_async()
        handle = await DBOS.enqueue_workflow_async("aq", double, 4)
        result = await handle.get_result()
        return made.name, found and await found.get_concurrency_async(), len(listed), result

    assert asyncio.run(async_forms()) == ("aq", 3, 2, 8)
    assert asyncio.run(DBOS.delete_queue_async("aq")) is True


def test_delete_refused_while_work_waits(launch: Launch) -> None:
    double, _ = declare_workflows()
    launch()
    q = DBOS.register_queue("busy")
    with SetEnqueueOptions(delay_seconds=600):
        handle = q.enqueue(double, 3)
    assert handle.get_status().status == "DELAYED"
    with pytest.raises(ConfigError, match="still holds 1 enqueued, delayed or running"):
        DBOS.delete_queue("busy")
    assert DBOS.retrieve_queue("busy") is not None
    DBOS.set_workflow_delay(handle.workflow_id, 0)  # due now: the pushed wake-up promotes it
    assert handle.get_result(timeout=20) == 6
    assert DBOS.delete_queue("busy") is True


def test_register_validates(launch: Launch) -> None:
    launch()
    with pytest.raises(ConfigError, match="worker_concurrency"):
        DBOS.register_queue("bad", concurrency=1, worker_concurrency=2)
    with pytest.raises(ConfigError, match="limiter"):
        DBOS.register_queue("bad", limiter={"limit": 1})
    with pytest.raises(ConfigError, match="on_conflict"):
        DBOS.register_queue("bad", on_conflict="sometimes")
    assert DBOS.retrieve_queue("bad") is None


def test_on_conflict(launch: Launch) -> None:
    rt = launch()._rt()
    assert DBOS.register_queue("c", concurrency=1).concurrency == 1
    assert DBOS.register_queue("c", concurrency=2).concurrency == 2  # this process runs the latest version
    assert DBOS.register_queue("c", concurrency=3, on_conflict="never_update").concurrency == 2
    assert DBOS.register_queue("c", concurrency=4, on_conflict="always_update").concurrency == 4
    # A newer deploy started: this (older) process may no longer overwrite the limits it set.
    later = ExecutorRow("newer-exec", "host", 1, "t", "v-newer", 2**62, 2**62, "RUNNING", "")
    rt.store.executor_register(later)
    assert DBOS.register_queue("c", concurrency=5).concurrency == 4
    assert DBOS.retrieve_queue("c").concurrency == 4  # type: ignore[union-attr]
    assert DBOS.register_queue("c", concurrency=6, on_conflict="always_update").concurrency == 6


def test_queue_declarations_join_the_registry(launch: Launch) -> None:
    double, _ = declare_workflows()
    Queue("declared", concurrency=2, priority_enabled=True)
    assert DBOS.register_queue("early", worker_concurrency=3).worker_concurrency == 3  # before launch
    launch()
    found = DBOS.retrieve_queue("declared")
    assert found is not None and (found.concurrency, found.priority_enabled) == (2, True)
    assert DBOS.retrieve_queue("early").worker_concurrency == 3  # type: ignore[union-attr]
    late = Queue("late", limiter={"limit": 5, "period": 1.5})
    assert DBOS.retrieve_queue("late").limiter == {"limit": 5, "period": 1.5}  # type: ignore[union-attr]
    assert late.enqueue(double, 2).get_result(timeout=20) == 4


def test_not_launched(config: dict[str, Any]) -> None:
    DBOS.destroy(destroy_registry=True)
    DBOS(config=config)
    try:
        with pytest.raises(NotLaunchedError):
            DBOS.retrieve_queue("x")
        with pytest.raises(NotLaunchedError):
            Queue("x").set_concurrency(2)
    finally:
        DBOS.destroy(destroy_registry=True)


# -- live setters -------------------------------------------------------------------------------
def test_setters_store_and_validate(launch: Launch) -> None:
    launch()
    q = DBOS.register_queue("s", concurrency=5)
    q.set_concurrency(8)
    q.set_worker_concurrency(4)
    q.set_limiter({"limit": 7, "period": 0.5})
    q.set_priority_enabled(True)
    q.set_partition_queue(True)
    q.set_polling_interval_sec(0.25)
    fresh = DBOS.retrieve_queue("s")
    assert fresh is not None
    assert (fresh.concurrency, fresh.worker_concurrency, fresh.limiter) == (8, 4, {"limit": 7, "period": 0.5})
    assert (fresh.priority_enabled, fresh.partition_queue, fresh.polling_interval_sec) == (True, True, 0.25)
    q.set_limiter(None)
    q.set_concurrency(None)
    assert (q.limiter, q.concurrency) == (None, None)
    with pytest.raises(ConfigError, match="cannot exceed concurrency"):
        q.set_concurrency(2)  # worker_concurrency is 4
    with pytest.raises(ConfigError, match="concurrency"):
        q.set_concurrency(0)
    with pytest.raises(ConfigError, match="True or False"):
        q.set_priority_enabled("yes")  # type: ignore[arg-type]

    async def async_setters() -> tuple[Any, ...]:
        await q.set_worker_concurrency_async(None)
        await q.set_concurrency_async(3)
        await q.set_limiter_async({"limit": 1, "period": 1})
        await q.set_priority_enabled_async(False)
        await q.set_partition_queue_async(False)
        await q.set_polling_interval_sec_async(None)
        return (
            await q.get_concurrency_async(),
            await q.get_worker_concurrency_async(),
            await q.get_limiter_async(),
            await q.get_priority_enabled_async(),
            await q.get_partition_queue_async(),
            await q.get_polling_interval_sec_async(),
        )

    assert asyncio.run(async_setters()) == (3, None, {"limit": 1, "period": 1.0}, False, False, None)


def test_raised_concurrency_applies_at_once(launch: Launch) -> None:
    _, gated = declare_workflows()
    q = Queue("live", concurrency=1)
    launch()
    handles = [q.enqueue(gated, i) for i in range(3)]
    ids = [h.workflow_id for h in handles]
    wait_until(lambda: statuses(ids).count("PENDING") == 1, what="one running under concurrency 1")
    q.set_concurrency(3)  # no restart, no poll: the pushed change wakes the dispatcher
    wait_until(lambda: statuses(ids).count("PENDING") == 3, timeout=10, what="all three running")
    GATE.set()
    assert [h.get_result(timeout=20) for h in handles] == [0, 1, 2]


def test_enabling_priority_applies_to_enqueue(launch: Launch) -> None:
    double, _ = declare_workflows()
    q = Queue("prio")
    launch()
    with pytest.raises(ConfigError, match="does not have priorities"), SetEnqueueOptions(priority=1):
        q.enqueue(double, 1)
    q.set_priority_enabled(True)
    wait_until(lambda: DBOS.retrieve_queue("prio").priority_enabled)  # type: ignore[union-attr]

    def enqueue_with_priority() -> int:
        with SetEnqueueOptions(priority=1):
            return q.enqueue(double, 1).get_result(timeout=20)  # type: ignore[no-any-return]

    assert wait_until(lambda: _quiet(enqueue_with_priority), what="the dispatcher's cache sees priorities") == 2


def _quiet(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except ConfigError:
        return None


# -- listen_queues --------------------------------------------------------------------------------
def test_listen_queues(launch: Launch, config: dict[str, Any]) -> None:
    double, _ = declare_workflows()
    mine, theirs = Queue("mine"), Queue("theirs")
    DBOS(config={**config, "queue_poll_seconds": 30})
    with pytest.raises(ConfigError, match="a list of Queue objects or queue names"):
        DBOS.listen_queues("mine")  # type: ignore[arg-type]
    DBOS.listen_queues([mine])
    DBOS.launch()
    with pytest.raises(ConfigError, match=r"before DBOS\.launch"):
        DBOS.listen_queues([theirs])
    waiting = theirs.enqueue(double, 1)
    assert mine.enqueue(double, 2).get_result(timeout=20) == 4
    assert DBOS.enqueue_workflow("mine", double, 3).get_result(timeout=20) == 6
    assert waiting.get_status().status == "ENQUEUED"  # passes ran for "mine"; "theirs" is not served here


# -- enqueue policies -------------------------------------------------------------------------------
def test_duplication_policy(launch: Launch) -> None:
    _, gated = declare_workflows()
    q = Queue("dedup")
    launch()
    with SetEnqueueOptions(deduplication_id="k"):
        first = q.enqueue(gated, 1)
        with pytest.raises(QueueDeduplicatedError):
            q.enqueue(gated, 2)
    with SetEnqueueOptions(deduplication_id="k", duplication_policy="return_existing"):
        again = q.enqueue(gated, 3)
        again_async = asyncio.run(q.enqueue_async(gated, 4))
    with SetEnqueueOptions(deduplication_id="k", duplication_policy="return-existing"):  # the prose spelling
        hyphenated = q.enqueue(gated, 5)
    assert again.workflow_id == first.workflow_id == again_async.workflow_id == hyphenated.workflow_id
    with pytest.raises(ConfigError, match="duplication_policy"):
        SetEnqueueOptions(duplication_policy="ignore")
    GATE.set()
    assert again.get_result(timeout=20) == 1
    with SetEnqueueOptions(deduplication_id="k", duplication_policy="return_existing"):
        fresh = q.enqueue(gated, 5)  # the id is free again: a new workflow
    assert fresh.workflow_id != first.workflow_id and fresh.get_result(timeout=20) == 5


def test_workflow_id_reuse_policy(launch: Launch) -> None:
    double, _ = declare_workflows()
    q = Queue("reuse")
    launch()
    with SetWorkflowID("fixed"):
        assert q.enqueue(double, 1).get_result(timeout=20) == 2
    with SetWorkflowID("fixed"):
        assert q.enqueue(double, 9).get_result(timeout=20) == 2  # default: the existing workflow
    reject = SetEnqueueOptions(workflow_id_reuse_policy="reject")
    with reject, SetWorkflowID("fixed"), pytest.raises(WorkflowConflictError, match="already taken"):
        q.enqueue(double, 9)
    with SetEnqueueOptions(workflow_id_reuse_policy="reject"), SetWorkflowID("new-one"):
        assert q.enqueue(double, 4).get_result(timeout=20) == 8
    with pytest.raises(ConfigError, match="workflow_id_reuse_policy"):
        SetEnqueueOptions(workflow_id_reuse_policy="maybe")


# -- set_workflow_delay -----------------------------------------------------------------------------
def test_set_workflow_delay(launch: Launch) -> None:
    double, _ = declare_workflows()
    q = Queue("later")
    launch()
    with SetEnqueueOptions(delay_seconds=600):
        a, b = q.enqueue(double, 1), q.enqueue(double, 2)
    DBOS.set_workflow_delay(a.workflow_id, 0.2)
    assert a.get_result(timeout=20) == 2
    asyncio.run(DBOS.set_workflow_delay_async(b.workflow_id, 0))
    assert b.get_result(timeout=20) == 4
    with pytest.raises(ConfigError, match="is SUCCESS, not DELAYED"):
        DBOS.set_workflow_delay(a.workflow_id, 1)
    with pytest.raises(WorkflowNotFoundError):
        DBOS.set_workflow_delay("no-such-workflow", 1)
    with pytest.raises(ConfigError, match="seconds"):
        DBOS.set_workflow_delay(a.workflow_id, -1)


# -- DBOSClient -------------------------------------------------------------------------------------
def test_client_registry(launch: Launch, db_url: str) -> None:
    double, _ = declare_workflows()
    served = Queue("shared-q", concurrency=2)
    launch()
    with DBOSClient(db_url) as client:
        assert client.retrieve_queue("shared-q").concurrency == 2  # type: ignore[union-attr]
        q = client.register_queue("shared-q", concurrency=5, worker_concurrency=1)  # always_update
        assert (q.concurrency, served.concurrency, served.worker_concurrency) == (5, 5, 1)
        q.set_concurrency(6)
        assert served.concurrency == 6
        with pytest.raises(ConfigError, match="update_if_latest_version"):
            client.register_queue("x", on_conflict="update_if_latest_version")
        with pytest.raises(ConfigError, match=r"client\.enqueue"):
            q.enqueue(double, 1)
        assert [x.name for x in client.list_queues()] == ["shared-q"]
        handle = client.enqueue({"workflow_name": "double", "queue_name": "shared-q", "delay_seconds": 600}, 5)
        client.set_workflow_delay(handle.workflow_id, 0)
        assert handle.get_result(timeout=20) == 10
        client.register_queue("gone")
        assert client.delete_queue("gone") is True
        assert asyncio.run(client.retrieve_queue_async("gone")) is None


# -- across processes ------------------------------------------------------------------------------
def start_worker(procs: list[subprocess.Popen[str]], db_url: str, workdir: Path, **env: str) -> subprocess.Popen[str]:
    proc = spawn(APP, db_url, str(workdir), json.dumps({"concurrency": 1}), env=env)
    procs.append(proc)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("READY"), line
    return proc


def test_live_change_reaches_another_process(db_url: str, tmp_path: Path, procs: list[subprocess.Popen[str]]) -> None:
    (tmp_path / "hold").touch()
    start_worker(procs, db_url, tmp_path)
    with DBOSClient(db_url) as client:
        handles = [client.enqueue({"workflow_name": "interval", "queue_name": "reg"}, i, 0.0) for i in range(3)]
        ids = [h.workflow_id for h in handles]

        def running() -> int:
            return [client.get_workflow_status(i).status for i in ids].count("PENDING")  # type: ignore[union-attr]

        wait_until(lambda: running() == 1, what="one running under concurrency 1")
        queue = client.retrieve_queue("reg")
        assert queue is not None and queue.concurrency == 1
        queue.set_concurrency(3)  # the worker polls every 30 s: only the pushed change can start them
        wait_until(lambda: running() == 3, timeout=10, what="the worker obeys the raised limit")
        (tmp_path / "hold").unlink()
        assert sorted(h.get_result(timeout=30) for h in handles) == [0, 1, 2]
    (tmp_path / "stop").touch()
