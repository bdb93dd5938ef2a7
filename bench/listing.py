"""Workload 8: DBOS.list_workflows with a large workflow_status table (1,000,000 synthetic rows;
100,000 with --quick): newest 50, newest 50 with a status, newest 50 with a name. The floor is
the same "newest 50" SELECT issued directly on a raw connection."""

from __future__ import annotations

import pickle
import sqlite3
import time
from pathlib import Path
from typing import Any

from bench.harness import PostgresTarget, Recorder, Result, SqliteTarget, Target, latency_row, launched, ms_stats, timed
from transact import DBOS
from transact.storage import open_store

NAMES = 10  # synthetic workflow names bench_list_0..9; statuses: 10% ERROR, 10% CANCELLED, rest SUCCESS
_INPUTS = pickle.dumps(((7,), {}), protocol=5)
_OUTPUT = pickle.dumps(7, protocol=5)
_ERROR = pickle.dumps(ValueError("synthetic"), protocol=5)
_BASE_MS = 1_700_000_000_000

_PG_FILL = """
INSERT INTO transact.workflow_status
  (workflow_id, status, name, inputs, output, error, executor_id, app_version, recovery_attempts,
   created_at, updated_at, started_at)
SELECT 'syn-' || g,
       CASE g %% 10 WHEN 0 THEN 'ERROR' WHEN 1 THEN 'CANCELLED' ELSE 'SUCCESS' END,
       'bench_list_' || (g %% %(names)s),
       %(inputs)s, CASE WHEN g %% 10 = 0 THEN NULL ELSE %(output)s END, CASE WHEN g %% 10 = 0 THEN %(error)s END,
       'synthetic', 'v1', 0, %(base)s + g, %(base)s + g, %(base)s + g
FROM generate_series(1, %(n)s) AS g
"""

_SQLITE_FILL = """
WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < :n)
INSERT INTO workflow_status
  (workflow_id, status, name, inputs, output, error, executor_id, app_version, recovery_attempts,
   created_at, updated_at, started_at)
SELECT 'syn-' || x,
       CASE x % 10 WHEN 0 THEN 'ERROR' WHEN 1 THEN 'CANCELLED' ELSE 'SUCCESS' END,
       'bench_list_' || (x % :names),
       :inputs, CASE WHEN x % 10 = 0 THEN NULL ELSE :output END, CASE WHEN x % 10 = 0 THEN :error END,
       'synthetic', 'v1', 0, :base + x, :base + x, :base + x
FROM g
"""

_NEWEST = "SELECT * FROM {table} ORDER BY created_at DESC LIMIT 50"


def _fill(target: Target, url: str, n: int) -> None:
    params: dict[str, Any] = {
        "n": n,
        "names": NAMES,
        "inputs": _INPUTS,
        "output": _OUTPUT,
        "error": _ERROR,
        "base": _BASE_MS,
    }
    st = open_store(url)
    st.migrate()
    st.close()
    if isinstance(target, PostgresTarget):
        with target.connect(url) as conn:
            conn.execute("SET synchronous_commit = off")  # one bulk statement; durability is irrelevant here
            conn.execute(_PG_FILL, params)
            conn.execute("ANALYZE transact.workflow_status")  # autovacuum would do this within a minute
    else:
        assert isinstance(target, SqliteTarget)
        lite = target.connect(Path(url.removeprefix("sqlite:///")))
        lite.execute("BEGIN IMMEDIATE")
        lite.execute(_SQLITE_FILL, params)
        lite.execute("COMMIT")
        lite.close()  # no ANALYZE: applications never run it on SQLite


def _raw_newest(target: Target, url: str, n: int) -> dict[str, float]:
    if isinstance(target, PostgresTarget):
        with target.connect(url) as conn:
            sql = _NEWEST.format(table="transact.workflow_status")
            return ms_stats(timed(lambda: conn.execute(sql).fetchall(), n))
    lite = sqlite3.connect(url.removeprefix("sqlite:///"))
    try:
        sql = _NEWEST.format(table="workflow_status")
        return ms_stats(timed(lambda: lite.execute(sql).fetchall(), n))
    finally:
        lite.close()


def run(target: Target, rec: Recorder, *, quick: bool) -> None:
    if not hasattr(DBOS, "list_workflows"):
        rec.skip("8.list", "not available (DBOS.list_workflows missing)")
        return
    rows = 100_000 if quick else 1_000_000
    n = 20 if quick else 50
    url = target.fresh_url("list")
    t0 = time.perf_counter()
    _fill(target, url, rows)
    fill_s = time.perf_counter() - t0
    raw = _raw_newest(target, url, n)
    floor = raw["p50"]
    rec.add(
        Result(
            "8.list",
            f"raw SELECT newest 50 of {rows:,}",
            "ms",
            p50=raw["p50"],
            p99=raw["p99"],
            note=f"synthetic fill took {fill_s:.1f} s",
        )
    )
    cases = [
        ("newest 50", {}),
        ("newest 50, status=ERROR", {"status": "ERROR"}),
        ("newest 50, name=bench_list_3", {"name": "bench_list_3"}),
    ]
    with launched(url):
        for label, filters in cases:
            out: list[Any] = []

            def call(filters: dict[str, Any] = filters, out: list[Any] = out) -> None:
                out[:] = DBOS.list_workflows(limit=50, sort_desc=True, **filters)

            samples = timed(call, n, warmup=3)
            assert len(out) == 50, f"list_workflows({filters}) returned {len(out)} rows"
            rec.add(
                latency_row(
                    "8.list",
                    f"list_workflows {label}",
                    samples,
                    floor_name="raw SELECT ms",
                    floor=floor,
                    target_ms=20,
                )
            )
