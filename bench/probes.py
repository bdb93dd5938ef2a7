"""Diagnostic probes behind bench/RESULTS.md's "where the time goes" (not part of the suite):

    python -m bench.probes layers  --db sqlite|postgres   # cost of each layer around one checkpoint
    python -m bench.probes astuple --db sqlite|postgres   # A/B: dataclasses.astuple vs attrgetter
    python -m bench.probes adopt   --db sqlite|postgres   # A/B: recovery with ADOPT_BATCH unlimited

The A/B probes monkeypatch the library in this process only, to measure a proposed change.
"""

from __future__ import annotations

import argparse
import dataclasses
import operator
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from bench import core, harness, recovery
from transact.storage import open_store
from transact.storage import workflows as wsql
from transact.storage.rows import StepRow, WorkflowRow


def _median_us(fn: Callable[[], Any], n: int = 3000) -> tuple[float, float]:
    """(median wall µs, mean thread-CPU µs) of ``fn``."""
    for _ in range(100):
        fn()
    walls = []
    c0 = time.thread_time()
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        walls.append(time.perf_counter() - t0)
    return statistics.median(walls) * 1e6, (time.thread_time() - c0) / n * 1e6


def _target(db: str) -> harness.Target:
    return harness.SqliteTarget() if db == "sqlite" else harness.PostgresTarget()


def layers(db: str) -> None:
    target = _target(db)
    url = target.fresh_url("layers")
    st = open_store(url)
    st.migrate()
    counter = iter(range(1, 10**9))
    fields = operator.attrgetter(*[f.name for f in dataclasses.fields(StepRow)])
    owner = "INSERT INTO workflow_status (workflow_id, status, name, executor_id, created_at, updated_at) VALUES ('w', 'PENDING', 'n', 'e', 1, 1)"
    plain = "INSERT INTO plain (workflow_id, function_id, function_name, output, error, child_workflow_id, started_at, completed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    ddl = "CREATE TABLE plain (workflow_id TEXT, function_id INT, function_name TEXT, output {b}, error {b}, child_workflow_id TEXT, started_at BIGINT, completed_at BIGINT, PRIMARY KEY (workflow_id, function_id))"

    def params() -> tuple[Any, ...]:
        return ("w", next(counter), "s", b"\x80\x05K\x01.", None, None, 1, 2)

    cases: list[tuple[str, Callable[[], Any]]] = []
    if isinstance(target, harness.SqliteTarget):
        raw = target.connect(harness.Path(url.removeprefix("sqlite:///")))
        raw.execute(owner)
        raw.execute(ddl.format(b="BLOB"))

        def raw_plain() -> None:
            raw.execute("BEGIN IMMEDIATE")
            raw.execute(plain, params())
            raw.execute("COMMIT")

        def raw_fenced() -> None:
            raw.execute("BEGIN IMMEDIATE")
            raw.execute(wsql.STEP_SQL["sqlite"].record, (*params(), "w", "e")).fetchone()
            raw.execute("COMMIT")

    else:
        assert isinstance(target, harness.PostgresTarget)
        pg = target.connect(url)
        pg.execute("SET search_path = transact")
        pg.execute(owner)
        pg.execute(ddl.format(b="BYTEA"))
        fenced_sql = wsql.STEP_SQL["postgres"].record.replace("?", "%s")

        def raw_plain() -> None:
            pg.execute(plain.replace("?", "%s"), params())

        def raw_fenced() -> None:
            pg.execute(fenced_sql, (*params(), "w", "e")).fetchone()

    def record() -> None:
        st.step_record(StepRow(*params()), executor_id="e")

    def record_attrgetter() -> None:
        row = StepRow(*params())
        st.write(lambda tx: tx.one(wsql.STEP_SQL[st.dialect].record, (*fields(row), "w", "e")), single=True)

    cases += [
        ("raw plain INSERT + commit", raw_plain),
        ("raw fenced step INSERT + commit", raw_fenced),
        ("store.write(no statement)", lambda: st.write(lambda tx: None, single=True)),
        ("store.step_record", record),
        ("store.write(fenced, attrgetter)", record_attrgetter),
    ]
    for rep in range(2):
        for name, fn in cases:
            wall, cpu = _median_us(fn)
            print(f"[{rep}] {name:34} wall p50 {wall:7.1f} µs   thread CPU {cpu:7.1f} µs")
    st.close()
    target.close()


def astuple_ab(db: str) -> None:
    """Interleaved A/B of the per-step slope with astuple replaced by attrgetter."""
    getters = {c: operator.attrgetter(*[f.name for f in dataclasses.fields(c)]) for c in (StepRow, WorkflowRow)}
    stock = wsql.astuple  # type: ignore[attr-defined]
    variants: dict[str, Callable[[Any], tuple[Any, ...]]] = {
        "astuple": stock,
        "attrgetter": lambda obj: getters[type(obj)](obj),
    }
    samples: dict[tuple[str, int], list[float]] = {(v, k): [] for v in variants for k in (0, 10)}
    target = _target(db)
    with harness.launched(target.fresh_url("ab")):
        for _ in range(50):
            core.bench_steps(10)
        for _ in range(30 if db == "sqlite" else 10):
            for name, fn in variants.items():
                wsql.astuple = fn  # type: ignore[attr-defined]
                for k in (0, 10):
                    for _ in range(20):
                        t0 = time.perf_counter()
                        core.bench_steps(k)
                        samples[(name, k)].append(time.perf_counter() - t0)
    wsql.astuple = stock  # type: ignore[attr-defined]
    target.close()
    for name in variants:
        m0 = statistics.median(samples[(name, 0)]) * 1e3
        m10 = statistics.median(samples[(name, 10)]) * 1e3
        print(f"{db} {name:10} wf(0) {m0:.3f} ms  wf(10) {m10:.3f} ms  per step {(m10 - m0) / 10 * 1e3:.1f} µs")


def adopt_ab(db: str) -> None:
    from transact.engine import recovery as engine_recovery

    stock = engine_recovery.ADOPT_BATCH
    for batch in (stock, 10**6):
        engine_recovery.ADOPT_BATCH = batch
        target = _target(db)
        rec = harness.Recorder(db)
        print(f"ADOPT_BATCH = {batch}")
        recovery.run(target, rec, quick=False)
        target.close()
    engine_recovery.ADOPT_BATCH = stock


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("probe", choices=["layers", "astuple", "adopt"])
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    args = parser.parse_args(argv)
    harness.quiet_logs()
    {"layers": layers, "astuple": astuple_ab, "adopt": adopt_ab}[args.probe](args.db)
    return 0


if __name__ == "__main__":
    sys.exit(main())
