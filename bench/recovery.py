"""Workload 4: recovery. A subprocess starts N workflows that block in their second step, is
SIGKILLed, and this process launches on the same database: time from launch to all results.

Two variants: a restart under a new executor id (the dead process's work is adopted) and a
restart under the same executor id (its own work is resumed).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

import psycopg

from bench.harness import ROOT, PostgresTarget, Recorder, Result, Target, launched
from transact import DBOS

BLOCK_ENV = "BENCH_RECOVERY_BLOCK"


@DBOS.step()
def bench_rec_first(i: int) -> int:
    return i


@DBOS.step()
def bench_rec_block() -> int:
    if os.environ.get(BLOCK_ENV):
        time.sleep(3600)  # the crashing process parks here until it is killed
    return 1


@DBOS.workflow()
def bench_rec_wf(i: int) -> int:
    return bench_rec_first(i) + bench_rec_block()


def _count(target: Target, url: str, sql: str) -> int:
    if isinstance(target, PostgresTarget):
        with psycopg.connect(url, autocommit=True) as conn:
            row = conn.execute(sql.replace("FROM ", "FROM transact.")).fetchone()
    else:
        lite = sqlite3.connect(url.removeprefix("sqlite:///"))
        try:
            row = lite.execute(sql).fetchone()
        finally:
            lite.close()
    assert row is not None
    return int(row[0])


def _pending_ids(target: Target, url: str) -> list[str]:
    sql = "SELECT workflow_id FROM workflow_status WHERE status = 'PENDING'"
    if isinstance(target, PostgresTarget):
        with psycopg.connect(url, autocommit=True) as conn:
            return [r[0] for r in conn.execute(sql.replace("FROM ", "FROM transact.")).fetchall()]
    lite = sqlite3.connect(url.removeprefix("sqlite:///"))
    try:
        return [r[0] for r in lite.execute(sql).fetchall()]
    finally:
        lite.close()


def _crash(target: Target, url: str, n: int, executor_id: str) -> list[str]:
    """Run the child until all N workflows are parked in their second step, then SIGKILL it."""
    env = {**os.environ, BLOCK_ENV: "1", "PYTHONUNBUFFERED": "1"}
    child = subprocess.Popen(
        [sys.executable, "-m", "bench.recovery_child", url, str(n), executor_id],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while _count_safe(target, url, "SELECT count(*) FROM operation_outputs WHERE function_id = 1") < n:
            if child.poll() is not None:
                raise RuntimeError(f"recovery child exited early: {child.stdout.read() if child.stdout else ''}")
            if time.monotonic() > deadline:
                raise TimeoutError("recovery child did not park its workflows within 120 s")
            time.sleep(0.05)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        if child.stdout:
            child.stdout.close()
    ids = _pending_ids(target, url)
    assert len(ids) == n, f"expected {n} PENDING workflows at the kill, found {len(ids)}"
    return ids


def _count_safe(target: Target, url: str, sql: str) -> int:
    try:
        return _count(target, url, sql)
    except (psycopg.Error, sqlite3.Error):
        return 0  # schema not created yet


def run(target: Target, rec: Recorder, *, quick: bool) -> None:
    n = 100 if quick else 500
    for variant, executor_id in (("new executor id (adopt)", ""), ("same executor id", "bench-recovery")):
        url = target.fresh_url(f"recovery-{len(executor_id)}")
        ids = _crash(target, url, n, executor_id)
        config = {"executor_id": executor_id} if executor_id else {}
        t0 = time.perf_counter()
        with launched(url, **config):
            t_launch = time.perf_counter() - t0
            results = [DBOS.get_result(wid) for wid in ids]
            elapsed = time.perf_counter() - t0
        inputs = sorted(r - 1 for r in results)
        assert inputs == list(range(n)), "a recovered workflow returned a wrong result"
        rec.add(
            Result(
                "4.recovery",
                f"{n} pending, {variant}",
                "s",
                value=elapsed,
                target="<= 1 s" if n == 500 else None,
                ok=elapsed <= 1.0 if n == 500 else None,
                note=f"launch() took {t_launch:.2f} s",
                extra={"launch_s": t_launch, "n": n},
            )
        )
