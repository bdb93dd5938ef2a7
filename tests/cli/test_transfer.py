"""``transact workflow export|import`` and ``transact copy`` through the real entry point.

The copy test is the acceptance test of moving from SQLite to Postgres: an application with 100
workflows in flight is killed, its database copied, and the application restarted on Postgres
finishes all of them, re-running no step but the ones that were running when it died."""

from __future__ import annotations

import json
import os
import signal
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cli.test_cli import fails, ok_json, run
from tests.conftest import scratch_pg_database, spawn, wait_until
from transact import DBOS, DBOSClient, SetWorkflowID
from transact.storage import Store, open_store

APP = Path(__file__).parent / "apps" / "copy_app.py"
N = 25  # copy_app.N: workflows of each kind


@pytest.fixture
def pg_target() -> Iterator[str]:
    yield from scratch_pg_database("transact_copy_target")


@pytest.fixture
def laptop(backend: str, tmp_path: Path) -> Iterator[str]:
    """A second, empty database on the same backend (taken before ``dbos``: dropped after it)."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'laptop.sqlite'}"
    else:
        yield from scratch_pg_database("transact_cli_laptop")


def test_export_and_import_round_trip(laptop: str, dbos: type[DBOS], db_url: str, tmp_path: Path) -> None:
    @DBOS.step()
    def shout(text: str) -> str:
        return text.upper()

    @DBOS.workflow()
    def inner(text: str) -> str:
        return shout(text)

    @DBOS.workflow()
    def outer(text: str) -> str:
        return inner(text) + shout("!")

    with SetWorkflowID("cli-run"):
        assert outer("hi") == "HI!"
    proc = run("workflow", "export", "cli-run", "--children", "--db", db_url)  # JSON on stdout
    assert proc.returncode == 0, proc.stderr
    exported = tmp_path / "run.json"
    exported.write_text(proc.stdout)
    assert len(json.loads(proc.stdout)["tables"]["workflow_status"]["rows"]) == 2

    imported = ok_json("workflow", "import", str(exported), "--db", laptop)  # creates the tables
    assert imported == {"workflow_id": "cli-run", "status": "SUCCESS", "replaced": False}
    with DBOSClient(laptop) as client:
        for wid in ("cli-run", "cli-run-1"):
            assert client.list_workflow_steps(wid) == DBOS.list_workflow_steps(wid)
    fails(run("workflow", "import", str(exported), "--db", laptop), "cli-run", "--replace")
    from_stdin = ok_json("workflow", "import", "-", "--replace", "--db", laptop, stdin=exported.read_text())
    assert from_stdin["replaced"] is True
    (tmp_path / "bad.json").write_text("{not json")
    fails(run("workflow", "import", str(tmp_path / "bad.json"), "--db", laptop), "not JSON")


def _steps_by_name(store: Store, workflow_id: str) -> dict[str, int]:
    return {s.function_name: s.function_id for s in store.steps_load(workflow_id).values()}


def _in_flight(store: Store, workdir: Path) -> bool:
    """Every workflow is where the test wants it, with its finished steps checkpointed."""
    log = workdir / "steps.log"
    ran = set(log.read_text().split()) if log.exists() else set()
    if not {f"b{i}.hold" for i in range(N)} | {"q0.hold"} <= ran:
        return False
    for i in range(N):
        if len(store.steps_load(f"b{i}")) < 1 or len(store.steps_load(f"r{i}")) < 1:
            return False
        if "DBOS.sleep" not in _steps_by_name(store, f"s{i}"):
            return False
    queued = [store.workflow_get(f"q{i}") for i in range(1, N)]
    return len(store.steps_load("q0")) >= 1 and all(r is not None and r.status == "ENQUEUED" for r in queued)


def test_copy_moves_in_flight_work_from_sqlite_to_postgres(pg_target: str, tmp_path: Path, procs: list[Any]) -> None:
    source = f"sqlite:///{tmp_path / 'app.sqlite'}"
    app = spawn(APP, source, str(tmp_path), "start")
    procs.append(app)
    store = open_store(source)
    try:
        wait_until(
            lambda: app.poll() is None and _in_flight(store, tmp_path), timeout=30, what="100 workflows in flight"
        )
        assert store.transfer_count("notifications") == N  # the early messages, unread
    finally:
        store.close()

    fails(run("copy", "--from", source, "--to", pg_target), "alive", "--force")  # refused while it runs
    os.kill(app.pid, signal.SIGKILL)
    app.wait(timeout=10)

    copied = ok_json("copy", "--from", source, "--to", pg_target, "--batch", "7")
    assert copied["copied"]["workflow_status"] == 4 * N
    assert copied["copied"]["notifications"] == N
    fails(run("copy", "--from", source, "--to", pg_target), "already holds rows", "--resume")
    assert ok_json("copy", "--from", source, "--to", pg_target, "--resume")["copied"] == copied["copied"]

    procs.append(spawn(APP, pg_target, str(tmp_path), "serve"))
    with DBOSClient(pg_target) as client:
        for i in range(N):
            client.send(f"r{i}", f"go-{i}", "go")  # new message ids: the sequence moved past the copied ones
        (tmp_path / "release").touch()
        wait_until(
            lambda: len(client.list_workflows(status="SUCCESS", load_input=False)) == 4 * N,
            timeout=30,
            what="every workflow finished on Postgres",
        )
        assert client.retrieve_workflow("r3").get_result() == ["go-3", "early-3"]
        assert client.retrieve_workflow("q7").get_result() == "q7.2"

    runs = Counter((tmp_path / "steps.log").read_text().split())
    in_flight = {f"b{i}.hold" for i in range(N)} | {"q0.hold"}  # running when the app was killed
    expected = {f"{kind}{i}.{n}" for kind in "bqsr" for i in range(N) for n in (1, 2)}
    expected |= {f"{kind}{i}.hold" for kind in "bq" for i in range(N)}
    assert set(runs) == expected
    assert {name for name, n in runs.items() if n != 1} == in_flight
    assert all(runs[name] == 2 for name in in_flight)
