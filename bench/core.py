"""Workloads 1 and 2: workflow latency by step count (per-step overhead = slope) and the
throughput of many three-step workflows started at once."""

from __future__ import annotations

import functools
import threading
import time
from typing import Any

from bench.harness import CpuMeter, Recorder, Result, latency_row, launched, slope, store, timed
from transact import DBOS


@DBOS.step()
def bench_noop_step() -> int:
    return 1


@DBOS.workflow()
def bench_steps(k: int) -> int:
    for _ in range(k):
        bench_noop_step()
    return k


@DBOS.workflow()
def bench_three() -> int:
    return bench_noop_step() + bench_noop_step() + bench_noop_step()


STEP_COUNTS = (0, 1, 3, 10)
WRITES_3STEP = 5  # start insert + 3 checkpoints + finish: the minimum for a 3-step workflow


def latency(url: str, rec: Recorder, *, quick: bool) -> None:
    n = 60 if quick else 1000  # per step count; the slope of four medians wants many samples each
    floor = rec.floors["insert_commit_ms"]
    medians: list[tuple[float, float]] = []
    with launched(url):
        st = store()
        for k in STEP_COUNTS:
            before = st.round_trips
            samples = timed(functools.partial(bench_steps, k), n, warmup=10)
            trips = (st.round_trips - before) / (n + 10)
            row = rec.add(
                latency_row(
                    "1.latency",
                    f"workflow, {k} steps",
                    samples,
                    floor_name="insert ms",
                    floor=floor,
                    note=f"{trips:.1f} round trips/wf (min {k + 2})",
                    extra={"round_trips_per_wf": trips},
                )
            )
            assert row.p50 is not None
            medians.append((k, row.p50))
    per_step = slope(medians)
    rec.add(
        Result(
            "1.latency",
            "per-step overhead (slope)",
            "ms",
            value=per_step,
            floor="insert ms",
            floor_value=floor,
            x_floor=per_step / floor,
            target="<= 1.5x floor",
            ok=per_step / floor <= 1.5,
        )
    )
    json_serializer(url, rec, quick=quick, pickle_per_step=per_step)


def json_serializer(url: str, rec: Recorder, *, quick: bool, pickle_per_step: float) -> None:
    """The per-step overhead again with ``serializer=DBOSPortableJSON`` (every step result stored as
    portable JSON): target <= 1.2x the pickle slope for small values."""
    from transact import DBOSPortableJSON

    n = 60 if quick else 1000
    medians: list[tuple[float, float]] = []
    with launched(url, serializer=DBOSPortableJSON):
        for k in (0, 10):
            samples = sorted(timed(functools.partial(bench_steps, k), n, warmup=10))
            medians.append((k, samples[len(samples) // 2] * 1000))
    per_step = slope(medians)
    ratio = per_step / pickle_per_step if pickle_per_step > 0 else float("inf")
    from transact.engine import serialization

    value = {"id": 1, "ok": True}
    encode = [
        min(timed(functools.partial(serialization.dumps, value, what="v", portable=p), 2000, warmup=100))
        for p in (False, True)
    ]
    rec.add(
        Result(
            "1.latency",
            "per-step overhead, JSON serializer (slope)",
            "ms",
            value=per_step,
            floor="pickle per-step",
            floor_value=pickle_per_step,
            x_floor=ratio,
            target="<= 1.2x pickle",
            ok=ratio <= 1.2,
            note=f"encode a small dict: pickle {encode[0] * 1e6:.2f} us, JSON {encode[1] * 1e6:.2f} us",
        )
    )


def throughput(url: str, rec: Recorder, *, quick: bool, db: str) -> None:
    n = 500 if quick else 2000
    floor_rate = rec.floors["insert_commit_concurrent_per_s"]
    with launched(url):
        st = store()
        for _ in range(20):
            DBOS.start_workflow(bench_three).get_result()  # warm pools and prepared statements
        before = st.round_trips
        with CpuMeter(url if db == "postgres" else None) as cpu:
            t0 = time.perf_counter()
            handles = [DBOS.start_workflow(bench_three) for _ in range(n)]
            t_started = time.perf_counter()
            results = [h.get_result() for h in handles]
            elapsed = time.perf_counter() - t0
        trips = (st.round_trips - before) / n
    assert results == [3] * n, "a three-step workflow returned a wrong result"
    rate = n / elapsed
    floor_wf = floor_rate / WRITES_3STEP
    target_ok = rate >= 1200 if db == "postgres" else None
    rec.add(
        Result(
            "2.throughput",
            f"{n} x 3-step wf, start+results",
            "wf/s",
            value=rate,
            floor=f"{WRITES_3STEP} commits at concurrent floor (wf/s)",
            floor_value=floor_wf,
            x_floor=floor_wf / rate,
            target=">= 1,200 wf/s" if db == "postgres" else None,
            ok=target_ok,
            note=f"{trips:.1f} round trips/wf; {cpu.per(n)}",
            extra={
                "round_trips_per_wf": trips,
                "elapsed_s": elapsed,
                **cpu.extra(n),
            },
        )
    )
    rec.add(Result("2.throughput", "start_workflow calls (caller thread)", "starts/s", value=n / (t_started - t0)))
    _throughput_threads(url, rec, n=n, threads=4)


def _throughput_threads(url: str, rec: Recorder, *, n: int, threads: int) -> None:
    """The same workload started by several threads at once (as request handlers would): starts
    share group commits instead of waiting for one commit each, in series. Informational."""
    with launched(url):
        for _ in range(20):
            DBOS.start_workflow(bench_three).get_result()
        handles: list[Any] = [None] * n
        barrier = threading.Barrier(threads + 1)

        def starter(first: int) -> None:
            barrier.wait()
            for i in range(first, n, threads):
                handles[i] = DBOS.start_workflow(bench_three)

        workers = [threading.Thread(target=starter, args=(k,)) for k in range(threads)]
        for w in workers:
            w.start()
        barrier.wait()
        t0 = time.perf_counter()
        for w in workers:
            w.join()
        results = [h.get_result() for h in handles]
        elapsed = time.perf_counter() - t0
    assert results == [3] * n, "a three-step workflow returned a wrong result"
    rec.add(
        Result(
            "2.throughput",
            f"{n} x 3-step wf, started by {threads} threads",
            "wf/s",
            value=n / elapsed,
            note="informational: the target row above starts from one thread",
        )
    )
