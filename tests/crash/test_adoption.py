"""Recovery across processes: survivors adopt a dead process's work; a stale owner cannot write;
SIGTERM hands work over at once."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from tests.conftest import spawn, wait_until
from transact.storage import Store

APP = Path(__file__).parent / "apps" / "worker_app.py"


def effects(workdir: Path) -> list[str]:
    path = workdir / "effects.txt"
    return path.read_text().splitlines() if path.exists() else []


def count(workdir: Path, prefix: str) -> int:
    return sum(1 for line in effects(workdir) if line.startswith(prefix))


def start(
    procs: list[subprocess.Popen[str]], db_url: str, workdir: Path, role: str, n: int = 0, **env: str
) -> subprocess.Popen[str]:
    proc = spawn(APP, db_url, str(workdir), role, str(n), env=env)
    procs.append(proc)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("READY"), line
    return proc


def statuses(store: Store, ids: list[str]) -> dict[str, str]:
    return {i: (row.status if (row := store.workflow_get(i)) else "MISSING") for i in ids}


def test_survivors_adopt_after_lease_when_a_worker_dies(
    db_url: str, tmp_path: Path, store: Store, procs: list[subprocess.Popen[str]]
) -> None:
    n, lease = 50, 2.0
    env = {"APP_LEASE": str(lease), "APP_LOCAL_CHECK": "0"}  # pure lease path, as across machines
    (tmp_path / "hold").touch()
    start(procs, db_url, tmp_path, "worker", **env)
    start(procs, db_url, tmp_path, "worker", **env)
    victim = start(procs, db_url, tmp_path, "starter", n, **env)
    wait_until(lambda: count(tmp_path, "second-start") == n, timeout=30, what="all workflows inside step 2")
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    killed_at = time.monotonic()
    (tmp_path / "hold").unlink()
    ids = [f"wf-{i}" for i in range(n)]
    wait_until(
        lambda: set(statuses(store, ids).values()) == {"SUCCESS"},
        timeout=lease + 15,
        what="survivors to finish every workflow",
    )
    assert time.monotonic() - killed_at < lease + 15
    for wid in ids:
        # step 1 was checkpointed by the dead process: never run again
        assert count(tmp_path, f"first {wid} ") == 1
        row = store.workflow_get(wid)
        assert row is not None and row.executor_id != f"dead-{victim.pid}"
    survivors = {p.pid for p in procs if p is not victim}
    assert {int(line.split("pid=")[1]) for line in effects(tmp_path) if line.startswith("second-done")} <= survivors


def test_stale_owner_that_wakes_up_cannot_write(
    db_url: str, tmp_path: Path, store: Store, procs: list[subprocess.Popen[str]]
) -> None:
    lease = 2.0
    env = {"APP_LEASE": str(lease)}
    (tmp_path / "hold").touch()
    stale = start(procs, db_url, tmp_path, "starter", 1, **env)
    wait_until(lambda: count(tmp_path, "second-start wf-0") == 1, timeout=30, what="step 2 to start")
    os.kill(stale.pid, signal.SIGSTOP)  # alive but silent: only the lease can expire
    try:
        survivor = start(procs, db_url, tmp_path, "worker", **env)
        (tmp_path / "hold").unlink()
        wait_until(lambda: statuses(store, ["wf-0"])["wf-0"] == "SUCCESS", timeout=lease + 15, what="adoption")
    finally:
        os.kill(stale.pid, signal.SIGCONT)
    # The stale owner finishes its step body, but its checkpoint write is refused by the fence.
    wait_until(
        lambda: count(tmp_path, f"second-done wf-0 pid={stale.pid}") == 1,
        timeout=15,
        what="the stale step body to finish",
    )
    steps = store.steps_load("wf-0")
    row = store.workflow_get("wf-0")
    assert row is not None and row.status == "SUCCESS"
    from transact.engine.serialization import loads

    assert loads(steps[2].output) == survivor.pid
    assert loads(row.output) == survivor.pid
    wait_until(lambda: store.workflow_get("wf-0") == row, timeout=2, what="row unchanged")


def test_sigterm_hands_work_over_quickly(
    db_url: str, tmp_path: Path, store: Store, procs: list[subprocess.Popen[str]]
) -> None:
    n = 10
    survivor = start(procs, db_url, tmp_path, "worker")
    leaving = start(procs, db_url, tmp_path, "ticker", n)
    ids = [f"tick-{i}" for i in range(n)]
    wait_until(lambda: all(len(store.steps_load(i)) >= 3 for i in ids), timeout=30, what="workflows running")
    os.kill(leaving.pid, signal.SIGTERM)
    sent = time.monotonic()

    def handed_over() -> bool:
        rows = [store.workflow_get(i) for i in ids]
        return all(
            r is not None
            and (r.status == "SUCCESS" or r.executor_id not in (None,))
            and r.executor_id is not None
            and str(leaving.pid) not in r.executor_id
            for r in rows
        )

    wait_until(handed_over, timeout=10, what="every workflow owned by the survivor")
    elapsed = time.monotonic() - sent
    assert leaving.wait(timeout=10) == -signal.SIGTERM
    assert elapsed < 2.0, f"hand-over took {elapsed:.2f} s"
    wait_until(lambda: set(statuses(store, ids).values()) == {"SUCCESS"}, timeout=30, what="all finished")
    for i in ids:
        row = store.workflow_get(i)
        assert row is not None and str(survivor.pid) in (row.executor_id or "")
