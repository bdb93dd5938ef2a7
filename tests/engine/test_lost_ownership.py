"""A process stalled past its lease whose workflow another executor adopted and finished says it
lost ownership, and to whom; its waiters get the adopter's result, not a cancellation."""

from __future__ import annotations

import importlib
import os
import signal
from pathlib import Path
from typing import Any

from tests.conftest import spawn, wait_until
from tests.engine.apps import stall_app
from transact import DBOS

APP = Path(__file__).parent / "apps" / "stall_app.py"


def test_stalled_owner_reports_lost_ownership_to_the_adopter(db_url: str, tmp_path: Path, procs: list[Any]) -> None:
    DBOS.destroy(destroy_registry=True)
    importlib.reload(stall_app)  # registers the workflow in this process (executor stall-B)
    proc = spawn(APP, db_url, str(tmp_path), env={"STALL_WORKDIR": str(tmp_path)})
    procs.append(proc)
    wait_until(lambda: (tmp_path / "in_slow").exists() or proc.poll() is not None, timeout=30, what="the slow step")
    assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
    os.kill(proc.pid, signal.SIGSTOP)
    try:
        DBOS(
            config={
                "name": "stall",
                "system_database_url": db_url,
                "executor_id": "stall-B",
                "lease_seconds": 1.0,
                "heartbeat_seconds": 0.2,
            }
        )
        DBOS.launch()
        status = wait_until(  # adopted past the lease, and finished here
            lambda: (s := DBOS.get_workflow_status("w1")) is not None and s.status == "SUCCESS" and s,
            timeout=30,
            what="stall-B to adopt and finish w1",
        )
        assert status.executor_id == "stall-B"
    finally:
        (tmp_path / "go").touch()
        os.kill(proc.pid, signal.SIGCONT)
    assert proc.stdout is not None
    lines: list[str] = []
    for line in proc.stdout:  # the waiter's outcome, then the rest once the app is told to stop
        lines.append(line.rstrip())
        if line.startswith(("RESULT", "ERROR")):
            (tmp_path / "stop").touch()
    proc.wait(30)
    output = "\n".join(lines)
    assert "RESULT first+slow@B" in output, output
    lost = [line for line in lines if "lost ownership" in line]
    assert lost and "stall-B" in lost[0], output
    assert "cancel" not in output.lower(), output
    DBOS.destroy(destroy_registry=True)
