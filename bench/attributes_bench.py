"""``list_workflows(attributes={...})``: the newest 50 workflows holding given attribute pairs,
over 1,000,000 workflow rows, on SQLite and Postgres. Target: median <= 20 ms.

    python -m bench.attributes_bench [--db sqlite|postgres|both] [--rows N] [--calls N]

Rows are inserted in one statement (``store.admin_insert_synthetic``) into a scratch database, then
every row gets attributes by one bulk UPDATE: ``tenant`` (100 values, 1 % of rows each), ``env``
(the same value on every row) and, on one row in 10,000, ``flag``. Calls go through DBOSClient
(load_input / load_output off, as a listing page asks) and are timed for three selectivities:
1 % of rows, every row, 0.01 % of rows, and two pairs at once.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import time
from typing import Any

from bench.harness import PostgresTarget, SqliteTarget, Target, ms_stats, pct
from transact import DBOSClient
from transact.engine.clock import now_ms
from transact.storage import open_store

TARGET_MS = 20.0
# One bulk UPDATE per database (bench-only SQL): the row number is the id's suffix ("syn-N").
_ATTRIBUTES = {
    "sqlite": (
        "UPDATE workflow_status SET attributes = json_object('tenant', 't' || (CAST(substr(workflow_id, 5) AS INTEGER)"
        " % 100), 'env', 'prod')"
    ),
    "postgres": (
        "UPDATE transact.workflow_status SET attributes = jsonb_build_object('tenant', 't' ||"
        " (CAST(substr(workflow_id, 5) AS INTEGER) % 100), 'env', 'prod')"
    ),
}
_FLAG = {
    "sqlite": (
        "UPDATE workflow_status SET attributes = json_set(attributes, '$.flag', 'on')"
        " WHERE CAST(substr(workflow_id, 5) AS INTEGER) % 10000 = 0"
    ),
    "postgres": (
        'UPDATE transact.workflow_status SET attributes = attributes || \'{"flag": "on"}\''
        " WHERE CAST(substr(workflow_id, 5) AS INTEGER) % 10000 = 0"
    ),
}
CASES: dict[str, dict[str, Any]] = {
    "tenant (1 % of rows)": {"tenant": "t7"},
    "env (every row)": {"env": "prod"},
    "flag (0.01 % of rows)": {"flag": "on"},
    "tenant and env": {"tenant": "t7", "env": "prod"},
}


def _seed(target: Target, url: str, rows: int) -> float:
    store = open_store(url)
    try:
        store.migrate()
        started = time.perf_counter()
        store.admin_insert_synthetic(
            count=rows, id_prefix="syn-", names=["bench_attr"], statuses=["SUCCESS"], now=now_ms()
        )
    finally:
        store.close()
    _bulk(target, url, [_ATTRIBUTES[target.name], _FLAG[target.name]])
    return time.perf_counter() - started


def _bulk(target: Target, url: str, statements: list[str]) -> None:
    if target.name == "sqlite":
        conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None, timeout=30.0)
        try:
            for sql in statements:  # the triggers of migration 0015 fill workflow_attributes
                conn.execute(sql)
            conn.execute("ANALYZE")
        finally:
            conn.close()
        return
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        for sql in statements:
            conn.execute(sql.encode())
        conn.execute("ANALYZE transact.workflow_status")


def _time(client: DBOSClient, attributes: dict[str, Any], n: int) -> dict[str, float]:
    def call() -> list[Any]:
        return client.list_workflows(
            attributes=attributes, sort_desc=True, limit=50, load_input=False, load_output=False
        )

    for _ in range(5):  # warm-up: connections, statement caches, pages
        call()
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        found = call()
        samples.append(time.perf_counter() - t0)
    assert found, attributes
    stats = ms_stats(samples)
    stats["p95"] = pct([s * 1000 for s in samples], 95)
    return {k: round(v, 2) for k, v in stats.items()}


def run(target: Target, rows: int, calls: int) -> dict[str, Any]:
    url = target.fresh_url("attributes")
    seed_s = _seed(target, url, rows)
    with DBOSClient(url, migrate=False) as client:
        newest = client.list_workflows(attributes={"tenant": "t7"}, sort_desc=True, limit=50, load_input=False)
        assert len(newest) == 50 and all(w.workflow_id.endswith("7") for w in newest), newest[0]
        results = {label: _time(client, attrs, calls) for label, attrs in CASES.items()}
    return {"db": target.name, "version": target.version(), "rows": rows, "seed_s": round(seed_s, 1), **results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--calls", type=int, default=100)
    args = parser.parse_args()
    kinds = ("sqlite", "postgres") if args.db == "both" else (args.db,)
    failed = False
    for kind in kinds:
        target: Target = SqliteTarget() if kind == "sqlite" else PostgresTarget()
        try:
            result = run(target, args.rows, args.calls)
        finally:
            target.close()
        print(json.dumps(result, indent=2))
        for label in CASES:
            median = result[label]["p50"]
            verdict = "ok" if median <= TARGET_MS else "OVER TARGET"
            failed = failed or median > TARGET_MS
            print(f"{kind}: newest 50, {label}, over {args.rows:,} rows: median {median:.2f} ms ({verdict})")
    raise SystemExit(1 if failed else 0)


if __name__ == "__main__":
    main()
