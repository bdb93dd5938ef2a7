"""Global concurrency from the queue registry across processes: two workers serving a queue
registered with concurrency 1 never run two of its workflows at once, even when the one running
is SIGKILLed and a third worker joins; every item still completes."""

from __future__ import annotations

import itertools
import json
import subprocess
import time
from pathlib import Path

from tests.conftest import spawn, wait_until
from transact import DBOSClient

APP = Path(__file__).parent / "apps" / "registry_app.py"
ITEMS = 5


def start_worker(procs: list[subprocess.Popen[str]], db_url: str, workdir: Path) -> subprocess.Popen[str]:
    proc = spawn(APP, db_url, str(workdir), json.dumps({"concurrency": 1}), env={"APP_HEARTBEAT": "0.5"})
    procs.append(proc)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("READY"), line
    return proc


def read_lines(path: Path) -> list[tuple[str, int, int, int]]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        kind, i, pid, ns = line.split()
        rows.append((kind, int(i), int(pid), int(ns)))
    return rows


def test_global_limit_holds_across_a_kill(db_url: str, tmp_path: Path, procs: list[subprocess.Popen[str]]) -> None:
    (tmp_path / "hold").touch()
    workers = {p.pid: p for p in (start_worker(procs, db_url, tmp_path) for _ in range(2))}
    intervals = tmp_path / "intervals.txt"
    with DBOSClient(db_url) as client:
        handles = [client.enqueue({"workflow_name": "interval", "queue_name": "reg"}, i, 0.05) for i in range(ITEMS)]
        first = wait_until(lambda: read_lines(intervals), what="one workflow started")
        assert len(first) == 1  # the limit lets exactly one in while it holds
        victim = workers[first[0][2]]
        victim.kill()
        victim.wait()
        killed_at = time.time_ns()
        start_worker(procs, db_url, tmp_path)  # two live workers compete again
        (tmp_path / "hold").unlink()
        assert sorted(h.get_result(timeout=60) for h in handles) == list(range(ITEMS))
    (tmp_path / "stop").touch()

    # Each execution attempt is an interval; the killed one ends at the kill.
    opened: dict[tuple[int, int], int] = {}
    spans: list[tuple[int, int, int, int]] = []
    for kind, i, pid, ns in read_lines(intervals):
        if kind == "start":
            opened[(i, pid)] = ns
        else:
            spans.append((opened.pop((i, pid)), ns, i, pid))
    assert list(opened) == [(first[0][1], victim.pid)]  # only the killed attempt never ended
    spans.append((opened[(first[0][1], victim.pid)], killed_at, first[0][1], victim.pid))
    spans.sort()
    for before, after in itertools.pairwise(spans):
        assert after[0] >= before[1], f"{after} started while {before} was running"
    assert sorted({i for _, _, i, _ in spans}) == list(range(ITEMS))
