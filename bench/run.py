"""Run the benchmark: ``python -m bench.run [--db sqlite|postgres|both] [--quick] [--only 1,3]``.

Prints each result as it is measured, then a markdown table; writes bench/out/results-<db>.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

from bench import core, floors
from bench.harness import OUT, PostgresTarget, Recorder, SqliteTarget, Target, machine, quiet_logs, table

Workload = Callable[[Target, Recorder, bool], None]


def _workloads() -> list[tuple[str, Workload]]:
    from bench import comms, idle, listing, queues, recovery, txn

    return [
        ("1", lambda t, r, q: core.latency(t.fresh_url("latency"), r, quick=q)),
        ("2", lambda t, r, q: core.throughput(t.fresh_url("throughput"), r, quick=q, db=t.name)),
        ("3", lambda t, r, q: queues.run(t, r, quick=q)),
        ("4", lambda t, r, q: recovery.run(t, r, quick=q)),
        ("5", lambda t, r, q: comms.run(t, r, quick=q)),
        ("6", lambda t, r, q: txn.run(t, r, quick=q)),
        ("7", lambda t, r, q: idle.run(t, r, quick=q)),
        ("8", lambda t, r, q: listing.run(t, r, quick=q)),
    ]


def run_db(db: str, quick: bool, only: set[str] | None) -> Recorder:
    print(f"\n== {db} {'(quick)' if quick else ''}", flush=True)
    target: Target = SqliteTarget() if db == "sqlite" else PostgresTarget()
    rec = Recorder(db)
    meta: dict[str, Any] = {
        "db_version": target.version(),
        "quick": quick,
        "only": sorted(only) if only else None,
        "machine": machine(),
    }
    meta["started"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    print(f"   {meta['db_version']}", flush=True)
    t0 = time.perf_counter()
    try:
        floors.measure(target, rec, quick=quick)
        for key, workload in _workloads():
            if only and key not in only:
                continue
            started = time.perf_counter()
            try:
                workload(target, rec, quick)
            except Exception as exc:  # one broken workload must not hide the others' numbers
                traceback.print_exc()
                rec.skip(f"{key}.error", f"{type(exc).__name__}: {exc}")
            print(f"     ({key} took {time.perf_counter() - started:.1f} s)", flush=True)
    finally:
        target.close()
    meta["duration_s"] = round(time.perf_counter() - t0, 1)
    meta["loadavg_end"] = machine().get("loadavg")
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"results-{db}{'-quick' if quick else ''}.json"
    text = json.dumps({**meta, **rec.as_json()}, indent=2, default=str)
    path.write_text(text)
    history = OUT / "history"  # every run, for ranges across runs (bench/report.py --history)
    history.mkdir(exist_ok=True)
    (history / f"{time.strftime('%Y%m%d-%H%M%S')}-{db}{'-quick' if quick else ''}.json").write_text(text)
    print(f"\n{table(rec)}\n\nwrote {path} in {meta['duration_s']} s", flush=True)
    return rec


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--quick", action="store_true", help="small sizes, ~1-2 minutes (smoke check)")
    parser.add_argument("--only", default="", help="comma-separated workload numbers, e.g. 1,2 (floors always run)")
    args = parser.parse_args(argv)
    quiet_logs()
    only = {s.strip() for s in args.only.split(",") if s.strip()} or None
    dbs = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    for db in dbs:
        run_db(db, args.quick, only)
    return 0


if __name__ == "__main__":
    sys.exit(main())
