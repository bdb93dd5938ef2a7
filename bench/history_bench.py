"""Does a system database holding a long finished history cost more than an empty one?

``python -m bench.history_bench [--rows 1000000] [--db both|sqlite|postgres] [--quick]``

For each database: seeds ``--rows`` finished workflows with 10 steps each by bulk SQL into a scratch
database (Postgres: INSERT ... SELECT generate_series; SQLite: a recursive CTE, one transaction),
then measures the same workloads on an empty database and on the seeded one, side by side:
per-step overhead (a 10-step workflow, p50 / 10), 3-step workflow throughput (4 threads),
enqueue-to-start p50 and send -> recv p50 (targets: history / empty <= 1.2x), in two rounds of
alternating order, best of each. Then, on the seeded
database, garbage collection of the whole history while a 3-step workload runs: workflows deleted
per second (target >= 20,000/s on Postgres) and the workload's p99 step latency against the same
workload without a collection (target <= 1.5x), the collector running and pausing in alternate
one-second windows (``gc_under_load``). Also the database size per 1,000 workflows.
Prints a table per database and writes bench/out/history-<db>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import shutil
import sqlite3
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

from transact import DBOS, Queue
from transact.engine import retention
from transact.engine.clock import now_ms

OUT = Path(__file__).parent / "out"
PG_ADMIN = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
STEPS_PER_WORKFLOW = 10
_started: dict[int, float] = {}
_received: dict[int, float] = {}
_signal: queue.Queue[int] = queue.Queue()
_step_samples: list[float] = []
_tagged_samples: list[tuple[float, str]] = []  # (seconds, the phase throughout: "on", "after" or "quiet")
_sampling = threading.Event()
_gc_window = threading.Event()  # set while the collector may run (interleaved measurement)
_gc_tag = threading.Event()  # set from a window's opening until the collector has parked again
_gc_quiet = threading.Event()  # set in a pause window once its aftermath (GC_AFTERMATH_S) is over


def _phase() -> str:
    """Where the interleaved measurement is: the collector's window ("on"), the start of a pause
    while the collection's after-effects may last ("after"), or the rest of a pause ("quiet")."""
    return "on" if _gc_tag.is_set() else "quiet" if _gc_quiet.is_set() else "after"


@DBOS.step()
def hb_noop() -> None:
    return None


@DBOS.workflow()
def hb_ten() -> int:
    for _ in range(STEPS_PER_WORKFLOW):
        hb_noop()
    return STEPS_PER_WORKFLOW


@DBOS.workflow()
def hb_three() -> int:
    for _ in range(3):
        if _sampling.is_set():
            phase = _phase()
            t = time.perf_counter()
            hb_noop()
            took = time.perf_counter() - t
            if _phase() == phase:  # a step across a phase's edge counts for none
                _step_samples.append(took)
                _tagged_samples.append((took, phase))
        else:
            hb_noop()
    return 3


@DBOS.workflow()
def hb_queued(i: int) -> int:
    _started[i] = time.perf_counter()
    return i


@DBOS.workflow()
def hb_receiver(n: int) -> int:
    for _ in range(n):
        msg = DBOS.recv("ping", timeout_seconds=30)
        _received[msg] = time.perf_counter()
        _signal.put(msg)
    return n


hb_queue = Queue("hb_queue")


# -- databases ------------------------------------------------------------------------------------
def _pg_url(name: str) -> str:
    return PG_ADMIN.rpartition("/")[0] + "/" + name


def _pg_create(name: str) -> str:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    return _pg_url(name)


def _pg_drop(name: str) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@contextmanager
def launched(url: str) -> Iterator[None]:
    DBOS.destroy()
    DBOS(config={"name": "history-bench", "system_database_url": url, "shutdown_timeout_seconds": 2})
    DBOS.launch()
    try:
        yield
    finally:
        DBOS.destroy()


def _migrate(url: str) -> None:
    with launched(url):
        pass


