"""Soak: steady mixed load for N minutes; throughput, step latency and RSS at the start and the end.

    bash scripts/soak.sh --minutes 10 [--db sqlite|postgres|both] [--procs 2] [--clients 8]

Each process launches DBOS and keeps ``--clients`` threads busy, each starting workflows back to
back (closed loop): most run five steps, a ``set_event`` and a ``send``/``recv`` to itself; every
fifth goes through a queue with a concurrency limit. The step latency is the time a workflow waits
for one step call (body + checkpoint). The "start" window is the first minute after a warm-up, the
"end" window the last minute (shorter runs: a fifth of the run each); the report gives both, the
drift ratios end/start (target <= 1.2) and the RSS growth (target <= 10 %). Several processes
(``--procs``) share one database; each reports its own numbers and the run sums the throughput.
Postgres uses a scratch database on the shared server (dropped at the end); nothing is restarted.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from array import array
from collections import deque
from pathlib import Path
from typing import Any

import psycopg

from bench.harness import PG_ADMIN_URL

WARMUP_FRACTION = 0.1
MAX_WARMUP_S = 30.0
MAX_WINDOW_S = 60.0
BUCKET_S = 5.0


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _libsqlite() -> Any:
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("sqlite3")
    if name is None:
        return None
    lib = ctypes.CDLL(name)
    lib.sqlite3_memory_used.restype = ctypes.c_int64
    return lib


_SQLITE = _libsqlite()


def sqlite_heap_mb() -> float:
    """SQLite's own heap in this process (page caches, statement caches): with RSS, it tells caches
    filling from Python objects growing."""
    return 0.0 if _SQLITE is None else _SQLITE.sqlite3_memory_used() / 2**20


# Step latencies go into a histogram of geometric bins (1 % wide, 1 us to ~100 s) per bucket, not
# a list of floats: a minute of samples as Python floats is ~10 MB, which would show up as the
# soak's own RSS growth and be mistaken for the library's.
_BIN_BASE_S = 1e-6
_BIN_RATIO = 1.01
_BINS = int(math.log(1e8) / math.log(_BIN_RATIO)) + 2


def _bin(seconds: float) -> int:
    if seconds <= _BIN_BASE_S:
        return 0
    return min(_BINS - 1, int(math.log(seconds / _BIN_BASE_S) / math.log(_BIN_RATIO)) + 1)


def _bin_value(index: int) -> float:
    """A bin's representative latency: the geometric middle of its bounds."""
    return _BIN_BASE_S * _BIN_RATIO ** (index - 0.5) if index else _BIN_BASE_S


def _hist() -> array[int]:
    return array("q", bytes(8 * _BINS))


def hist_pct(hist: array[int], q: float) -> float:
    """The q-th percentile (0-100) of a histogram, within the bins' 1 %."""
    total = sum(hist)
    rank = max(1, math.ceil(total * q / 100))
    seen = 0
    for index, count in enumerate(hist):
        seen += count
        if seen >= rank:
            return _bin_value(index)
    return 0.0


