"""Console API latency over a large history: ``GET /api/workflows?limit=50`` (the newest 50, what
the workflows page asks first) against 1,000,000 synthetic workflow rows, on SQLite and Postgres.
Target: p95 <= 50 ms. Also timed, for information: newest 50 of one status, of one name, page 2,
and one workflow's detail.

    python -m bench.console_bench [--db sqlite|postgres|both] [--rows N] [--requests N]

Rows are inserted in one statement (``store.admin_insert_synthetic``) into a scratch database; the
console runs in this process on a free loopback port and is called over HTTP with keep-alive.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import httpx

from bench.harness import PostgresTarget, SqliteTarget, Target, ms_stats, pct
from transact.console.server import ConsoleServer
from transact.engine.clock import now_ms
from transact.storage import open_store

NAMES = [f"bench_console_{i}" for i in range(10)]
STATUSES = ["SUCCESS"] * 8 + ["ERROR", "CANCELLED"]
TARGET_P95_MS = 50.0


def _seed(url: str, rows: int) -> float:
    store = open_store(url)
    try:
        store.migrate()
        started = time.perf_counter()
        store.admin_insert_synthetic(count=rows, id_prefix="syn-", names=NAMES, statuses=STATUSES, now=now_ms())
        return time.perf_counter() - started
    finally:
        store.close()


def _time(http: httpx.Client, path: str, params: dict[str, Any], n: int) -> dict[str, float]:
    for _ in range(5):  # warm-up: connections, statement caches, pages
        http.get(path, params=params).raise_for_status()
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        answer = http.get(path, params=params)
        samples.append(time.perf_counter() - t0)
        answer.raise_for_status()
    stats = ms_stats(samples)
    stats["p95"] = pct([s * 1000 for s in samples], 95)
    return {k: round(v, 2) for k, v in stats.items()}


def run(target: Target, rows: int, requests: int) -> dict[str, Any]:
    url = target.fresh_url("console")
    seed_s = _seed(url, rows)
    store = open_store(url)
    server = ConsoleServer(store, port=0)
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            first = http.get("/api/workflows", params={"limit": 50}).json()["workflows"]
            assert len(first) == 50 and first[0]["workflow_id"] == f"syn-{rows}", first[0]
            cases = {
                "newest 50": ("/api/workflows", {"limit": 50}),
                "newest 50, status=ERROR": ("/api/workflows", {"limit": 50, "status": "ERROR"}),
                "newest 50, one name": ("/api/workflows", {"limit": 50, "name": NAMES[3]}),
                "page 2 (offset 50)": ("/api/workflows", {"limit": 50, "offset": 50}),
                "one workflow": (f"/api/workflows/syn-{rows // 2}", {}),
            }
            results = {label: _time(http, path, params, requests) for label, (path, params) in cases.items()}
    finally:
        server.stop()
        store.close()
    return {"db": target.name, "version": target.version(), "rows": rows, "seed_s": round(seed_s, 1), **results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    kinds = ("sqlite", "postgres") if args.db == "both" else (args.db,)
    failed = False
    for kind in kinds:
        target: Target = SqliteTarget() if kind == "sqlite" else PostgresTarget()
        try:
            result = run(target, args.rows, args.requests)
        finally:
            target.close()
        p95 = result["newest 50"]["p95"]
        verdict = "ok" if p95 <= TARGET_P95_MS else "OVER TARGET"
        failed = failed or p95 > TARGET_P95_MS
        print(json.dumps(result, indent=2))
        print(
            f"{kind}: GET /api/workflows?limit=50 over {args.rows:,} rows: p95 {p95:.2f} ms ({verdict}, target {TARGET_P95_MS} ms)"
        )
    raise SystemExit(1 if failed else 0)


if __name__ == "__main__":
    main()
