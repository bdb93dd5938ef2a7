"""Listing and bulk management as DBOS documents them: every list filter (one value or a list),
the indexes behind them (EXPLAIN), step paging, WorkflowStatus fields, cancel/resume/delete of many
workflows, fork onto a queue, and the same through DBOSClient (with a worker subprocess)."""

from __future__ import annotations

import asyncio
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import spawn, wait_until
from transact import DBOS, DBOSClient, SetWorkflowID, WorkflowNotFoundError
from transact.engine import admin
from transact.errors import ConfigError
from transact.storage import Store, open_store
from transact.storage.rows import WorkflowRow

T0 = 1_700_000_000_000  # 2023-11-14T22:13:20Z
APP = Path(__file__).parents[1] / "apps" / "admin_worker_app.py"


@pytest.fixture
def store(dbos: type[DBOS], db_url: str) -> Iterator[Store]:
    s = open_store(db_url)
    yield s
    s.close()


@pytest.fixture
def client(db_url: str) -> Iterator[DBOSClient]:
    with DBOSClient(db_url) as c:
        yield c


def put(
    store: Store, wid: str, *, status: str = "SUCCESS", at: int = 0, updated: int | None = None, **extra: Any
) -> None:
    row = WorkflowRow(
        workflow_id=wid,
        status=status,
        name=extra.pop("name", "a"),
        created_at=T0 + at,
        updated_at=T0 + (at if updated is None else updated),
        **extra,
    )
    assert store.workflow_insert(row)[1]


def ids(statuses: list[Any]) -> list[str]:
    return [s.workflow_id for s in statuses]


def iso(offset_ms: int) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp((T0 + offset_ms) / 1000, tz=timezone.utc).isoformat()


def _rows(store: Store) -> None:
    put(store, "w1", at=0, updated=500, app_version="v1", executor_id="e1", authenticated_user="alice")
    put(store, "w2", at=1000, updated=9000, status="ERROR", app_version="v2", executor_id="e2")
    put(store, "w3", at=2000, status="PENDING", queue_name="q1", executor_id="e1", parent_workflow_id="w1")
    put(store, "w4", at=3000, status="ENQUEUED", queue_name="q2", app_version="v1", authenticated_user="bob")
    put(store, "w5", at=4000, updated=6000, forked_from="w1", authenticated_user="alice", parent_workflow_id="w2")
    put(store, "x1", at=5000, status="CANCELLED", updated=7000, forked_from="w2", queue_name="q1")


# -- filters ------------------------------------------------------------------------------------
def test_every_filter_takes_one_value_or_a_list(store: Store) -> None:
    _rows(store)
    assert ids(DBOS.list_workflows(app_version="v1")) == ["w1", "w4"]
    assert ids(DBOS.list_workflows(app_version=["v2", "v1"])) == ["w1", "w2", "w4"]
    assert ids(DBOS.list_workflows(executor_id="e1")) == ["w1", "w3"]
    assert ids(DBOS.list_workflows(executor_id=["e2", "e1"])) == ["w1", "w2", "w3"]
    assert ids(DBOS.list_workflows(user="alice")) == ["w1", "w5"]
    assert ids(DBOS.list_workflows(user=["alice", "bob"], sort_desc=True)) == ["w5", "w4", "w1"]
    assert ids(DBOS.list_workflows(queue_name=["q1", "q2"])) == ["w3", "w4", "x1"]
    assert ids(DBOS.list_workflows(forked_from="w1")) == ["w5"]
    assert ids(DBOS.list_workflows(forked_from=["w1", "w2"])) == ["w5", "x1"]
    assert ids(DBOS.list_workflows(parent_workflow_id=["w1", "w2"])) == ["w3", "w5"]
    assert ids(DBOS.list_workflows(workflow_id_prefix=["x", "w4"])) == ["w4", "x1"]
    assert ids(DBOS.list_workflows(workflow_id_prefix="")) == ["w1", "w2", "w3", "w4", "w5", "x1"]
    for empty in ("app_version", "executor_id", "user", "queue_name", "forked_from", "workflow_id_prefix"):
        assert DBOS.list_workflows(**{empty: []}) == [], empty  # an empty list matches nothing


