"""Several applications sharing one system database: application "A" runs in a subprocess
(tests/engine/apps/share_app.py), application "B" in this process. Each owns what it creates:
a workflow is dequeued, run and recovered only by its owner, a queue is polled only by the
application that registered it, a schedule fires only in its creator. Rows without an owner
(written before ownership existed, or by a client naming no application) run anywhere."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import migrate_up_to, spawn, wait_until
from transact import DBOS, DBOSClient, Queue, SetEnqueueOptions
from transact._facade.debounce import declare_internal_queue
from transact.engine import serialization
from transact.errors import ConfigError
from transact.storage import Store, open_store
from transact.storage.rows import WorkflowRow

APP_A = Path(__file__).parent / "apps" / "share_app.py"
SHARED = "_transact_debounce"  # Transact's own queue: every application polls it for its own work


@pytest.fixture
def app_a(db_url: str, tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """Application A in its own process, launched (its ``ready`` file written)."""
    store = open_store(db_url)
    store.migrate()  # before two processes race to migrate
    store.close()
    proc = spawn(APP_A, db_url, str(tmp_path))
    try:
        wait_until(lambda: (tmp_path / "ready").exists() or proc.poll() is not None, 60, what="app A launched")
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        yield proc
    finally:
        (tmp_path / "stop").touch()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


_decorated: dict[str, Any] = {}


def declare_b(db_url: str) -> None:
    """Application B's code, declared in this process (not launched)."""
    DBOS.destroy(destroy_registry=True)
    DBOS(config={"name": "B", "system_database_url": db_url, "shutdown_timeout_seconds": 2})
    Queue("qb")
    declare_internal_queue()  # as at import; destroy_registry forgot it

    @DBOS.workflow(name="work")
    def work(tag: str) -> str:
        return f"B:{tag}"

    @DBOS.workflow(name="sched_wf")
    def sched_wf(scheduled: datetime, context: Any) -> str:
        return "B"

    _decorated["work"] = work


@pytest.fixture
def app_b(db_url: str) -> Iterator[type[DBOS]]:
    declare_b(db_url)
    DBOS.launch()
    try:
        yield DBOS
    finally:
        DBOS.destroy(destroy_registry=True)


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = open_store(db_url)
    s.migrate()
    yield s
    s.close()


def outcome(store: Store, workflow_id: str) -> tuple[str, Any, str | None]:
    row = store.workflow_get(workflow_id)
    assert row is not None, workflow_id
    value = serialization.loads(row.output) if row.output is not None else None
    return row.status, value, row.application_name


def finished(store: Store, workflow_id: str) -> Callable[[], bool]:
    def check() -> bool:
        row = store.workflow_get(workflow_id)
        return row is not None and row.status == "SUCCESS"

    return check


def pending_row(workflow_id: str, tag: str, owner: str | None) -> WorkflowRow:
    """A PENDING run of ``work(tag)`` whose process died (its executor never registered)."""
    inputs = serialization.dumps_inputs(None, (tag,), {}, workflow="work")
    return WorkflowRow(
        workflow_id=workflow_id,
        status="PENDING",
        name="work",
        inputs=inputs,
        executor_id="dead-executor",
        created_at=1,
        updated_at=1,
        started_at=1,
        application_name=owner,
    )


def _work() -> Any:
    """This process's ``work`` workflow (application B's)."""
    return _decorated["work"]


def test_a_queue_is_polled_by_its_owner_whoever_enqueues(app_a: subprocess.Popen[str], app_b: type[DBOS]) -> None:
    qa = DBOS.retrieve_queue("qa")
    assert qa is not None
    handle = qa.enqueue(_work(), "x")  # B enqueues on A's queue: A runs it
    assert handle.get_result() == "A:x"
    assert handle.get_status().application_name == "A"
    qb = DBOS.retrieve_queue("qb")
    assert qb is not None
    own = qb.enqueue(_work(), "y")
    assert own.get_result() == "B:y"
    assert own.get_status().application_name == "B"


def test_enqueue_names_the_application_that_runs_it(
    app_a: subprocess.Popen[str], app_b: type[DBOS], store: Store, db_url: str
) -> None:
    # Both applications poll the shared queue, each for its own workflows only.
    with DBOSClient(db_url) as client:
        to_a = client.enqueue({"workflow_name": "work", "queue_name": SHARED, "application_name": "A"}, "c1")
        to_b = client.enqueue({"workflow_name": "work", "queue_name": SHARED, "application_name": "B"}, "c2")
        anyone = client.enqueue({"workflow_name": "work", "queue_name": SHARED}, "c3")
        assert to_a.get_result(timeout=30) == "A:c1"
        assert to_b.get_result(timeout=30) == "B:c2"
        assert anyone.get_result(timeout=30) in ("A:c3", "B:c3")  # unowned: whoever claims it
        assert outcome(store, anyone.workflow_id)[2] is None
    with DBOSClient(db_url, application_name="A") as client_a:
        handle = client_a.enqueue({"workflow_name": "work", "queue_name": SHARED}, "c4")
        assert handle.get_result(timeout=30) == "A:c4"
        assert handle.get_status().application_name == "A"
    # In-process: SetEnqueueOptions names the application.
    with SetEnqueueOptions(application_name="A"):
        shared = DBOS.retrieve_queue(SHARED)
        assert shared is not None
        handle_a = shared.enqueue(_work(), "c5")
    assert handle_a.get_result() == "A:c5"
    # ID-addressed operations work across applications: B reads A's workflow.
    status = DBOS.retrieve_workflow(to_a.workflow_id).get_status()
    assert status.application_name == "A" and status.status == "SUCCESS"


