"""Queues: declaration and validation, enqueue, limits (global, per worker, rate, per partition),
priority, deduplication, delays, push wake-ups, and the claim's query plans.

Every in-process test runs with ``queue_poll_seconds=30``: work must start on pushed wake-ups,
never on the fallback poll (a test relying on the poll would time out).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql as pgsql

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
    SetWorkflowTimeout,
    WorkflowHandle,
)
from transact.storage import open_store
from transact.storage.queues import _PARTITIONS, _PROBE, _PROMOTE, _state_sql, claim_sql, lock_key
from transact.storage.rows import WORKFLOW_COLUMNS, WorkflowRow
from transact.storage.workflows import to_workflow

APP = Path(__file__).parent.parent / "crash" / "apps" / "queue_app.py"
Launch = Callable[..., type[DBOS]]


@pytest.fixture
def launch(config: dict[str, Any]) -> Iterator[Launch]:
    """Declare queues and workflows first, then call ``launch(**extra_config)``."""
    DBOS.destroy(destroy_registry=True)

    def go(**extra: Any) -> type[DBOS]:
        DBOS(config={**config, "queue_poll_seconds": 30, **extra})
        DBOS.launch()
        return DBOS

    yield go
    DBOS.destroy(destroy_registry=True)


def queue_rows(queue: str) -> list[WorkflowRow]:
    store = DBOS._rt().store
    sql = f"SELECT {WORKFLOW_COLUMNS} FROM workflow_status WHERE queue_name = ? ORDER BY created_at"
    return [to_workflow(r) for r in store.read(lambda tx: tx.all(sql, (queue,)))]


def statuses(queue: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for row in queue_rows(queue):
        out[row.status] = out.get(row.status, 0) + 1
    return out


class Tracker:
    """Counts bodies running at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.active: set[Any] = set()
        self.max_active = 0
        self.order: list[Any] = []

    @contextlib.contextmanager
    def run(self, key: Any) -> Iterator[None]:
        with self.lock:
            self.active.add(key)
            self.order.append(key)
            self.max_active = max(self.max_active, len(self.active))
        try:
            yield
        finally:
            with self.lock:
                self.active.discard(key)


# -- declaring -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": ""}, "non-empty string"),
        ({"name": "a|b"}, "without '|'"),
        ({"name": "q", "concurrency": 0}, "concurrency must be an int >= 1"),
        ({"name": "q", "concurrency": True}, "concurrency must be an int >= 1"),
        ({"name": "q", "worker_concurrency": -1}, "worker_concurrency must be an int >= 1"),
        ({"name": "q", "concurrency": 2, "worker_concurrency": 3}, "cannot exceed concurrency"),
        ({"name": "q", "limiter": {"limit": 5}}, "limiter must be a dict like"),
        ({"name": "q", "limiter": {"limit": 5, "period": 1, "burst": 2}}, "limiter must be a dict like"),
        ({"name": "q", "limiter": {"limit": 0, "period": 1}}, "'limit' must be an int >= 1"),
        ({"name": "q", "limiter": {"limit": 1, "period": 0}}, "'period' must be a finite number of seconds > 0"),
        ({"name": "q", "priority_enabled": "yes"}, "priority_enabled must be True or False"),
        ({"name": "q", "partition_queue": 1}, "partition_queue must be True or False"),
        ({"name": "q", "polling_interval_sec": 0}, "polling_interval_sec must be a finite number of seconds > 0"),
    ],
)
def test_bad_queue_arguments_are_rejected(kwargs: dict[str, Any], message: str) -> None:
    DBOS.destroy(destroy_registry=True)
    with pytest.raises(ConfigError, match=message):
        Queue(**kwargs)
    assert kwargs["name"] not in _registry_queues()


def _registry_queues() -> dict[str, Any]:
    from transact.engine.registry import REGISTRY

    return REGISTRY.queues