class Recorder:
    """Step latencies and workflow completions in 5 s buckets; keeps only the start window and a
    rolling end window, so the soak's own memory stays flat."""

    def __init__(self, minutes: float) -> None:
        total = minutes * 60
        self.t0 = time.monotonic()
        self.warmup = min(total * WARMUP_FRACTION, MAX_WARMUP_S)
        self.window = min(total / 5, MAX_WINDOW_S)
        self.end_at = self.t0 + total
        self._lock = threading.Lock()
        self._bucket = _hist()
        self._bucket_done = 0
        self._bucket_start = self.t0
        self.start_buckets: list[tuple[array[int], int, float]] = []
        self.recent: deque[tuple[array[int], int, float]] = deque(maxlen=max(1, round(self.window / BUCKET_S)))
        self.rss_start: float | None = None
        self.rss_minutes: list[float] = []  # RSS at the end of each minute: warm-up or growth?
        self.sqlite_minutes: list[float] = []  # SQLite's heap at the same moments
        self.threads_minutes: list[int] = []
        self.blocks_minutes: list[int] = []  # Python's allocated memory blocks: objects piling up?

    def step(self, seconds: float) -> None:
        with self._lock:
            self._bucket[_bin(seconds)] += 1

    def done(self) -> None:
        with self._lock:
            self._bucket_done += 1

    def tick(self) -> None:
        """Close the current bucket when it is due (called by the main thread)."""
        now = time.monotonic()
        if now - self._bucket_start < BUCKET_S:
            return
        with self._lock:
            bucket = (self._bucket, self._bucket_done, now - self._bucket_start)
            self._bucket, self._bucket_done, self._bucket_start = _hist(), 0, now
        since = self._bucket_start - self.t0
        if since >= 60 * (len(self.rss_minutes) + 1):
            self.rss_minutes.append(rss_mb())
            self.sqlite_minutes.append(sqlite_heap_mb())
            self.threads_minutes.append(threading.active_count())
            self.blocks_minutes.append(sys.getallocatedblocks())
        if since <= self.warmup:
            return
        if since <= self.warmup + self.window + BUCKET_S / 2:
            self.start_buckets.append(bucket)
        elif self.rss_start is None:  # the start window just closed
            self.rss_start = rss_mb()
        self.recent.append(bucket)

    @staticmethod
    def summary(buckets: Any) -> dict[str, float]:
        merged = _hist()
        for hist, _, _ in buckets:
            for index, count in enumerate(hist):
                if count:
                    merged[index] += count
        steps = sum(merged)
        done = sum(d for _, d, _ in buckets)
        span = sum(t for _, _, t in buckets) or 1e-9
        if not steps:
            return {"workflows_per_s": 0.0, "steps": 0, "p50_ms": 0.0, "p99_ms": 0.0}
        return {
            "workflows_per_s": done / span,
            "steps": steps,
            "p50_ms": hist_pct(merged, 50) * 1000,
            "p99_ms": hist_pct(merged, 99) * 1000,
        }