def test_pending_work_is_recovered_only_by_its_owner(db_url: str, tmp_path: Path, store: Store) -> None:
    store.workflow_insert(pending_row("own-a", "ra", "A"))
    store.workflow_insert(pending_row("own-b", "rb", "B"))
    store.workflow_insert(pending_row("legacy", "rn", None))  # written before ownership existed
    proc = spawn(APP_A, db_url, str(tmp_path))
    try:
        wait_until(finished(store, "own-a"), 60, what="A recovers its own workflow")
        wait_until(finished(store, "legacy"), 60, what="A recovers the unowned workflow")
        assert outcome(store, "own-a")[1] == "A:ra"
        assert outcome(store, "legacy")[1] == "A:rn"
        # A has adopted what it could: B's workflow waits for B.
        assert outcome(store, "own-b")[0] == "PENDING"
        declare_b(db_url)
        DBOS.launch()
        try:
            wait_until(finished(store, "own-b"), 60, what="B recovers its workflow")
            assert outcome(store, "own-b")[1:] == ("B:rb", "B")
        finally:
            DBOS.destroy(destroy_registry=True)
    finally:
        (tmp_path / "stop").touch()
        proc.wait(timeout=30)


def test_rows_from_before_the_migration_run_anywhere(db_url: str, store: Store) -> None:
    """A database upgraded from migration 0020: its PENDING and ENQUEUED rows have no owner."""
    if store.dialect == "postgres":
        pytest.skip("covered on SQLite; Postgres's fresh fixture database is already migrated")
    store.close()
    Path(db_url[len("sqlite:///") :]).unlink()
    migrate_up_to(db_url, 20)
    old = open_store(db_url)
    inputs = serialization.dumps_inputs(None, ("old",), {}, workflow="work")
    old.write(  # type: ignore[attr-defined]
        lambda tx: tx.run(
            "INSERT INTO workflow_status (workflow_id, status, name, inputs, executor_id, created_at, updated_at)"
            " VALUES ('before', 'PENDING', 'work', ?, 'gone', 1, 1)",
            (inputs,),
        )
    )
    old.close()
    declare_b(db_url)
    DBOS.launch()
    try:
        upgraded = open_store(db_url)
        try:
            wait_until(finished(upgraded, "before"), 60, what="the old row is recovered")
            assert outcome(upgraded, "before")[1:] == ("B:old", None)
        finally:
            upgraded.close()
    finally:
        DBOS.destroy(destroy_registry=True)


def test_queue_names_are_unique_across_applications(app_a: subprocess.Popen[str], db_url: str) -> None:
    declare_b(db_url)
    Queue("qa")  # A's queue, declared by B before launch
    try:
        with pytest.raises(ConfigError, match=r"queue 'qa' is registered by application 'A'.*application 'B'"):
            DBOS.launch()
    finally:
        DBOS.destroy(destroy_registry=True)
    declare_b(db_url)
    DBOS.launch()
    try:
        with pytest.raises(ConfigError, match=r"registered by application 'A'"):
            Queue("qa")  # declared after launch
        with pytest.raises(ConfigError, match=r"registered by application 'A'"):
            DBOS.register_queue("qa")
        assert DBOS.retrieve_queue("qa") is not None  # still A's, and B can enqueue on it
    finally:
        DBOS.destroy(destroy_registry=True)


def test_schedules_fire_only_in_their_application(
    app_a: subprocess.Popen[str], app_b: type[DBOS], store: Store, db_url: str
) -> None:
    with DBOSClient(db_url, application_name="A") as client:
        client.create_schedule(schedule_name="every-second", workflow_name="sched_wf", schedule="* * * * * *")
    DBOS.create_schedule("b-every-second", "sched_wf", "* * * * * *")
    with pytest.raises(ConfigError, match=r"schedule 'every-second' belongs to application 'A'"):
        DBOS.create_schedule("every-second", "sched_wf", "* * * * * *")

    def runs(prefix: str) -> list[tuple[str, Any, str | None]]:
        rows = [r for r in store.workflows_list(_query()) if r.workflow_id.startswith(prefix)]
        return [outcome(store, r.workflow_id) for r in rows if r.status == "SUCCESS"]

    wait_until(lambda: len(runs("sched-every-second-")) >= 3, 60, what="A's schedule fires")
    wait_until(lambda: len(runs("sched-b-every-second-")) >= 3, 60, what="B's schedule fires")
    assert {(v, app) for _, v, app in runs("sched-every-second-")} == {("A", "A")}
    assert {(v, app) for _, v, app in runs("sched-b-every-second-")} == {("B", "B")}


def _query() -> Any:
    from transact.storage.rows import ListQuery

    return ListQuery(names=["sched_wf"], load_input=False)
