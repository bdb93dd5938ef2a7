"""The database going away under running workflows is survived: operations retry with back-off and
every workflow finishes. Runs in its own pytest pass (marker ``outage``): restarting Postgres would
disturb tests running beside it."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import wait_until
from transact import DBOS

pytestmark = pytest.mark.outage

STEPS = 15


def _cluster() -> str:
    return sorted(os.listdir("/etc/postgresql"))[0]


def restart_postgres() -> None:
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", _cluster(), "main", "restart"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    wait_until(
        lambda: subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1"]).returncode == 0,
        timeout=60,
        interval=0.2,
        what="postgres back up",
    )


def test_workflows_survive_database_outage(dbos: type[DBOS], backend: str, db_url: str) -> None:
    progress: dict[str, int] = {}
    lock = threading.Lock()

    @DBOS.step()
    def work(wid: str, i: int) -> int:
        with lock:
            progress[wid] = progress.get(wid, 0) + 1
        time.sleep(0.05)
        return i

    @DBOS.workflow()
    def long_running() -> int:
        wid = DBOS.workflow_id
        assert wid is not None
        return sum(work(wid, i) for i in range(STEPS))

    handles = [DBOS.start_workflow(long_running) for _ in range(20)]
    wait_until(lambda: len(progress) == 20 and min(progress.values()) >= 2, timeout=30, what="workflows running")
    if backend == "postgres":
        restart_postgres()
    else:
        # SQLite's "outage": another process holds the write lock for a while.
        path = db_url[len("sqlite:///") :]
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("BEGIN EXCLUSIVE")
        time.sleep(2)
        conn.execute("ROLLBACK")
        conn.close()
    results = [h.get_result(timeout=120) for h in handles]
    assert results == [sum(range(STEPS))] * 20
    assert all(h.get_status().status == "SUCCESS" for h in handles)


def test_unreachable_database_is_a_clear_error(tmp_path: Path) -> None:
    DBOS.destroy(destroy_registry=True)
    DBOS(
        config={
            "name": "unreachable",
            "system_database_url": "postgresql://postgres@127.0.0.1:1/nowhere",
            "database_retry_timeout_seconds": 1,
        }
    )
    try:
        from transact import DatabaseUnavailableError

        with pytest.raises(DatabaseUnavailableError, match=r"127\.0\.0\.1:1"):
            DBOS.launch()
    finally:
        DBOS.destroy(destroy_registry=True)