def test_redeclaring_a_queue_needs_the_same_settings() -> None:
    DBOS.destroy(destroy_registry=True)
    Queue("dup", concurrency=2, limiter={"limit": 3, "period": 1.0})
    Queue("dup", concurrency=2, limiter={"limit": 3, "period": 1})  # same settings: fine
    with pytest.raises(ConfigError, match=r"already declared with different settings.*concurrency=2"):
        Queue("dup", concurrency=3)
    DBOS.destroy(destroy_registry=True)


# -- enqueue ---------------------------------------------------------------------------------
def test_enqueue_runs_sync_and_async_workflows(launch: Launch) -> None:
    q = Queue("basic")  # declared before DBOS() exists

    @DBOS.workflow()
    def double(x: int) -> int:
        return x * 2

    @DBOS.workflow()
    async def triple(x: int) -> int:
        await asyncio.sleep(0)
        return x * 3

    launch()
    handles = [q.enqueue(double, i) for i in range(10)]
    assert isinstance(handles[0], WorkflowHandle)
    assert [h.get_result() for h in handles] == [i * 2 for i in range(10)]
    assert q.enqueue(triple, 5).get_result() == 15
    status = handles[0].get_status()
    assert status.status == "SUCCESS" and status.queue_name == "basic"

    async def from_async() -> list[int]:
        hs = [await q.enqueue_async(double, 21), await q.enqueue_async(triple, 7)]
        return [await h.get_result() for h in hs]

    assert asyncio.run(from_async()) == [42, 21]


def test_queue_declared_after_launch_serves_waiting_work(launch: Launch, db_url: str) -> None:
    @DBOS.workflow(name="late_wf")
    def late_wf(x: int) -> int:
        return x + 1

    launch()
    client = DBOSClient(db_url)
    try:
        handle = client.enqueue({"workflow_name": "late_wf", "queue_name": "late"}, 41)
        assert client.get_workflow_status(handle.workflow_id).status == "ENQUEUED"  # type: ignore[union-attr]
        Queue("late")
        assert handle.get_result() == 42
    finally:
        client.destroy()


def test_enqueue_with_workflow_id_is_idempotent(launch: Launch) -> None:
    q = Queue("idem")
    runs: list[int] = []

    @DBOS.workflow()
    def once(x: int) -> int:
        runs.append(x)
        return x

    launch()
    with SetWorkflowID("fixed-id"):
        h1 = q.enqueue(once, 1)
    assert h1.get_result() == 1
    with SetWorkflowID("fixed-id"):
        h2 = q.enqueue(once, 1)
    assert h2.workflow_id == "fixed-id" and h2.get_result() == 1
    assert runs == [1]


def test_enqueue_needs_launch() -> None:
    DBOS.destroy(destroy_registry=True)
    q = Queue("early")

    @DBOS.workflow()
    def job() -> None:
        return None

    with pytest.raises(NotLaunchedError):
        q.enqueue(job)
    DBOS.destroy(destroy_registry=True)


def test_async_workflow_enqueues_children(launch: Launch) -> None:
    q = Queue("fanout")

    @DBOS.workflow()
    async def square(x: int) -> int:
        return x * x

    @DBOS.workflow()
    async def fan(n: int) -> int:
        handles = [await q.enqueue_async(square, i) for i in range(n)]
        return sum([await h.get_result() for h in handles])

    launch()

    async def main() -> int:
        with SetWorkflowID("fan-1"):
            return await fan(5)

    assert asyncio.run(main()) == sum(i * i for i in range(5))
    assert sorted(r.workflow_id for r in queue_rows("fanout")) == [f"fan-1-{i}" for i in range(1, 6)]