def seed(url: str, rows: int, dialect: str) -> float:
    """Bulk-insert ``rows`` finished workflows with 10 steps each, the last finished HISTORY_AGE_S
    ago; seconds taken."""
    _migrate(url)
    t0 = time.perf_counter()
    end = now_ms() - HISTORY_AGE_S * 1000
    if dialect == "postgres":
        with psycopg.connect(url, autocommit=True, options="-c search_path=transact") as conn:
            conn.execute("SET synchronous_commit = off")
            conn.execute(
                "INSERT INTO workflow_status (workflow_id, status, name, executor_id, app_version, inputs, output, "
                "created_at, updated_at, started_at) "
                "SELECT 'hist-' || lpad(n::text, 9, '0'), CASE WHEN n %% 50 = 0 THEN 'ERROR' ELSE 'SUCCESS' END, "
                "'hb_ten', 'old-executor', 'v1', '\\x80049500'::bytea, '\\x8004950a'::bytea, "
                "%s - %s + n, %s - %s + n + 5, %s - %s + n FROM generate_series(1, %s) AS n",
                (end, rows, end, rows, end, rows, rows),
            )
            conn.execute(
                "INSERT INTO operation_outputs (workflow_id, function_id, function_name, output, started_at, "
                "completed_at) SELECT 'hist-' || lpad(n::text, 9, '0'), f, 'hb_noop', '\\x80044e2e'::bytea, "
                "%s - %s + n, %s - %s + n FROM generate_series(1, %s) AS n, generate_series(1, 10) AS f",
                (end, rows, end, rows, rows),
            )
            conn.execute("VACUUM ANALYZE")
            conn.execute("CHECKPOINT")  # the seed's WAL is flushed before anything is timed
    else:
        conn = sqlite3.connect(url[len("sqlite:///") :], isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                "WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < ?) "
                "INSERT INTO workflow_status (workflow_id, status, name, executor_id, app_version, inputs, output, "
                "created_at, updated_at, started_at) "
                "SELECT printf('hist-%09d', n), CASE WHEN n % 50 = 0 THEN 'ERROR' ELSE 'SUCCESS' END, 'hb_ten', "
                "'old-executor', 'v1', x'80049500', x'8004950a', ? - ? + n, ? - ? + n + 5, ? - ? + n FROM s",
                (rows, end, rows, end, rows, end, rows),
            )
            conn.execute(
                "WITH RECURSIVE f(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM f WHERE k < 10) "
                "INSERT INTO operation_outputs (step_key, workflow_id, function_id, function_name, output, "
                "started_at, completed_at) SELECT (w.seq << 28) + f.k, w.workflow_id, f.k, 'hb_noop', x'80044e2e', "
                "w.created_at, w.created_at FROM workflow_status w, f ORDER BY 1",
            )
            conn.execute("COMMIT")
            conn.execute("ANALYZE")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()
    return time.perf_counter() - t0


def db_bytes(url: str, dialect: str) -> int:
    if dialect == "postgres":
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
            return int(row[0]) if row else 0
    path = Path(url[len("sqlite:///") :])
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


