"""Least privilege: ``transact migrate --app-role NAME`` grants exactly what a running app needs,
and the whole lifecycle runs under a role without DDL rights (``run_migrations: False``).

Postgres only for the lifecycle: roles and grants are Postgres's. SQLite has no roles (a process
that may open the file may do anything to it; file permissions are the control), so there its
``grant_app_role`` refuses with that explanation (checked below)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.cli.test_cli import run
from tests.conftest import PG_ADMIN_URL, scratch_pg_database, wait_until
from transact import DBOS, ConfigError, DBOSClient, Queue, SetWorkflowID
from transact.storage import grant_app_role


@pytest.fixture
def app_role() -> Iterator[tuple[str, str]]:
    """(admin URL, app URL) of a scratch database and a LOGIN role with no CREATE anywhere."""
    role = f"transact_app_{os.getpid()}"
    gen = scratch_pg_database("transact_priv")
    admin_url = next(gen)
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"DROP ROLE IF EXISTS {role}")
        conn.execute(f"CREATE ROLE {role} LOGIN NOCREATEDB NOCREATEROLE")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        conn.execute(f"REVOKE CREATE, TEMPORARY ON DATABASE {admin_url.rpartition('/')[2]} FROM PUBLIC")
    base, _, dbname = admin_url.rpartition("/")
    app_url = f"postgresql://{role}@{base.rpartition('@')[2]}/{dbname}"
    try:
        yield admin_url, app_url
    finally:
        DBOS.destroy(destroy_registry=True)
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f"DROP OWNED BY {role}")
        next(gen, None)  # drops the database
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f"DROP ROLE IF EXISTS {role}")


def test_app_role_runs_the_whole_lifecycle_without_ddl_rights(app_role: tuple[str, str]) -> None:
    admin_url, app_url = app_role
    role = app_url.split("//")[1].split("@")[0]
    # Without the migration, the app role cannot create the schema; launch says what to run.
    DBOS.destroy(destroy_registry=True)
    DBOS(config={"name": "priv", "system_database_url": app_url, "run_migrations": False})
    with pytest.raises(ConfigError, match="transact migrate"):
        DBOS.launch()
    DBOS.destroy(destroy_registry=True)
    proc = run("migrate", "--db", admin_url, "--app-role", role)
    assert proc.returncode == 0 and f"role {role!r} may run the application" in proc.stdout, proc.stderr
    with psycopg.connect(app_url) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("CREATE TABLE transact.intruder (x int)")

    DBOS(config={"name": "priv", "system_database_url": app_url, "run_migrations": False})
    queue = Queue("priv-q", concurrency=2)
    ticks: list[datetime] = []

    @DBOS.step()
    def double(x: int) -> int:
        return 2 * x

    @DBOS.workflow()
    def worker(x: int) -> int:
        DBOS.set_event("seen", x)
        DBOS.write_stream("out", x)
        DBOS.close_stream("out")
        return double(x) + (DBOS.recv("topic", timeout_seconds=10) or 0)

    @DBOS.workflow()
    def waiter() -> str:
        return str(DBOS.recv("never", timeout_seconds=30))

    @DBOS.workflow()
    def tick(scheduled: datetime, context: Any) -> None:
        ticks.append(scheduled)

    DBOS.launch()
    with SetWorkflowID("priv-1"):
        handle = queue.enqueue(worker, 5)
    DBOS.send("priv-1", 1, "topic")
    assert handle.get_result() == 11
    assert DBOS.get_event("priv-1", "seen") == 5
    assert list(DBOS.read_stream("priv-1", "out")) == [5]
    DBOS.create_schedule(schedule_name="priv-tick", workflow_fn=tick, schedule="* * * * * *")
    wait_until(lambda: ticks, timeout=10, what="a scheduled tick")
    DBOS.delete_schedule("priv-tick")

    blocked = DBOS.start_workflow(waiter)
    DBOS.cancel_workflow(blocked.workflow_id)
    wait_until(lambda: blocked.get_status().status == "CANCELLED", what="the cancel")
    DBOS.resume_workflow(blocked.workflow_id)
    DBOS.send(blocked.workflow_id, "late", "never")
    assert DBOS.retrieve_workflow(blocked.workflow_id).get_result() == "late"
    forked = DBOS.fork_workflow("priv-1", 2)
    DBOS.send(forked.workflow_id, 2, "topic")
    assert forked.get_result() == 12
    names = {w.name for w in DBOS.list_workflows()}
    assert {"worker", "waiter", "tick"} <= {n.rsplit(".", 1)[-1] for n in names}, names
    assert len(DBOS.list_queued_workflows()) == 0
    DBOS.destroy(destroy_registry=True)

    with DBOSClient(app_url, migrate=False) as client:  # a client under the same role
        client.send("priv-1", "x", "after")
        assert len(client.list_workflows(workflow_ids=["priv-1"])) == 1


def test_unknown_app_role_is_refused(app_role: tuple[str, str]) -> None:
    admin_url, _ = app_role
    proc = run("migrate", "--db", admin_url, "--app-role", "transact_no_such_role")
    assert proc.returncode == 1 and "role 'transact_no_such_role' does not exist" in proc.stderr, proc.stderr


def test_sqlite_has_no_roles(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="SQLite has no roles"):
        grant_app_role(f"sqlite:///{tmp_path / 'r.sqlite'}", "anyone")
    proc = run("migrate", "--db", f"sqlite:///{tmp_path / 'r.sqlite'}", "--app-role", "anyone")
    assert proc.returncode == 1 and "SQLite has no roles" in proc.stderr, proc.stderr
