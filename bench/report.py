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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    suffix = "-quick" if args.quick else ""
    for db in ("sqlite", "postgres"):
        path = OUT / f"results-{db}{suffix}.json"
        if path.exists():
            print(render(json.loads(path.read_text())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
