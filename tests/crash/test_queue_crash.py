"""SIGKILL a queue worker mid-queue: a restarted or a surviving worker finishes every item, the
dead worker's claims do not block the global limit for good, and no recorded step runs twice."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import spawn, wait_until
from transact import DBOSClient

APP = Path(__file__).parent / "apps" / "queue_app.py"
ITEMS = 8


def start_worker(procs: list[subprocess.Popen[str]], db_url: str, workdir: Path, **env: str) -> subprocess.Popen[str]:
    proc = spawn(APP, db_url, str(workdir), json.dumps({"concurrency": 2}), env=env)
    procs.append(proc)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("READY"), line
    return proc


@pytest.mark.parametrize("takeover", ["restart", "restart-same-id", "survivor"])
def test_killed_worker_items_complete_once(
    db_url: str, tmp_path: Path, procs: list[subprocess.Popen[str]], takeover: str
) -> None:
    hold = tmp_path / "hold"
    hold.touch()
    env = {"APP_HEARTBEAT": "0.5"}
    if takeover == "restart-same-id":  # the restarted process resumes its own claims itself
        env["TRANSACT_EXECUTOR_ID"] = "queue-worker-1"
    doomed = start_worker(procs, db_url, tmp_path, **env)
    with DBOSClient(db_url) as client:
        handles = [client.enqueue({"workflow_name": "effectful", "queue_name": "shared"}, i) for i in range(ITEMS)]
        ids = [h.workflow_id for h in handles]

        def first_steps_recorded() -> list[str]:
            return [wid for wid in ids if 1 in client.store.steps_load(wid)]

        # The global limit (2) lets two items in; both recorded step 1 and hold in step 2.
        in_flight = wait_until(lambda: (done := first_steps_recorded()) and len(done) == 2 and done)
        states = Counter(client.get_workflow_status(wid).status for wid in ids)  # type: ignore[union-attr]
        assert states == {"PENDING": 2, "ENQUEUED": ITEMS - 2}

        if takeover == "survivor":
            start_worker(procs, db_url, tmp_path, **env)  # cannot claim yet: the dead worker's rows hold the limit
        doomed.kill()
        doomed.wait()
        hold.unlink()
        if takeover.startswith("restart"):
            start_worker(procs, db_url, tmp_path, **env)

        assert [h.get_result(timeout=60) for h in handles] == [i * 10 for i in range(ITEMS)]
        for wid in in_flight:
            status = client.get_workflow_status(wid)
            assert status is not None and status.recovery_attempts >= 1

    effects = Counter(line.split()[0] for line in (tmp_path / "effects.txt").read_text().splitlines())
    # every item's first step ran exactly once: the adopted items replayed their recorded step
    assert effects == Counter({str(i): 1 for i in range(ITEMS)})
