"""/metrics over a large system database: seeds N workflow rows (default 1,000,000) with bulk SQL
into a scratch database, then times ``render_metrics`` (what ``transact worker --port`` and the
console serve) and its two grouped reads. Target: /metrics <= 200 ms at 1,000,000 rows.

    python -m bench.metrics_bench [--db sqlite|postgres|both] [--rows N] [--runs K]

Rows: 20 workflow names; 0.3 % ENQUEUED and 0.1 % PENDING on 8 queues, a quarter of the others
queued too; 5 % ERROR, 2 % CANCELLED, the rest SUCCESS. Postgres gets ``VACUUM ANALYZE`` after the
fill (autovacuum does the same within a minute on an insert-heavy table; the index-only scan
needs the visibility map it sets). Prints medians; also the plans of the grouped reads.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import psycopg

from bench.harness import OUT, PG_ADMIN_URL
from transact.engine.metrics import render_metrics
from transact.storage import open_store
from transact.storage.rows import ExecutorRow

_STATUS = (
    "CASE WHEN {x} - ({x} / 1000) * 1000 < 3 THEN 'ENQUEUED' WHEN {x} - ({x} / 1000) * 1000 < 4 THEN 'PENDING'"
    " WHEN {x} - ({x} / 20) * 20 = 5 THEN 'ERROR' WHEN {x} - ({x} / 50) * 50 = 7 THEN 'CANCELLED' ELSE 'SUCCESS' END"
)
_QUEUE = (
    "CASE WHEN {x} - ({x} / 1000) * 1000 < 4 THEN 'q' || ({x} / 1000 - ({x} / 8000) * 8)"
    " WHEN {x} - ({x} / 4) * 4 = 0 THEN 'q' || ({x} - ({x} / 8) * 8) END"
)
_COLUMNS = "workflow_id, status, name, queue_name, executor_id, created_at, updated_at, started_at"
_BASE_MS = 1_700_000_000_000

SQLITE_FILL = (
    "WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < ?) "
    f"INSERT INTO workflow_status ({_COLUMNS}) "
    f"SELECT 'm-' || x, {_STATUS.format(x='x')}, 'wf_' || (x - (x / 20) * 20), {_QUEUE.format(x='x')}, 'e-0', "
    f"{_BASE_MS} + x, {_BASE_MS} + x, {_BASE_MS} + x FROM g"
)
PG_FILL = (
    f"INSERT INTO transact.workflow_status ({_COLUMNS}) "
    f"SELECT 'm-' || g, {_STATUS.format(x='g')}, 'wf_' || (g - (g / 20) * 20), {_QUEUE.format(x='g')}, 'e-0', "
    f"{_BASE_MS} + g, {_BASE_MS} + g, {_BASE_MS} + g FROM generate_series(1, %s) AS g"
)
WORKFLOW_COUNTS = "SELECT status, name, count(*) FROM workflow_status GROUP BY status, name"


def _median_ms(fn: Callable[[], Any], runs: int) -> float:
    fn()  # warm the caches and the connection
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples)


def _executors(url: str) -> None:
    store = open_store(url)
    now = int(time.time() * 1000)
    for i in range(5):
        seen = now if i < 3 else now - 3_600_000  # three alive, two silent for an hour
        store.executor_register(ExecutorRow(f"e-{i}", "bench", 1, "t", "v1", seen, seen, "RUNNING", None))
    store.close()


def seed_sqlite(rows: int) -> str:
    import sqlite3

    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"metrics-{os.getpid()}.sqlite"
    url = f"sqlite:///{path}"
    store = open_store(url)
    store.migrate()
    store.close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    conn.execute(SQLITE_FILL, (rows,))
    conn.execute("COMMIT")
    print("  plan:", " / ".join(r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + WORKFLOW_COUNTS)))
    conn.close()  # no ANALYZE: applications never run it on SQLite
    _executors(url)
    return url


def seed_postgres(rows: int) -> str:
    name = f"transact_metrics_bench_{os.getpid()}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    url = PG_ADMIN_URL.rpartition("/")[0] + "/" + name
    store = open_store(url)
    store.migrate()
    store.close()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET synchronous_commit = off")  # one bulk statement; durability is irrelevant here
        conn.execute(PG_FILL, (rows,))  # type: ignore[arg-type]
        conn.execute("VACUUM ANALYZE transact.workflow_status")
        plan = conn.execute("EXPLAIN " + WORKFLOW_COUNTS.replace("workflow_status", "transact.workflow_status"))
        print("  plan:", " / ".join(str(r[0]).strip() for r in plan))
    _executors(url)
    return url


def drop_postgres(url: str) -> None:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {url.rpartition('/')[2]} WITH (FORCE)")


def measure(db: str, rows: int, runs: int) -> dict[str, float]:
    print(f"{db}: seeding {rows:,} rows...", flush=True)
    t0 = time.perf_counter()
    url = seed_sqlite(rows) if db == "sqlite" else seed_postgres(rows)
    print(f"  seeded in {time.perf_counter() - t0:.1f} s", flush=True)
    store = open_store(url)
    try:
        size = len(render_metrics(store))
        result = {
            "render_metrics_ms": _median_ms(lambda: render_metrics(store), runs),
            "stats_workflow_counts_ms": _median_ms(store.stats_workflow_counts, runs),
            "stats_queue_depths_ms": _median_ms(store.stats_queue_depths, runs),
            "executor_list_ms": _median_ms(store.executor_list, runs),
        }
        print(f"  /metrics body: {size:,} bytes")
        for key, value in result.items():
            print(f"  {key:28s} {value:8.1f}  (median of {runs})")
        return result
    finally:
        store.close()
        if db == "postgres":
            drop_postgres(url)
        else:
            for suffix in ("", "-wal", "-shm"):
                path = url.removeprefix("sqlite:///") + suffix
                if os.path.exists(path):
                    os.remove(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    for db in ("sqlite", "postgres") if args.db == "both" else (args.db,):
        measure(db, args.rows, args.runs)


if __name__ == "__main__":
    main()