def run_process(db_url: str, minutes: float, clients: int) -> dict[str, Any]:
    """One soak process: launch, load, report (a dict, printed as JSON by the child)."""
    from transact import DBOS, Queue

    rec = Recorder(minutes)
    DBOS(config={"name": "soak", "system_database_url": db_url, "shutdown_timeout_seconds": 5})
    queue = Queue("soak", concurrency=clients)

    @DBOS.step()
    def work(i: int, k: int) -> int:
        return i * k

    @DBOS.workflow()
    def mixed(i: int) -> int:
        total = 0
        for k in range(5):
            t = time.perf_counter()
            total += work(i, k)
            rec.step(time.perf_counter() - t)
        DBOS.set_event("progress", total)
        wid = DBOS.workflow_id
        assert wid is not None
        DBOS.send(wid, total, "self")
        got = DBOS.recv("self", timeout_seconds=30)
        assert got == total, (got, total)
        return total

    DBOS.launch()
    rss_launch = rss_mb()
    stop = threading.Event()
    errors: list[str] = []

    def client(c: int) -> None:
        i = c
        while not stop.is_set():
            try:
                if i % 5 == 0:
                    result = queue.enqueue(mixed, i).get_result()
                else:
                    result = DBOS.start_workflow(mixed, i).get_result()
                assert result == i * 10, (i, result)
                rec.done()
            except Exception as exc:  # counted and reported: a soak must not lose work silently
                errors.append(repr(exc))
                if len(errors) > 100:
                    stop.set()
            i += clients

    threads = [threading.Thread(target=client, args=(c,), daemon=True) for c in range(clients)]
    for th in threads:
        th.start()
    while time.monotonic() < rec.end_at and not stop.is_set():
        time.sleep(0.2)
        rec.tick()
    rss_end = rss_mb()
    stop.set()
    for th in threads:
        th.join(timeout=60)
    DBOS.destroy(destroy_registry=True)
    start, end = Recorder.summary(rec.start_buckets), Recorder.summary(rec.recent)
    rss_start = rec.rss_start or rss_launch
    return {
        "pid": os.getpid(),
        "start": start,
        "end": end,
        "p50_drift": end["p50_ms"] / start["p50_ms"] if start["p50_ms"] else None,
        "p99_drift": end["p99_ms"] / start["p99_ms"] if start["p99_ms"] else None,
        "rss_launch_mb": rss_launch,
        "rss_start_mb": rss_start,
        "rss_end_mb": rss_end,
        "rss_growth": rss_end / rss_start - 1,
        "rss_by_minute_mb": [round(m, 1) for m in rec.rss_minutes],
        "sqlite_heap_by_minute_mb": [round(m, 1) for m in rec.sqlite_minutes],
        "threads_by_minute": rec.threads_minutes,
        "python_blocks_by_minute": rec.blocks_minutes,
        # growth over the second half of the run only: caches fill early; a leak keeps growing
        "rss_growth_second_half": rss_end / rec.rss_minutes[len(rec.rss_minutes) // 2] - 1
        if len(rec.rss_minutes) >= 2
        else None,
        "errors": len(errors),
        "first_errors": errors[:5],
    }


def _pct(ratio: float | None) -> str:
    return "n/a" if ratio is None else f"{ratio * 100:+.1f} %"


def _database(db: str, workdir: Path) -> str:
    if db == "sqlite":
        return f"sqlite:///{workdir / 'soak.sqlite'}"
    base = PG_ADMIN_URL.rpartition("/")[0]
    name = f"transact_soak_{os.getpid()}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    return f"{base}/{name}"


def _drop(db_url: str) -> None:
    if db_url.startswith("postgres"):
        name = db_url.rpartition("/")[2]
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def soak(db: str, minutes: float, procs: int, clients: int) -> bool:
    workdir = Path(tempfile.mkdtemp(prefix=f"transact-soak-{db}-", dir=os.environ.get("SOAK_DIR")))
    db_url = _database(db, workdir)
    try:
        if procs == 1:
            reports = [run_process(db_url, minutes, clients)]
        else:
            cmd = [sys.executable, "-m", "bench.soak", "--child", db_url, "--minutes", str(minutes)]
            children = [
                subprocess.Popen([*cmd, "--clients", str(clients)], stdout=subprocess.PIPE, text=True)
                for _ in range(procs)
            ]
            reports = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in children]
    finally:
        _drop(db_url)
        shutil.rmtree(workdir, ignore_errors=True)
    ok = True
    for r in reports:
        s, e = r["start"], r["end"]
        print(
            f"[{db} pid {r['pid']}] start: {s['workflows_per_s']:.1f} wf/s, step p50 {s['p50_ms']:.3f} ms, "
            f"p99 {s['p99_ms']:.3f} ms | end: {e['workflows_per_s']:.1f} wf/s, step p50 {e['p50_ms']:.3f} ms, "
            f"p99 {e['p99_ms']:.3f} ms | drift p50 {r['p50_drift']:.2f}x, p99 {r['p99_drift']:.2f}x | "
            f"RSS {r['rss_start_mb']:.1f} -> {r['rss_end_mb']:.1f} MB ({r['rss_growth'] * 100:+.1f} %) | "
            f"second half {_pct(r['rss_growth_second_half'])} | RSS by minute {r['rss_by_minute_mb']} | "
            f"SQLite heap by minute {r['sqlite_heap_by_minute_mb']} | threads {r['threads_by_minute']} | "
            f"Python blocks by minute {r['python_blocks_by_minute']} | "
            f"errors {r['errors']} {r['first_errors']}",
            flush=True,
        )
        ok = ok and r["errors"] == 0 and r["p50_drift"] <= 1.2 and r["rss_growth"] <= 0.10
    total = sum(r["end"]["workflows_per_s"] for r in reports)
    print(
        f"[{db}] {procs} process(es) x {clients} clients, {minutes} min: end throughput {total:.1f} wf/s "
        f"({total * 5:.0f} steps/s); targets (p50 drift <= 1.2x, RSS growth <= 10 %, no errors): "
        f"{'met' if ok else 'MISSED'}",
        flush=True,
    )
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Soak: steady mixed load, drift and RSS growth.")
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="sqlite")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--procs", type=int, default=1)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(run_process(args.child, args.minutes, args.clients)), flush=True)
        return 0
    ok = True
    for db in ["sqlite", "postgres"] if args.db == "both" else [args.db]:
        ok = soak(db, args.minutes, args.procs, args.clients) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
