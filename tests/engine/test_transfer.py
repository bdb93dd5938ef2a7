"""Export / import of workflows (engine/transfer.py) through DBOS and DBOSClient, on both
databases: a run exported from one database and imported into a fresh one reads the same, an
existing id is refused unless replaced, and imported in-flight work waits until resumed or forked."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import scratch_pg_database, wait_until
from transact import DBOS, DBOSClient, SetWorkflowID
from transact.engine.clock import now_ms
from transact.engine.recovery import dead_executors
from transact.engine.transfer import IMPORTED_EXECUTOR, copy_database
from transact.errors import ConfigError, TransactError, WorkflowConflictError, WorkflowNotFoundError
from transact.storage import open_store
from transact.storage.app_outcomes import AppDatabase


@pytest.fixture
def fresh_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A second, empty database on the same backend (the "laptop"). Tests take it before ``dbos``,
    so an instance launched on it is destroyed before the database is dropped."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'laptop.sqlite'}"
    else:
        yield from scratch_pg_database("transact_transfer_engine")


def _steps(steps: list[Any]) -> list[tuple[Any, ...]]:
    return [(s["function_id"], s["function_name"], s["output"], s["child_workflow_id"]) for s in steps]


def test_export_then_import_reads_the_same(fresh_url: str, dbos: type[DBOS]) -> None:
    @DBOS.step()
    def double(x: int) -> int:
        return 2 * x

    @DBOS.workflow()
    def child(x: int) -> int:
        DBOS.set_event("seen", x)
        DBOS.write_stream("values", x)
        DBOS.close_stream("values")
        return double(x)

    @DBOS.workflow()
    def parent(x: int) -> dict[str, int]:
        handle = DBOS.start_workflow(child, x + 1)
        return {"child": handle.get_result(), "own": double(x)}

    with SetWorkflowID("run-1"):
        assert parent(3) == {"child": 8, "own": 6}
    DBOS.send("run-1", {"late": True}, "topic")  # a message addressed to it, never received
    data = json.loads(json.dumps(DBOS.export_workflow("run-1", children=True)))  # JSON all the way
    child_id = DBOS.list_workflow_steps("run-1")[0]["child_workflow_id"]
    with pytest.raises(WorkflowNotFoundError):
        DBOS.export_workflow("nope")

    with DBOSClient(fresh_url, migrate=True) as laptop:
        assert laptop.import_workflow(data) == "run-1"
        for wid in ("run-1", child_id):
            assert _steps(laptop.list_workflow_steps(wid)) == _steps(DBOS.list_workflow_steps(wid))
            here, there = DBOS.get_workflow_status(wid), laptop.retrieve_workflow(wid).get_status()
            assert here is not None
            assert (there.status, there.output, there.input, there.name) == (
                here.status,
                here.output,
                here.input,
                here.name,
            )
        assert laptop.get_event(child_id, "seen") == 4
        assert list(laptop.read_stream(child_id, "values")) == [4]
        # Importing again is refused, naming the ids; replace puts the export back as it was.
        with pytest.raises(WorkflowConflictError, match="run-1"):
            laptop.import_workflow(data)
        laptop.delete_workflow(child_id)
        assert laptop.import_workflow(data, replace=True) == "run-1"
        assert laptop.retrieve_workflow(child_id).get_result() == 8
        # An export of the import is the same export (message ids aside: the target numbers them).
        again = laptop.export_workflow("run-1", children=True)
        for table, body in data["tables"].items():
            if table != "notifications":
                assert again["tables"][table] == body, table
        assert len(again["tables"]["notifications"]["rows"]) == 1
        with pytest.raises(ConfigError, match="not a workflow export"):
            laptop.import_workflow({"format": "other"})
        broken = json.loads(json.dumps(data))
        broken["tables"]["operation_outputs"]["rows"][0][0] = "stranger"
        with pytest.raises(ConfigError, match="stranger"):
            laptop.import_workflow(broken, replace=True)


def test_imported_pending_work_waits_then_a_fork_and_a_resume_finish(
    fresh_url: str, dbos: type[DBOS], config: dict[str, Any]
) -> None:
    @DBOS.step()
    def stamp(label: str) -> str:
        return label

    @DBOS.workflow()
    def waits() -> list[str]:
        first = stamp("a")
        got = DBOS.recv("go", timeout_seconds=60)
        return [first, str(got), stamp("b")]

    handle = DBOS.start_workflow(waits)
    wait_until(lambda: len(DBOS.list_workflow_steps(handle.workflow_id)) >= 1, what="the first step")
    data = DBOS.export_workflow(handle.workflow_id)
    DBOS.cancel_workflow(handle.workflow_id)  # the source stops; the laptop carries on
    assert data["tables"]["workflow_status"]["rows"][0][1] == "PENDING"

    DBOS.destroy()  # the functions stay registered
    DBOS(config={**config, "system_database_url": fresh_url})
    DBOS.launch()
    wid = DBOS.import_workflow(data)
    status = DBOS.get_workflow_status(wid)
    assert status is not None and status.status == "PENDING" and status.executor_id == IMPORTED_EXECUTOR
    store = DBOS._rt().store
    live, _ = dead_executors(store, me=None, hostname="", lease_ms=30_000, local_check=False, now=now_ms())
    assert IMPORTED_EXECUTOR in [ex.executor_id for ex in live]  # so nobody adopts it

    fork = DBOS.fork_workflow(wid, 2)  # replays the first step, waits for its own message
    DBOS.send(fork.workflow_id, "forked", "go")
    assert fork.get_result() == ["a", "forked", "b"]
    imported = DBOS.get_workflow_status(wid)
    assert imported is not None and imported.status == "PENDING" and imported.executor_id == IMPORTED_EXECUTOR

    DBOS.resume_workflow(wid)
    DBOS.send(wid, "resumed", "go")
    assert DBOS.retrieve_workflow(wid).get_result() == ["a", "resumed", "b"]


@pytest.fixture
def other_backend(backend: str, tmp_path: Path) -> Iterator[str]:
    """An empty database on the other backend (a copy from SQLite lands on Postgres and back)."""
    if backend == "postgres":
        yield f"sqlite:///{tmp_path / 'other.sqlite'}"
    else:
        yield from scratch_pg_database("transact_transfer_other")


class _Seen:
    def __init__(self) -> None:
        self.totals: dict[str, int] = {}
        self.rows: dict[str, int] = {}

    def table(self, name: str, total: int) -> None:
        self.totals[name] = total

    def advance(self, name: str, rows: int) -> None:
        self.rows[name] = self.rows.get(name, 0) + rows


def test_copy_database_to_the_other_backend(other_backend: str, dbos: type[DBOS], db_url: str) -> None:
    @DBOS.step()
    def inc(x: int) -> int:
        return x + 1

    @DBOS.workflow()
    def chain(x: int) -> int:
        DBOS.set_event("x", x)
        return inc(inc(x))

    ids = []
    for i in range(12):
        handle = DBOS.start_workflow(chain, i)
        assert handle.get_result() == i + 2
        ids.append(handle.workflow_id)
    DBOS.send(ids[0], "kept", "t")
    # The application database may be the system database: its outcome table is not copied.
    app_db = AppDatabase(db_url)
    app_db.migrate()
    app_db.close()
    source = DBOS._rt().store
    target = open_store(other_backend)
    try:
        with pytest.raises(TransactError, match="alive"):  # this process is a live executor
            copy_database(source, target, batch=5)
        with pytest.raises(ConfigError, match="same database"):
            copy_database(source, source, force=True)
        with pytest.raises(ConfigError, match="batch"):
            copy_database(source, target, batch=0, force=True)
        seen = _Seen()
        counts = copy_database(source, target, batch=5, force=True, progress=seen)
        assert counts["workflow_status"] == 12 and counts["operation_outputs"] == 36  # set_event is a step too
        assert seen.totals == counts and seen.rows == {t: n for t, n in counts.items() if n}
        with pytest.raises(TransactError, match="--resume"):
            copy_database(source, target, force=True)
        assert copy_database(source, target, batch=5, force=True, resume=True) == counts
    finally:
        target.close()
    with DBOSClient(other_backend) as client:
        for wid in ids:
            assert _steps(client.list_workflow_steps(wid)) == _steps(DBOS.list_workflow_steps(wid))
        assert client.get_event(ids[3], "x") == 3
        client.send(ids[0], "new", "t")  # a new message id past the copied ones
        assert len(client.export_workflow(ids[0])["tables"]["notifications"]["rows"]) == 2