def test_flags_and_time_ranges(store: Store) -> None:
    _rows(store)
    assert ids(DBOS.list_workflows(has_parent=True)) == ["w3", "w5"]
    assert ids(DBOS.list_workflows(has_parent=False)) == ["w1", "w2", "w4", "x1"]
    assert ids(DBOS.list_workflows(was_forked_from=True)) == ["w5", "x1"]
    assert ids(DBOS.list_workflows(was_forked_from=False, has_parent=False)) == ["w1", "w2", "w4"]
    assert ids(DBOS.list_workflows(queues_only=True)) == ["w3", "w4", "x1"]
    assert ids(DBOS.list_workflows(updated_after=iso(6000))) == ["w2", "w5", "x1"]
    assert ids(DBOS.list_workflows(updated_after=iso(2000), updated_before=iso(6000))) == ["w3", "w4", "w5"]
    # Completed: a final status, finished (updated_at) in the range; PENDING/ENQUEUED never match.
    assert ids(DBOS.list_workflows(completed_after=iso(5000))) == ["w2", "w5", "x1"]
    assert ids(DBOS.list_workflows(completed_before=iso(6000))) == ["w1", "w5"]
    assert ids(DBOS.list_workflows(completed_after=iso(0), status="CANCELLED")) == ["x1"]
    assert ids(DBOS.list_queued_workflows(queue_name=["q1", "q2"])) == ["w3", "w4"]
    assert ids(DBOS.list_queued_workflows(executor_id="e1")) == ["w3"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"has_parent": "yes"}, "has_parent must be True, False or None"),
        ({"was_forked_from": 1}, "was_forked_from must be True, False or None"),
        ({"queues_only": None}, "queues_only must be True or False"),
        ({"user": 5}, "user must be a string or a list of strings"),
        ({"app_version": [1]}, "app_version must be a string or a list of strings"),
        ({"updated_after": "soon"}, "updated_after must be an ISO-8601 time"),
        ({"completed_before": 3}, "completed_before must be an ISO-8601 string"),
        ({"sort_desc": "yes"}, "sort_desc must be True or False"),
    ],
)
def test_bad_filters_are_refused(dbos: type[DBOS], kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        DBOS.list_workflows(**kwargs)


# -- indexes ------------------------------------------------------------------------------------
def test_new_filters_use_indexes(store: Store) -> None:
    """Each filter on 40,000 rows walks its own index in created_at order (or, on Postgres, may walk
    ws_created_idx when that is cheaper): never a table scan or a full sort."""
    store.admin_insert_synthetic(count=40_000, id_prefix="syn-", names=["n"], statuses=["SUCCESS"], now=T0)
    # Spread values with n mod 100 (1 % each); parents and forks on 1 row in 100.
    store.write(  # type: ignore[attr-defined]
        lambda tx: tx.run(
            "UPDATE workflow_status SET app_version = 'v' || CAST(created_at - (created_at / 100) * 100 AS TEXT), "
            "executor_id = 'e' || CAST(created_at - (created_at / 100) * 100 AS TEXT), "
            "authenticated_user = 'u' || CAST(created_at - (created_at / 100) * 100 AS TEXT), "
            "queue_name = 'q' || CAST(created_at - (created_at / 100) * 100 AS TEXT), "
            "parent_workflow_id = CASE WHEN created_at - (created_at / 100) * 100 = 7 THEN 'p' END, "
            "forked_from = CASE WHEN created_at - (created_at / 100) * 100 = 9 THEN 'f' END",
            (),
        )
    )
    store.write(lambda tx: tx.run("ANALYZE workflow_status", ()))  # type: ignore[attr-defined]
    cases = {
        # Version and executor have no index of their own (nearly every row has one): the newest-first
        # walk of ws_created_idx serves them, without a sort.
        "ws_created_idx": {"app_version": "v3"},
        "ws_created_idx ": {"executor_id": "e3"},
        "ws_user_created_idx": {"user": "u3"},
        "ws_queue_created_idx": {"queue_name": "q3"},
        "ws_parent_created_idx": {"parent_workflow_id": "p"},
        "ws_forked_created_idx": {"forked_from": "f"},
    }
    for index, filters in cases.items():
        plan = store.workflows_explain(admin.list_query(limit=50, sort_desc=True, **filters))  # type: ignore[arg-type]
        _assert_ordered_walk(store, plan, index.strip())
        assert len(DBOS.list_workflows(limit=50, sort_desc=True, load_input=False, **filters)) == 50  # type: ignore[arg-type]
    # Queued listings: by queue, or (as here, where nothing is queued) by the tiny set of queued statuses.
    queued = store.workflows_explain(admin.list_query(queued_only=True, queue_name="q3", limit=50))
    # Any index led by the status column reaches the few queued rows directly (ws_status_name_idx,
    # which /metrics reads, qualifies as well as ws_status_created_idx).
    assert any(i in queued for i in ("ws_queue_created_idx", "ws_status_created_idx", "ws_status_name_idx")), queued
    assert "Seq Scan" not in queued and "SCAN workflow_status" not in queued, queued
    # Finish times have no index of their own (one more index write per finish, on every workflow):
    # a finish-time window is filtered, not sought; its answer is still exact.
    assert len(DBOS.list_workflows(completed_after=iso(-40_000 + 100), completed_before=iso(-40_000 + 150))) == 51


def _assert_ordered_walk(store: Store, plan: str, index: str) -> None:
    if store.dialect == "postgres":
        assert index in plan or "ws_created_idx" in plan, plan
        assert "Seq Scan" not in plan and "Bitmap" not in plan, plan
        nodes = [line.strip().removeprefix("->").strip() for line in plan.splitlines()]
        assert not any(node.startswith("Sort  (") for node in nodes), plan
    else:
        assert index in plan and "TEMP B-TREE FOR ORDER BY" not in plan, plan


# -- steps and statuses -------------------------------------------------------------------------
def test_steps_paging_and_light_steps(dbos: type[DBOS]) -> None:
    @DBOS.step()
    def inc(x: int) -> int:
        return x + 1

    @DBOS.workflow()
    def five() -> int:
        total = 0
        for _ in range(5):
            total = inc(total)
        return total

    with SetWorkflowID("paged"):
        assert five() == 5
    assert [s["output"] for s in DBOS.list_workflow_steps("paged")] == [1, 2, 3, 4, 5]
    page = DBOS.list_workflow_steps("paged", offset=1, limit=2)
    assert [(s["function_id"], s["output"]) for s in page] == [(2, 2), (3, 3)]
    assert [s["function_id"] for s in DBOS.list_workflow_steps("paged", offset=4)] == [5]
    light = DBOS.list_workflow_steps("paged", load_output=False, limit=1)
    assert (light[0]["output"], light[0]["error"], light[0]["function_id"]) == (None, None, 1)
    assert asyncio.run(DBOS.list_workflow_steps_async("paged", limit=1))[0]["output"] == 1
    with pytest.raises(ConfigError, match="limit must be an int >= 0"):
        DBOS.list_workflow_steps("paged", limit=-1)
    with pytest.raises(WorkflowNotFoundError):
        DBOS.list_workflow_steps("nope", limit=3)


def test_status_fields_as_dbos_names_them(store: Store) -> None:
    put(store, "t1", status="PENDING", queue_name="q", started_at=T0 + 50, timeout_ms=2000, deadline_at=T0 + 2050)
    put(store, "t2", status="SUCCESS", at=10, updated=900)
    [t1, t2] = DBOS.list_workflows(workflow_ids=["t1", "t2"])
    assert (t1.workflow_timeout_ms, t1.workflow_deadline_epoch_ms, t1.dequeued_at, t1.completed_at) == (
        2000,
        T0 + 2050,
        T0 + 50,
        None,
    )
    assert (t2.workflow_timeout_ms, t2.dequeued_at, t2.completed_at, t2.created_at) == (None, None, T0 + 900, T0 + 10)


# -- many at once -------------------------------------------------------------------------------
def test_cancel_resume_delete_many(dbos: type[DBOS]) -> None:
    gate = threading.Event()

    @DBOS.step()
    def wait_gate() -> None:
        gate.wait(10)

    @DBOS.workflow()
    def blocked(n: int) -> int:
        wait_gate()
        wait_gate()
        return n

    handles = []
    for n in range(3):
        with SetWorkflowID(f"many-{n}"):
            handles.append(DBOS.start_workflow(blocked, n))
    with pytest.raises(WorkflowNotFoundError, match="'ghost'"):
        DBOS.cancel_workflows(["many-0", "ghost"])  # checked before anything changes
    assert DBOS.get_workflow_status("many-0").status == "PENDING"  # type: ignore[union-attr]
    with pytest.raises(ConfigError, match=r"pass \['many-0'\]"):
        DBOS.cancel_workflows("many-0")  # type: ignore[arg-type]
    DBOS.cancel_workflows(["many-0", "many-1", "many-2"])
    gate.set()
    wait_until(lambda: not any(f"many-{n}" in DBOS._rt().runs for n in range(3)), what="cancelled runs stop")
    assert {s.status for s in DBOS.list_workflows(workflow_id_prefix="many-")} == {"CANCELLED"}
    resumed = DBOS.resume_workflows(["many-2", "many-0"])
    assert [h.workflow_id for h in resumed] == ["many-2", "many-0"]
    assert [h.get_result() for h in resumed] == [2, 0]
    asyncio.run(DBOS.cancel_workflows_async(["many-1"]))
    [again] = asyncio.run(DBOS.resume_workflows_async(["many-1"]))
    assert asyncio.run(again.get_result()) == 1
    DBOS.delete_workflows(["many-0", "many-1"])
    assert ids(DBOS.list_workflows(workflow_id_prefix="many-")) == ["many-2"]
    asyncio.run(DBOS.delete_workflows_async(["many-2"], delete_children=True))
    assert DBOS.list_workflows(workflow_id_prefix="many-") == []
    with pytest.raises(WorkflowNotFoundError):
        DBOS.delete_workflows(["many-2"])


def test_fork_onto_a_queue_with_a_timeout(dbos: type[DBOS]) -> None:
    from transact import Queue

    Queue("fork-q")

    @DBOS.step()
    def double(x: int) -> int:
        return x * 2

    @DBOS.workflow()
    def twice(x: int) -> int:
        return double(x) + double(x)

    with SetWorkflowID("fork-src"):
        assert twice(5) == 20
    with SetWorkflowID("fork-queued"):
        handle = DBOS.fork_workflow("fork-src", 2, queue_name="fork-q", timeout_seconds=30)
    assert handle.get_result() == 20
    status = handle.get_status()
    assert (status.queue_name, status.forked_from, status.workflow_timeout_ms) == ("fork-q", "fork-src", 30_000)
    assert status.dequeued_at is not None
    with pytest.raises(ConfigError, match="queue_partition_key needs queue_name"):
        DBOS.fork_workflow("fork-src", 1, queue_partition_key="p")
    with pytest.raises(ConfigError, match="timeout_seconds must be a finite number of seconds > 0"):
        DBOS.fork_workflow("fork-src", 1, timeout_seconds=0)


# -- DBOSClient ---------------------------------------------------------------------------------
class _Engine:
    def __init__(self, url: str) -> None:
        self.url = url


def test_client_constructor_arguments(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRANSACT_SYSTEM_DATABASE_URL", raising=False)
    with DBOSClient(
        system_database_url=db_url,
        application_database_url="postgresql://app@localhost/app",
        dbos_system_schema="dbos",
        system_database_pool_size=2,
        use_listen_notify=True,
        application_name="tool",
        lazy=True,
        retry_connection_errors=True,
        observability_query_timeout_sec=5.0,
    ) as c:
        assert c.list_workflows() == []
    with DBOSClient(system_database_engine=_Engine(db_url)) as c:
        assert c.system_database_url == db_url
    with pytest.raises(ConfigError, match="Transact keeps workflows in the system database"):
        DBOSClient(application_database_url=db_url)
    with pytest.raises(ConfigError, match=r"DBOSClient serializer must be a serializer"):
        DBOSClient(db_url, serializer=object())
    with pytest.raises(ConfigError, match="system_database_pool_size must be an int >= 1"):
        DBOSClient(db_url, system_database_pool_size=0)


def test_client_filters_steps_and_bulk_on_a_worker(client: DBOSClient, db_url: str) -> None:
    worker: subprocess.Popen[str] = spawn(APP, db_url)
    try:
        handles = [
            client.enqueue({"workflow_name": "greet", "queue_name": "client-q", "workflow_id": f"c-{n}"}, str(n))
            for n in range(3)
        ]
        assert [h.get_result(timeout=60) for h in handles] == ["HELLO 0!", "HELLO 1!", "HELLO 2!"]
        assert ids(client.list_workflows(queue_name=["client-q"], workflow_id_prefix=["c-"])) == ["c-0", "c-1", "c-2"]
        assert len(client.list_workflows(executor_id=[handles[0].get_status().executor_id or ""])) >= 1
        assert ids(client.list_workflows(completed_after="2000-01-01T00:00:00Z", name="greet")) == ["c-0", "c-1", "c-2"]
        [step] = client.list_workflow_steps("c-0", load_output=False)
        assert (step["function_id"], step["output"]) == (1, None)
        assert asyncio.run(client.list_workflow_steps_async("c-0", offset=1)) == []
        # Delayed work: cancelled many at once, then resumed many at once; the worker runs it.
        late = {"workflow_name": "greet", "queue_name": "client-q", "delay_seconds": 30}
        for n in range(2):
            client.enqueue({**late, "workflow_id": f"late-{n}"}, f"l{n}")
        client.cancel_workflows(["late-0", "late-1"])
        assert {s.status for s in client.list_workflows(workflow_id_prefix="late-")} == {"CANCELLED"}
        resumed = client.resume_workflows(["late-0", "late-1"])
        assert [h.get_result(timeout=60) for h in resumed] == ["HELLO L0!", "HELLO L1!"]
        # A fork onto the queue, run by the worker.
        forked = client.fork_workflow("c-1", 2, queue_name="client-q", new_workflow_id="c-1-fork")
        assert forked.get_result(timeout=60) == "HELLO 1!"
        assert forked.get_status().queue_name == "client-q"
        asyncio.run(client.cancel_workflows_async(["c-0"]))  # finished: unchanged
        client.delete_workflows(["c-0", "c-1", "c-1-fork"])
        asyncio.run(client.delete_workflows_async(["c-2"]))
        assert client.list_workflows(workflow_id_prefix="c-") == []
        with pytest.raises(WorkflowNotFoundError):
            client.resume_workflows(["c-0"])
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(timeout=5)