# -- workloads ------------------------------------------------------------------------------------
def p50(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def per_step_us(n: int) -> float:
    for _ in range(10):
        hb_ten()
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        hb_ten()
        samples.append(time.perf_counter() - t)
    return statistics.median(samples) / STEPS_PER_WORKFLOW * 1e6


def three_step_throughput(seconds: float, threads: int = 4) -> float:
    done = 0
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def worker() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            hb_three()
            with lock:
                done += 1

    t0 = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        for f in [pool.submit(worker) for _ in range(threads)]:
            f.result()
    return done / (time.perf_counter() - t0)


def enqueue_to_start_p50(n: int) -> float:
    samples = []
    for i in range(-10, n):
        t = time.perf_counter()
        hb_queue.enqueue(hb_queued, i).get_result()
        if i >= 0:
            samples.append(_started[i] - t)
    return p50(samples)


def send_recv_p50(n: int) -> float:
    warm = 10
    _received.clear()
    handle = DBOS.start_workflow(hb_receiver, n + warm)
    sent: dict[int, float] = {}
    for i in range(n + warm):
        sent[i] = time.perf_counter()
        DBOS.send(handle.workflow_id, i, topic="ping")
        assert _signal.get(timeout=30) == i
    handle.get_result()
    return p50([_received[i] - sent[i] for i in range(warm, n + warm)])


def measure(url: str, quick: bool) -> dict[str, float]:
    with launched(url):
        return {
            "per_step_us": per_step_us(100 if quick else 400),
            "three_step_wf_per_s": three_step_throughput(3 if quick else 8),
            "enqueue_to_start_p50_ms": enqueue_to_start_p50(50 if quick else 200),
            "send_recv_p50_ms": send_recv_p50(50 if quick else 200),
        }


def step_p99_under(load: Callable[[], None] | None, seconds: float) -> tuple[float, float]:
    """p99 step latency (ms) of a 3-step workload on 2 threads while ``load`` runs (None: alone)."""
    _step_samples.clear()
    _tagged_samples.clear()
    _sampling.set()
    stop = threading.Event()

    def worker() -> None:
        while not stop.is_set():
            hb_three()

    workers = [threading.Thread(target=worker) for _ in range(2)]
    for w in workers:
        w.start()
    t0 = time.perf_counter()
    try:
        if load is None:
            time.sleep(seconds)
        else:
            load()
    finally:
        elapsed = time.perf_counter() - t0
        stop.set()
        for w in workers:
            w.join()
        _sampling.clear()
    return pct(_step_samples, 0.99), elapsed


GC_BATCH, GC_PACE = retention.BATCH, retention.PACE  # the library's defaults unless --gc-batch/--gc-pace
GC_WINDOW_S = 1.0  # interleaved measurement: the collector runs and pauses in turns of this long
# The first part of each pause counts for neither side: what the collection leaves behind (dirty
# buffers, the log it wrote, a checkpoint it brought on) lands there, and a baseline holding it
# would hide part of the collector's cost.
GC_AFTERMATH_S = 0.3
# How long before the run the seeded history ends. An hour: retention collects history that
# finished long ago (finished_for_days, or beyond the newest max_finished), which the collector
# need not sweep for late steps (retention.SETTLE_MS); --history-age 60 measures the other case.
HISTORY_AGE_S = 3600


def gc_under_load(url: str, rows: int) -> dict[str, float]:
    """The whole history collected while the 3-step workload runs.

    The collector runs one window, pauses the next (it waits in its rest between batches), and so
    on until it is done; the workload runs throughout. Each step counts for the window it lies in
    (a step across an edge for neither), so both sides of the p99 ratio share the same minutes:
    the machine's background, the tables' growth, checkpoints; the baseline leaves out the first
    GC_AFTERMATH_S of each pause (reported apart). The rate is workflows deleted per
    second of open window. Also printed: the p99 of 5 s of the workload alone before the
    collection (the earlier baseline; on this machine it alone moves 1.0-1.9 ms between runs)."""
    with launched(url):
        before_p99, _ = step_p99_under(None, 5.0)
        store = DBOS._rt().store
        history_end = now_ms() - HISTORY_AGE_S * 1000 + 10  # the seed's last completion (+ its 5 ms) and a margin
        deleted = 0
        open_s = 0.0
        done, parked = threading.Event(), threading.Event()

        def paced_rest(seconds: float) -> None:
            time.sleep(seconds)
            if not _gc_window.is_set():
                parked.set()
                _gc_window.wait()
                parked.clear()

        def collect() -> None:
            nonlocal open_s
            collector = threading.Thread(target=run_collector)
            while not done.is_set():
                _gc_tag.set()
                _gc_window.set()
                opened = time.perf_counter()
                if collector.ident is None:
                    collector.start()
                done.wait(GC_WINDOW_S)
                _gc_window.clear()
                while not (parked.is_set() or done.is_set()):  # its batch in flight is "during"
                    time.sleep(0.001)
                open_s += time.perf_counter() - opened
                _gc_tag.clear()
                pause()
            collector.join()

        def pause() -> None:
            time.sleep(GC_AFTERMATH_S)
            _gc_quiet.set()
            time.sleep(GC_WINDOW_S - GC_AFTERMATH_S)
            _gc_quiet.clear()

        def run_collector() -> None:
            nonlocal deleted
            try:  # as the retention service runs it: giving way to another collecting process
                deleted = retention.garbage_collect(
                    store, cutoff_epoch_ms=history_end, batch=GC_BATCH, pace=GC_PACE, exclusive=True
                )
            finally:
                done.set()

        retention._rest, rest = paced_rest, retention._rest
        try:
            step_p99_under(collect, 0)
        finally:
            retention._rest = rest
            _gc_window.clear()
            _gc_tag.clear()
            _gc_quiet.clear()
    during, after, quiet = ([x for x, p in _tagged_samples if p == phase] for phase in ("on", "after", "quiet"))
    return {
        "gc_deleted": deleted,
        "gc_seconds": open_s,
        "gc_wf_per_s": deleted / open_s if open_s else 0.0,
        "step_p99_ms_alone": pct(quiet, 0.99),
        "step_p99_ms_during_gc": pct(during, 0.99),
        "step_p99_ms_aftermath": pct(after, 0.99),
        "step_p99_ms_alone_before": before_p99,
        "steps_during_gc": len(during),
        "steps_alone": len(quiet),
        "gc_missed": rows - deleted,
    }


def _best(runs: list[dict[str, float]]) -> dict[str, float]:
    """Per measure, the better of the runs (highest throughput, lowest time)."""
    return {k: (max if k.endswith("_per_s") else min)(r[k] for r in runs) for k in runs[0]}


# -- main -----------------------------------------------------------------------------------------
def run_db(dialect: str, rows: int, quick: bool, gc_only: bool = False) -> dict[str, Any]:
    print(f"\n== {dialect}: {rows:,} finished workflows x {STEPS_PER_WORKFLOW} steps", flush=True)
    scratch = OUT / f"history-{os.getpid()}"
    scratch.mkdir(parents=True, exist_ok=True)
    if dialect == "postgres":
        empty_url, hist_url = _pg_create("transact_hb_empty"), _pg_create("transact_hb_history")
    else:
        empty_url = f"sqlite:///{scratch / 'empty.sqlite'}"
        hist_url = f"sqlite:///{scratch / 'history.sqlite'}"
    try:
        _migrate(empty_url)
        empty_size = db_bytes(empty_url, dialect)
        seconds = seed(hist_url, rows, dialect)
        if gc_only:
            gc = gc_under_load(hist_url, rows)
            print("gc:     ", {k: round(v, 3) for k, v in gc.items()}, flush=True)
            return {"rows": rows, "gc": gc}
        hist_size = db_bytes(hist_url, dialect)
        per_1000 = (hist_size - empty_size) / (rows / 1000)
        print(f"seeded in {seconds:.0f} s; {per_1000 / 1024:.0f} KiB per 1,000 workflows", flush=True)
        # Two rounds in alternating order (empty, history, history, empty), best of each: a
        # neighbour's load or a checkpoint during one run does not decide the ratio.
        rounds: dict[str, list[dict[str, float]]] = {"empty": [], "history": []}
        for which in ("empty", "history", "history", "empty"):
            got = measure(empty_url if which == "empty" else hist_url, quick)
            rounds[which].append(got)
            print(f"{which + ':':9}", {k: round(v, 3) for k, v in got.items()}, flush=True)
        empty, history = (_best(rounds[w]) for w in ("empty", "history"))
        gc = gc_under_load(hist_url, rows)
        print("gc:     ", {k: round(v, 3) for k, v in gc.items()}, flush=True)
        return {
            "rows": rows,
            "seed_seconds": seconds,
            "bytes_per_1000_workflows": per_1000,
            "empty": empty,
            "history": history,
            "gc": gc,
        }
    finally:
        if dialect == "postgres":
            _pg_drop("transact_hb_empty")
            _pg_drop("transact_hb_history")
        else:
            shutil.rmtree(scratch, ignore_errors=True)


def report(dialect: str, r: dict[str, Any]) -> str:
    e, h, g = r["empty"], r["history"], r["gc"]
    lines = [
        f"### {dialect}: {r['rows']:,} finished workflows (10 steps each), seeded in {r['seed_seconds']:.0f} s",
        "",
        "| measure | empty | history | ratio | target |",
        "|---|---|---|---|---|",
    ]
    for key, label, lower_better in (
        ("per_step_us", "per-step overhead (us, p50)", True),
        ("three_step_wf_per_s", "3-step workflows/s (4 threads)", False),
        ("enqueue_to_start_p50_ms", "enqueue-to-start p50 (ms)", True),
        ("send_recv_p50_ms", "send -> recv p50 (ms)", True),
    ):
        ratio = h[key] / e[key] if lower_better else e[key] / h[key]
        lines.append(f"| {label} | {e[key]:.3f} | {h[key]:.3f} | {ratio:.2f}x | <= 1.2x |")
    gc_target = ">= 20,000/s" if dialect == "postgres" else "-"
    lines += [
        f"| GC rate during a 3-step workload (wf/s) | | {g['gc_wf_per_s']:,.0f} | | {gc_target} |",
        f"| workload step p99 (ms): alone / during GC | {g['step_p99_ms_alone']:.2f} | "
        f"{g['step_p99_ms_during_gc']:.2f} | {g['step_p99_ms_during_gc'] / g['step_p99_ms_alone']:.2f}x | <= 1.5x |",
        f"| (first {GC_AFTERMATH_S:.1f} s of each pause, counted for neither) | | {g['step_p99_ms_aftermath']:.2f} | "
        f"{g['step_p99_ms_aftermath'] / g['step_p99_ms_alone']:.2f}x | |",
        f"| (5 s alone before the collection, for comparison) | {g['step_p99_ms_alone_before']:.2f} | "
        f"{g['step_p99_ms_during_gc']:.2f} | {g['step_p99_ms_during_gc'] / g['step_p99_ms_alone_before']:.2f}x | |",
        f"| database size per 1,000 workflows | | {r['bytes_per_1000_workflows'] / 1024:,.0f} KiB | | |",
    ]
    return "\n".join(lines)


def main() -> int:
    global GC_BATCH, GC_PACE, HISTORY_AGE_S
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--db", choices=["both", "sqlite", "postgres"], default="both")
    parser.add_argument("--quick", action="store_true", help="fewer samples per measure")
    parser.add_argument("--gc-only", action="store_true", help="seed, then measure only the collection")
    parser.add_argument("--gc-batch", type=int, default=retention.BATCH, help="workflows per GC transaction")
    parser.add_argument("--gc-pace", type=float, default=retention.PACE, help="GC rest per batch / batch time")
    parser.add_argument("--history-age", type=int, default=HISTORY_AGE_S, help="seconds since the history ended")
    args = parser.parse_args()
    GC_BATCH, GC_PACE, HISTORY_AGE_S = args.gc_batch, args.gc_pace, args.history_age
    import logging

    logging.getLogger("transact").setLevel(logging.ERROR)
    OUT.mkdir(exist_ok=True)
    results = {}
    for dialect in ("sqlite", "postgres") if args.db == "both" else (args.db,):
        results[dialect] = run_db(dialect, args.rows, args.quick, args.gc_only)
        if args.gc_only:
            continue
        (OUT / f"history-{dialect}.json").write_text(json.dumps(results[dialect], indent=2))
    for dialect, r in results.items():
        if args.gc_only:
            continue
        print("\n" + report(dialect, r))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