def test_unregistered_workflow_goes_back_to_the_queue(
    launch: Launch, db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A process that cannot run a queued workflow returns it for one that can."""
    Queue("mixed")
    launch()
    with DBOSClient(db_url) as client:
        handle = client.enqueue({"workflow_name": "not_here", "queue_name": "mixed"})
        wait_until(lambda: "is not registered in this process" in caplog.text, what="the give-back")

        def given_back() -> bool:
            status = client.get_workflow_status(handle.workflow_id)
            return status is not None and status.status == "ENQUEUED" and status.executor_id is None

        wait_until(given_back, what="the workflow back in the queue, unowned")


def test_data_pipelines_seed_example(launch: Launch) -> None:
    """The seed's "Data Pipelines" example, unchanged except the import and a stand-in step."""
    from transact import DBOS, Queue, WorkflowHandle  # noqa: F401 - the example's own import line

    List = list
    HttpUrl = str
    logger = DBOS.logger

    queue = Queue("indexing_queue")

    @DBOS.workflow()
    def index_document(url: HttpUrl) -> int:
        return len(url)  # "pages" in the document

    @DBOS.workflow()
    def indexing_workflow(urls: List[HttpUrl]):  # type: ignore[no-untyped-def]
        handles: List[WorkflowHandle] = []  # type: ignore[type-arg]
        for url in urls:
            handle = queue.enqueue(index_document, url)
            handles.append(handle)
        indexed_pages = 0
        for handle in handles:
            indexed_pages += handle.get_result()
        logger.info(f"Indexed {len(urls)} documents totaling {indexed_pages} pages")
        return indexed_pages

    launch()
    urls = [f"https://example.com/{'x' * i}" for i in range(8)]
    with SetWorkflowID("pipeline"):
        assert indexing_workflow(urls) == sum(len(u) for u in urls)
    children = queue_rows("indexing_queue")
    assert len(children) == 8
    assert all(c.parent_workflow_id == "pipeline" and c.workflow_id.startswith("pipeline") for c in children)
    with SetWorkflowID("pipeline"):  # replay: the recorded children, not new ones
        assert indexing_workflow(urls) == sum(len(u) for u in urls)
    assert len(queue_rows("indexing_queue")) == 8


# -- limits ----------------------------------------------------------------------------------
@pytest.mark.parametrize("limit", [{"concurrency": 2}, {"worker_concurrency": 2}])
def test_concurrency_limits_hold(launch: Launch, limit: dict[str, int]) -> None:
    q = Queue("limited", **limit)
    gate = threading.Event()
    tracker = Tracker()

    @DBOS.workflow()
    def job(i: int) -> int:
        with tracker.run(i):
            gate.wait(10)
        return i

    launch()
    handles = [q.enqueue(job, i) for i in range(6)]
    wait_until(lambda: len(tracker.active) == 2, what="two running")
    assert statuses("limited") == {"PENDING": 2, "ENQUEUED": 4}
    gate.set()
    assert [h.get_result() for h in handles] == list(range(6))
    assert tracker.max_active == 2


def test_rate_limit_counts_starts_per_window(launch: Launch) -> None:
    period_ms = 400
    q = Queue("rated", limiter={"limit": 2, "period": period_ms / 1000})

    @DBOS.workflow()
    def job(i: int) -> int:
        return i

    launch()
    handles = [q.enqueue(job, i) for i in range(6)]
    assert [h.get_result() for h in handles] == list(range(6))
    starts = sorted(r.started_at or 0 for r in queue_rows("rated"))
    for s in starts:
        assert sum(1 for t in starts if s - period_ms < t <= s) <= 2, starts
    assert starts[-1] - starts[0] >= 2 * period_ms  # six starts, two per window: three windows


def test_priority_order(launch: Launch) -> None:
    q = Queue("prio", worker_concurrency=1, priority_enabled=True)
    gate = threading.Event()
    order: list[int] = []

    @DBOS.workflow()
    def blocker() -> str:
        gate.wait(10)
        return "done"

    @DBOS.workflow()
    def job(p: int) -> int:
        order.append(p)
        return p

    launch()
    first = q.enqueue(blocker)
    wait_until(lambda: first.get_status().status == "PENDING")
    handles = []
    for p in [5, 1, 4, 2, 3]:
        with SetEnqueueOptions(priority=p):
            handles.append(q.enqueue(job, p))
    handles.append(q.enqueue(job, 0))  # no priority: 0, ahead of every explicit priority
    gate.set()
    assert first.get_result() == "done"
    for h in handles:
        h.get_result()
    assert order == [0, 1, 2, 3, 4, 5]


def test_enqueue_option_errors_write_nothing(launch: Launch) -> None:
    plain = Queue("plain")
    parted = Queue("parted", partition_queue=True)

    @DBOS.workflow()
    def job() -> None:
        return None

    launch()
    with SetEnqueueOptions(priority=3), pytest.raises(ConfigError, match="priority_enabled=True"):
        plain.enqueue(job)
    with pytest.raises(ConfigError, match="queue_partition_key"):
        parted.enqueue(job)
    with SetEnqueueOptions(queue_partition_key="k"), pytest.raises(ConfigError, match="not partitioned"):
        plain.enqueue(job)
    with SetEnqueueOptions(queue_partition_key=""), pytest.raises(ConfigError, match="non-empty"):
        parted.enqueue(job)
    with pytest.raises(Exception, match="not a workflow"):
        plain.enqueue(print)
    assert queue_rows("plain") == [] and queue_rows("parted") == []


def test_deduplication_rejects_a_second_active_enqueue(launch: Launch) -> None:
    q = Queue("dedup")
    gate = threading.Event()

    @DBOS.workflow()
    def job(x: int) -> int:
        gate.wait(10)
        return x

    launch()
    with SetEnqueueOptions(deduplication_id="order-7"):
        h1 = q.enqueue(job, 1)
        with pytest.raises(QueueDeduplicatedError, match="order-7"):
            q.enqueue(job, 2)
    assert len(queue_rows("dedup")) == 1
    gate.set()
    assert h1.get_result() == 1
    with SetEnqueueOptions(deduplication_id="order-7"):  # no longer active: accepted
        assert q.enqueue(job, 3).get_result() == 3
    with SetEnqueueOptions(deduplication_id="later", delay_seconds=60):
        q.enqueue(job, 4)  # DELAYED counts as active too
        with pytest.raises(QueueDeduplicatedError):
            q.enqueue(job, 5)


def test_partitions_are_limited_independently(launch: Launch) -> None:
    q = Queue("parts", concurrency=1, partition_queue=True)
    gates = {"a": threading.Event(), "b": threading.Event()}
    tracker = Tracker()

    @DBOS.workflow()
    def job(key: str, i: int) -> str:
        with tracker.run((key, i)):
            gates[key].wait(10)
        return f"{key}{i}"

    launch()
    with SetEnqueueOptions(queue_partition_key="a"):
        a = [q.enqueue(job, "a", i) for i in range(2)]
    with SetEnqueueOptions(queue_partition_key="b"):
        b = [q.enqueue(job, "b", i) for i in range(2)]
    # one per partition: partition b is not held up by the blocked partition a
    wait_until(lambda: sorted(k for k, _ in tracker.active) == ["a", "b"], what="one run per partition")
    assert statuses("parts") == {"PENDING": 2, "ENQUEUED": 2}
    gates["b"].set()
    assert sorted(h.get_result() for h in b) == ["b0", "b1"]
    assert sum(1 for h in a if h.get_status().status == "ENQUEUED") == 1
    gates["a"].set()
    assert sorted(h.get_result() for h in a) == ["a0", "a1"]
    assert tracker.max_active == 2


# -- time ------------------------------------------------------------------------------------
def test_delayed_work_starts_at_its_time(launch: Launch) -> None:
    q = Queue("later")

    @DBOS.workflow()
    def job(x: int) -> int:
        return x

    launch()
    with SetEnqueueOptions(delay_seconds=0.3):
        delayed = q.enqueue(job, 1)
    prompt = q.enqueue(job, 2)
    assert delayed.get_status().status == "DELAYED"
    assert prompt.get_result() == 2
    assert delayed.get_result() == 1
    row = DBOS._rt().store.workflow_get(delayed.workflow_id)
    assert row is not None and row.available_at is not None and row.started_at is not None
    assert row.available_at >= row.created_at + 300
    assert row.started_at >= row.available_at


def test_work_enqueued_elsewhere_wakes_the_worker(launch: Launch, db_url: str) -> None:
    """Another connection (a client) enqueues, now and delayed: pushed wake-ups, not the poll."""
    Queue("remote")

    @DBOS.workflow(name="remote_wf")
    def remote_wf(x: int) -> int:
        return x * 10

    launch()
    client = DBOSClient(db_url)
    try:
        now = client.enqueue({"workflow_name": "remote_wf", "queue_name": "remote"}, 1)
        later = client.enqueue({"workflow_name": "remote_wf", "queue_name": "remote", "delay_seconds": 0.3}, 2)
        assert now.get_result(timeout=20) == 10
        assert later.get_result(timeout=20) == 20
    finally:
        client.destroy()


def test_timeout_starts_when_dequeued(launch: Launch) -> None:
    q = Queue("timed", worker_concurrency=1)
    gate = threading.Event()

    @DBOS.workflow()
    def blocker() -> None:
        gate.wait(10)

    @DBOS.workflow()
    def quick() -> str:
        return "ok"

    launch()
    first = q.enqueue(blocker)
    with SetWorkflowTimeout(5):
        handle = q.enqueue(quick)
    assert DBOS._rt().store.workflow_get(handle.workflow_id).deadline_at is None  # type: ignore[union-attr]
    gate.set()
    first.get_result()
    assert handle.get_result() == "ok"
    row = DBOS._rt().store.workflow_get(handle.workflow_id)
    assert row is not None and row.started_at is not None
    assert row.deadline_at == row.started_at + 5000


# -- query plans -----------------------------------------------------------------------------
def _fill(db_url: str) -> None:
    """A table where a scan would hurt: many finished rows, a few queued ones."""
    store = open_store(db_url)
    store.migrate()
    cols = "workflow_id, status, name, queue_name, queue_partition_key, priority, created_at, updated_at"
    rows: list[tuple[Any, ...]] = []
    for i in range(6000):
        status = "SUCCESS" if i % 100 else "ENQUEUED"
        rows.append((f"w{i}", status, "job", "q", f"p{i % 7}", 0, i, i))
        rows.append((f"x{i}", "SUCCESS", "job", None, None, 0, i, i))
    store.write(lambda tx: tx.many(f"INSERT INTO workflow_status ({cols}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows))
    store.close()


def _plan_queries(dialect: str) -> list[tuple[str, str, tuple[Any, ...]]]:
    now = 10_000
    return [
        ("claim", claim_sql(dialect, False), ("q", 10, "me", now, now, now)),
        ("claim by partition", claim_sql(dialect, True), ("q", "p1", 10, "me", now, now, now)),
        ("limits", _state_sql(False, True, True), ("q", "q", now - 500, "q", now - 500)),
        ("probe", _PROBE, ("q", "q")),
        ("promote", _PROMOTE, (now, "q", now)),
        ("partitions", _PARTITIONS, ("q", "q", 1000)),
    ]


@pytest.mark.parametrize("backend", ["postgres"])  # EXPLAIN; the SQLite plan has its own test
def test_claim_queries_use_the_queue_indexes_postgres(db_url: str, backend: str) -> None:
    _fill(db_url)
    with psycopg.connect(db_url, autocommit=True, options="-c search_path=transact") as conn:
        conn.execute("ANALYZE workflow_status")
        # Custom plans (values known), and generic ones: psycopg prepares statements it sees often.
        conn.execute("SET plan_cache_mode = force_generic_plan")
        for name, sql, params in _plan_queries("postgres"):
            numbered = sql.split("?")
            prepared = "".join(f"{part}${i}" for i, part in enumerate(numbered[:-1], 1)) + numbered[-1]
            conn.execute(f"PREPARE plan_check AS {prepared}")
            explains = {
                "custom": conn.execute("EXPLAIN " + sql.replace("?", "%s"), params),
                "generic": conn.execute(
                    pgsql.SQL("EXPLAIN EXECUTE plan_check({})").format(pgsql.SQL(", ").join(map(pgsql.Literal, params)))
                ),
            }
            for mode, cursor in explains.items():
                plan = "\n".join(r[0] for r in cursor)
                assert "Seq Scan" not in plan, f"{name} ({mode} plan) scans the table:\n{plan}"
                if name.startswith("claim"):
                    index = "ws_queue_partition_ready_idx" if "partition" in name else "ws_queue_ready_idx"
                    assert index in plan, f"{name} ({mode} plan) does not use {index}:\n{plan}"
            conn.execute("DEALLOCATE plan_check")
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key("q", None),))  # a valid bigint key


@pytest.mark.parametrize("backend", ["sqlite"])  # EXPLAIN QUERY PLAN; the Postgres plan has its own test
def test_claim_queries_use_the_queue_indexes_sqlite(db_url: str, backend: str) -> None:
    import sqlite3

    _fill(db_url)
    conn = sqlite3.connect(db_url[len("sqlite:///") :])
    conn.execute("ANALYZE")
    try:
        for name, sql, params in _plan_queries("sqlite"):
            plan = "\n".join(str(r[3]) for r in conn.execute("EXPLAIN QUERY PLAN " + sql, params))
            scans = [line for line in plan.splitlines() if line.startswith("SCAN workflow_status")]
            assert not scans, f"{name} scans the table:\n{plan}"
            if name.startswith("claim"):
                index = "ws_queue_partition_ready_idx" if "partition" in name else "ws_queue_ready_idx"
                assert index in plan, f"{name} does not use {index}:\n{plan}"
    finally:
        conn.close()


# -- several processes -----------------------------------------------------------------------
@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    procs: list[subprocess.Popen[str]] = []

    def start(db_url: str, **queue_kwargs: Any) -> subprocess.Popen[str]:
        proc = spawn(APP, db_url, str(tmp_path), json.dumps(queue_kwargs))
        procs.append(proc)
        return proc

    yield start
    (tmp_path / "stop").touch()
    for p in procs:
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def _ready(proc: subprocess.Popen[str]) -> None:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("READY"), line


def _intervals(client: DBOSClient, n: int, hold_s: float) -> list[dict[str, int]]:
    handles = [client.enqueue({"workflow_name": "timed", "queue_name": "shared"}, i, hold_s) for i in range(n)]
    return sorted((h.get_result(timeout=60) for h in handles), key=lambda r: r["start"])


def _max_overlap(intervals: list[dict[str, int]]) -> int:
    events = sorted([(r["start"], 1) for r in intervals] + [(r["end"], -1) for r in intervals])
    active = peak = 0
    for _, delta in events:
        active += delta
        peak = max(peak, active)
    return peak


def test_global_concurrency_one_across_three_processes(db_url: str, workers: Any) -> None:
    procs = [workers(db_url, concurrency=1) for _ in range(3)]
    for p in procs:
        _ready(p)
    client = DBOSClient(db_url)
    try:
        runs = _intervals(client, 9, 0.03)
    finally:
        client.destroy()
    assert [r["i"] for r in sorted(runs, key=lambda r: r["i"])] == list(range(9))
    for before, after in itertools.pairwise(runs):
        assert after["start"] >= before["end"], f"executions overlap: {before} {after}"


def test_worker_concurrency_per_process(db_url: str, workers: Any) -> None:
    procs = [workers(db_url, worker_concurrency=1) for _ in range(2)]
    for p in procs:
        _ready(p)
    client = DBOSClient(db_url)
    try:
        runs = _intervals(client, 8, 0.05)
    finally:
        client.destroy()
    by_pid: dict[int, list[dict[str, int]]] = {}
    for r in runs:
        by_pid.setdefault(r["pid"], []).append(r)
    assert all(_max_overlap(rs) == 1 for rs in by_pid.values())
    assert _max_overlap(runs) <= 2


def test_pinned_app_version_only_claims_its_own_work(config: dict[str, Any]) -> None:
    DBOS.destroy(destroy_registry=True)
    queue = Queue("pinned_q")

    @DBOS.workflow()
    def job(x: int) -> int:
        return x

    DBOS(config={**config, "app_version": "v2", "pin_app_version": True, "queue_poll_seconds": 0.2})
    DBOS.launch()
    try:
        with SetEnqueueOptions(app_version="v1"):
            old = queue.enqueue(job, 1)
        new = queue.enqueue(job, 2)
        assert new.get_result(timeout=20) == 2
        assert old.get_status().status == "ENQUEUED"  # left for a process running v1
    finally:
        DBOS.destroy(destroy_registry=True)
