"""The ``transact`` command line through its real entry point (a subprocess of the venv's script)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import migrate_up_to, scratch_pg_database, wait_until
from transact import DBOS, DBOSClient, SetWorkflowID, WorkflowCancelledError, __version__
from transact.engine.clock import now_ms
from transact.storage import open_store

TRANSACT = Path(sys.executable).parent / "transact"
UNREACHABLE = "postgresql://postgres@127.0.0.1:1/nothing"


def run(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None, stdin: str = "") -> Any:
    base = {k: v for k, v in os.environ.items() if k != "TRANSACT_SYSTEM_DATABASE_URL"}
    return subprocess.run(
        [str(TRANSACT), *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env={**base, "COLUMNS": "250", **(env or {})},
        input=stdin,
    )


def ok_json(*args: str, **kw: Any) -> Any:
    proc = run(*args, "--json", **kw)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def fails(proc: Any, *needles: str) -> None:
    """Exit code != 0 and one line on stderr, no traceback."""
    assert proc.returncode != 0, proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_inspect_workflows_steps_and_queues(dbos: type[DBOS], db_url: str) -> None:
    @DBOS.step()
    def add(x: int) -> int:
        return x + 1

    @DBOS.workflow(name="adder")
    def adder(x: int) -> int:
        return add(add(x))

    @DBOS.workflow(name="breaker")
    def breaker() -> None:
        raise ValueError("it broke")

    def next_millisecond() -> None:  # creation times must differ for a deterministic order
        start = now_ms()
        wait_until(lambda: now_ms() > start, timeout=1)

    with SetWorkflowID("cli-ok"):
        assert adder(1) == 3
    next_millisecond()
    with SetWorkflowID("cli-err"), pytest.raises(ValueError):
        breaker()
    next_millisecond()
    with DBOSClient(db_url) as client:  # a queue no process serves: it stays ENQUEUED
        client.enqueue({"workflow_name": "adder", "queue_name": "idle-q", "workflow_id": "cli-q"}, 5)

    rows = ok_json("workflow", "list", "--db", db_url)
    assert [r["workflow_id"] for r in rows] == ["cli-q", "cli-err", "cli-ok"]  # newest first
    by_id = {r["workflow_id"]: r for r in rows}
    assert by_id["cli-ok"]["status"] == "SUCCESS" and by_id["cli-ok"]["output"] == 3
    assert by_id["cli-ok"]["input"] == [[1], {}] and isinstance(by_id["cli-ok"]["created_at"], int)
    assert by_id["cli-err"]["error"] == "ValueError: it broke"
    assert [r["workflow_id"] for r in ok_json("workflow", "list", "-s", "ERROR", "-s", "ENQUEUED", "--db", db_url)] == [
        "cli-q",
        "cli-err",
    ]
    assert [
        r["workflow_id"] for r in ok_json("workflow", "list", "--name", "adder", "--oldest-first", "--db", db_url)
    ] == ["cli-ok", "cli-q"]
    assert [r["workflow_id"] for r in ok_json("workflow", "list", "--limit", "1", "--offset", "1", "--db", db_url)] == [
        "cli-err"
    ]

    table = run("workflow", "list", "--db", db_url)
    assert table.returncode == 0, table.stderr
    assert "3 workflow(s)" in table.stdout and "cli-ok" in table.stdout and "ERROR" in table.stdout

    got = ok_json("workflow", "get", "cli-ok", "--db", db_url)
    assert (got["workflow_id"], got["name"], got["output"], got["status"]) == ("cli-ok", "adder", 3, "SUCCESS")

    steps = ok_json("workflow", "steps", "cli-ok", "--db", db_url)
    assert [(s["function_id"], s["output"]) for s in steps] == [(1, 2), (2, 3)]
    assert all(s["function_name"].endswith("add") and s["error"] is None for s in steps)
    steps_table = run("workflow", "steps", "cli-ok", "--db", db_url)
    assert steps_table.returncode == 0 and "Steps of cli-ok" in steps_table.stdout

    queued = ok_json("queue", "list", "--db", db_url)
    assert [(q["workflow_id"], q["queue_name"], q["status"]) for q in queued] == [("cli-q", "idle-q", "ENQUEUED")]
    assert ok_json("queue", "list", "--queue", "other", "--db", db_url) == []
    assert ok_json("workflow", "queue", "list", "--db", db_url) == queued  # DBOS's spelling


def test_cancel_resume_and_fork(dbos: type[DBOS], db_url: str) -> None:
    release = threading.Event()
    runs: list[int] = []

    @DBOS.step()
    def numbered(i: int) -> int:
        runs.append(i)
        if i == 2:
            assert release.wait(20)
        return i

    @DBOS.workflow(name="three")
    def three() -> int:
        return numbered(1) + numbered(2) + numbered(3)

    with SetWorkflowID("cli-run"):
        handle = DBOS.start_workflow(three)
    wait_until(lambda: 2 in runs, what="step 2 to start")
    assert ok_json("workflow", "cancel", "cli-run", "--db", db_url) == {"workflow_id": "cli-run", "status": "CANCELLED"}
    release.set()
    with pytest.raises(WorkflowCancelledError):
        handle.get_result(timeout=20)  # the run stopped after step 2
    assert runs == [1, 2]

    resumed = ok_json("workflow", "resume", "cli-run", "--db", db_url)
    assert resumed["resumed"] is True and resumed["status"] in ("PENDING", "SUCCESS")
    assert DBOS.retrieve_workflow("cli-run").get_result(timeout=30) == 6  # this live process adopted it
    assert runs == [1, 2, 3]  # step 2 finished during the cancel: kept and replayed
    again = run("workflow", "resume", "cli-run", "--db", db_url)
    assert again.returncode == 0 and "is SUCCESS: nothing to resume" in again.stdout

    forked = ok_json("workflow", "fork", "cli-run", "--step", "3", "--id", "cli-fork", "--db", db_url)
    assert forked == {"workflow_id": "cli-fork", "forked_from": "cli-run", "start_step": 3}
    assert DBOS.retrieve_workflow("cli-fork").get_result(timeout=30) == 6
    assert runs == [1, 2, 3, 3]  # steps 1 and 2 reused

    deleted = run("workflow", "delete", "cli-fork", "--db", db_url, stdin="n\n")
    assert deleted.returncode != 0 and DBOS.get_workflow_status("cli-fork") is not None
    assert ok_json("workflow", "delete", "cli-fork", "--yes", "--db", db_url) == {
        "workflow_id": "cli-fork",
        "deleted": True,
    }
    assert DBOS.get_workflow_status("cli-fork") is None


def migrated(db_url: str) -> str:
    store = open_store(db_url)
    store.migrate()
    store.close()
    return db_url


def test_unknown_ids_and_bad_arguments_fail_in_one_line(db_url: str) -> None:
    migrated(db_url)
    fails(run("workflow", "get", "no-such-id", "--db", db_url), "'no-such-id'")
    fails(run("workflow", "steps", "no-such-id", "--db", db_url), "'no-such-id'")
    fails(run("workflow", "cancel", "no-such-id", "--db", db_url), "'no-such-id'")
    fails(run("workflow", "list", "--status", "DONE", "--db", db_url), "'DONE'")


def test_database_problems_fail_in_one_line(tmp_path: Path) -> None:
    fails(run("workflow", "list", "--db", UNREACHABLE), "cannot reach the system database", "refused")
    fails(run("migrate", "--db", UNREACHABLE), "cannot reach the system database")
    fails(run("workflow", "list", "--db", f"sqlite:///{tmp_path / 'missing.sqlite'}"), "no SQLite database")
    (tmp_path / "empty.sqlite").touch()
    fails(run("workflow", "list", "--db", f"sqlite:///{tmp_path / 'empty.sqlite'}"), "no Transact tables", "migrate")
    fails(run("workflow", "list", cwd=tmp_path), "no database given")
    fails(run("workflow", "list", "--db", "mysql://x"), "unsupported database URL")
    other = tmp_path / "other.toml"
    other.write_text("name = 'x'\n")
    fails(run("workflow", "list", "--config", str(other)), "has no string key system_database_url")


def test_version_and_database_url_sources(tmp_path: Path) -> None:
    assert run("version").stdout.strip() == f"transact {__version__}"
    url = f"sqlite:///{tmp_path / 'app.sqlite'}"
    assert ok_json("migrate", "--db", url)["schema_version"] >= 1
    fails(run("workflow", "list", "--start", "yesterday", "--db", url), "ISO-8601")
    # The URL from the environment, then from ./transact.toml.
    assert ok_json("workflow", "list", env={"TRANSACT_SYSTEM_DATABASE_URL": url}) == []
    (tmp_path / "transact.toml").write_text(f'system_database_url = "{url}"\n')
    assert ok_json("workflow", "list", cwd=tmp_path) == []


def test_reset_and_migrate(db_url: str) -> None:
    migrated(db_url)
    declined = run("reset", "--db", db_url, stdin="n\n")
    assert declined.returncode != 0
    assert ok_json("workflow", "list", "--db", db_url) == []  # still there
    assert run("reset", "--yes", "--db", db_url).returncode == 0
    gone = "no SQLite database" if db_url.startswith("sqlite") else "no Transact tables"
    fails(run("workflow", "list", "--db", db_url), gone)
    assert ok_json("migrate", "--db", db_url)["schema_version"] >= 1
    assert ok_json("workflow", "list", "--db", db_url) == []


def test_stranded_workflows(dbos: type[DBOS], db_url: str) -> None:
    from transact.storage.rows import WorkflowRow

    @DBOS.workflow()
    def still_here() -> None:
        pass

    store = open_store(db_url)
    try:
        store.workflow_insert(
            WorkflowRow(
                workflow_id="lost-1",
                status="PENDING",
                name="deleted_in_last_deploy",
                executor_id="gone-executor",
                created_at=1,
                updated_at=1,
            )
        )
    finally:
        store.close()
    rows = ok_json("workflow", "stranded", "--db", db_url)
    assert [r["workflow_id"] for r in rows] == ["lost-1"]
    table = run("workflow", "stranded", "--db", db_url)
    assert table.returncode == 0 and "lost-1" in table.stdout and "1 stranded" in table.stdout


def test_an_older_schema_is_named_not_misread(db_url: str, tmp_path: Path) -> None:
    """The CLI reads with this version's queries: on an older schema it says to migrate, in one
    line, instead of failing on a missing column; after `transact migrate` it reads."""
    if db_url.startswith("sqlite"):
        _check_older_schema(f"sqlite:///{tmp_path / 'v9.sqlite'}")
    else:
        for url in scratch_pg_database("transact_cli_v9"):
            _check_older_schema(url)


def _check_older_schema(url: str) -> None:
    migrate_up_to(url, 9)
    fails(run("workflow", "list", "--db", url), "schema is at version 9", "transact migrate")
    assert ok_json("migrate", "--db", url)["schema_version"] >= 10
    assert ok_json("workflow", "list", "--db", url) == []
