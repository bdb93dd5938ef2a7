"""Render bench/out/results-<db>.json as markdown (for bench/RESULTS.md):
``python -m bench.report [--quick]``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from bench.harness import OUT, Recorder, Result, table


def render(data: dict[str, Any]) -> str:
    rec = Recorder(data["db"])
    rec.results = [Result(**r) for r in data["results"]]
    rec.skipped = [(s["workload"], s["why"]) for s in data["skipped"]]
    m = data["machine"]
    head = (
        f"### {data['db']} — {data['db_version']}\n\n"
        f"Run {data['started']}, {data['duration_s']} s; {m.get('cpus')} x {m.get('cpu')}, "
        f"{m.get('memory_gb')} GB, Python {m.get('python')}; load average at start "
        f"{' / '.join(m.get('loadavg', []))}, at end {' / '.join(data.get('loadavg_end') or [])}.\n"
    )
    return f"{head}\n{table(rec)}\n"


def _headline(r: dict[str, Any]) -> float | None:
    value = r["value"] if r["value"] is not None else r["p50"]
    return float(value) if value is not None else None


def history(db: str, last: int) -> str:
    """Min / median / max of every metric over the last ``last`` full runs (no --only) on ``db``."""
    runs = [json.loads(f.read_text()) for f in sorted((OUT / "history").glob(f"*-{db}.json"))]
    runs = [r for r in runs if not r.get("only") and len(r["results"]) >= 20][-last:]  # full runs only
    if not runs:
        return ""
    values: dict[tuple[str, str, str], list[float]] = {}
    for run in runs:
        for r in run["results"]:
            v = _headline(r)
            if v is not None:
                unit = r["unit"] if r["value"] is not None else f"{r['unit']} (p50)"
                values.setdefault((r["workload"], r["metric"], unit), []).append(v)
    lines = [
        f"#### {db}: range over {len(runs)} runs ({runs[0]['started']} .. {runs[-1]['started']})\n",
        "| workload | metric | unit | min | median | max |",
        "|---|---|---|---|---|---|",
    ]
    for (workload, metric, unit), vs in values.items():
        vs.sort()
        lines.append(f"| {workload} | {metric} | {unit} | {vs[0]:.4g} | {vs[len(vs) // 2]:.4g} | {vs[-1]:.4g} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--history", type=int, default=0, help="also summarize the last N full runs")
    args = parser.parse_args(argv)
    suffix = "-quick" if args.quick else ""
    if args.history:
        for db in ("sqlite", "postgres"):
            print(history(db, args.history))
    for db in ("sqlite", "postgres"):
        path = OUT / f"results-{db}{suffix}.json"
        if path.exists():
            print(render(json.loads(path.read_text())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
