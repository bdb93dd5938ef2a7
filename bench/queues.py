"""Workload 3: queues. N tiny workflows enqueued in one process and drained by its workers (drain
rate, enqueue-to-start under load, none lost), then enqueue-to-start latency on an idle queue.
When ``DBOSClient`` can enqueue, also a pre-filled backlog drained by an app launched afterwards."""

from __future__ import annotations

import time
from typing import Any

from bench.harness import Recorder, Result, Target, launched, ms_stats, store
from transact import DBOS

_queues: dict[str, Any] = {}
_started: dict[int, float] = {}
_runs: list[int] = []


def available() -> bool:
    from transact import Queue

    return hasattr(Queue, "enqueue")


def declare_queue(name: str, **kwargs: Any) -> Any:
    """The queue called ``name`` (declared once per process), or None without queue support."""
    if not available():
        return None
    if name not in _queues:
        from transact import Queue

        _queues[name] = Queue(name, **kwargs)
    return _queues[name]


@DBOS.workflow()
def bench_queued(i: int) -> int:
    _started[i] = time.perf_counter()
    _runs.append(i)  # list.append is atomic under the GIL: counts duplicate executions too
    return i


def _count_done(queue_name: str) -> int:
    rows = DBOS.list_workflows(queue_name=queue_name, status="SUCCESS") if hasattr(DBOS, "list_workflows") else None
    return len(rows) if rows is not None else -1


def run(target: Target, rec: Recorder, *, quick: bool) -> None:
    if not available():
        rec.skip("3.queue", "not available (transact.Queue has no enqueue yet)")
        return
    n = 2000 if quick else 10_000
    pg = target.name == "postgres"
    floor_rate = rec.floors["insert_commit_concurrent_per_s"]
    url = target.fresh_url("queue")
    q = declare_queue("bench_q")
    _started.clear()
    _runs.clear()
    with launched(url):
        st = store()
        for i in range(-20, 0):
            q.enqueue(bench_queued, i).get_result()  # warm-up
        _started.clear()
        _runs.clear()
        before = st.round_trips
        enq: list[float] = [0.0] * n
        t0 = time.perf_counter()
        handles = []
        for i in range(n):
            enq[i] = time.perf_counter()
            handles.append(q.enqueue(bench_queued, i))
        t_enqueued = time.perf_counter()
        results = [h.get_result() for h in handles]
        elapsed = time.perf_counter() - t0
        trips = (st.round_trips - before) / n
        done = _count_done("bench_q")
    lost = n - len(set(results) & set(range(n)))
    dupes = len(_runs) - len(set(_runs))
    assert lost == 0, f"{lost} queued workflows lost"
    rate = n / elapsed
    floor_wf = floor_rate / 3  # enqueue insert + claim + finish
    rec.add(
        Result(
            "3.queue",
            f"{n} enqueued+drained in-process",
            "wf/s",
            value=rate,
            floor="3 commits at concurrent floor (wf/s)",
            floor_value=floor_wf,
            x_floor=floor_wf / rate,
            target=">= 2,000 wf/s" if pg else None,
            ok=rate >= 2000 if pg else None,
            note=f"none lost; {dupes} re-executions; {done if done >= 0 else '?'} SUCCESS rows; {trips:.1f} round trips/wf",
            extra={"round_trips_per_wf": trips, "lost": lost, "duplicate_runs": dupes, "success_rows": done},
        )
    )
    rec.add(Result("3.queue", "enqueue calls (caller thread)", "enq/s", value=n / (t_enqueued - t0)))
    loaded = ms_stats([_started[i] - enq[i] for i in range(n)])
    rec.add(
        Result("3.queue", "enqueue-to-start under load", "ms", p50=loaded["p50"], p99=loaded["p99"], note="backlog included")
    )
    _idle_latency(target, rec, quick=quick)


def _idle_latency(target: Target, rec: Recorder, *, quick: bool) -> None:
    n = 50 if quick else 200
    pg = target.name == "postgres"
    q = declare_queue("bench_q")
    url = target.fresh_url("queue-latency")
    samples = []
    with launched(url):
        for i in range(-10, n):
            t = time.perf_counter()
            q.enqueue(bench_queued, i).get_result()
            if i >= 0:
                samples.append(_started[i] - t)
    s = ms_stats(samples)
    floor = rec.floors["insert_commit_ms"]
    rec.add(
        Result(
            "3.queue",
            "enqueue-to-start, idle queue",
            "ms",
            p50=s["p50"],
            p99=s["p99"],
            floor="insert ms",
            floor_value=floor,
            x_floor=s["p50"] / floor,
            target="p50 <= 5 ms" if pg else None,
            ok=s["p50"] <= 5 if pg else None,
        )
    )
