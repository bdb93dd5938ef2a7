"""Workload 3: queues. N tiny workflows enqueued in one process and drained by its workers (drain
rate, enqueue-to-start under load, none lost), then enqueue-to-start latency on an idle queue.
When ``DBOSClient`` can enqueue, also a pre-filled backlog drained by an app launched afterwards."""

from __future__ import annotations

import threading
import time
from typing import Any

from bench.harness import CpuMeter, Recorder, Result, Target, latency_row, launched, ms_stats, store
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
        with CpuMeter(url if pg else None) as cpu:
            t0 = time.perf_counter()
            handles = []
            for i in range(n):
                enq[i] = time.perf_counter()
                handles.append(q.enqueue(bench_queued, i))
            t_enqueued = time.perf_counter()
            results = [h.get_result() for h in handles]
            elapsed = time.perf_counter() - t0
        trips = (st.round_trips - before) / n
        done = _count_done("bench_q") - 20
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
            note=f"bounded by the enqueuing thread (next row); none lost; {dupes} re-executions; {done if done >= 0 else '?'} SUCCESS rows; {trips:.1f} round trips/wf; {cpu.per(n)}",
            extra={
                **cpu.extra(n),
                "round_trips_per_wf": trips,
                "lost": lost,
                "duplicate_runs": dupes,
                "success_rows": done,
            },
        )
    )
    rec.add(Result("3.queue", "enqueue calls (caller thread)", "enq/s", value=n / (t_enqueued - t0)))
    loaded = ms_stats([_started[i] - enq[i] for i in range(n)])
    rec.add(
        Result(
            "3.queue",
            "enqueue-to-start under load",
            "ms",
            p50=loaded["p50"],
            p99=loaded["p99"],
            note="backlog included",
        )
    )
    _idle_latency(target, rec, quick=quick)
    _threaded_enqueue(target, rec, n=n)
    _backlog(target, rec, n=n)


ENQUEUE_THREADS = 8


def _threaded_enqueue(target: Target, rec: Recorder, *, n: int) -> None:
    """``Queue.enqueue`` from 8 threads at once into one queue (the inserts share group commits on
    Postgres). The queue is registered but not served here, so only enqueues are timed."""
    from transact import DBOSClient

    pg = target.name == "postgres"
    url = target.fresh_url("queue-enqueue")
    with launched(url):
        with DBOSClient(url) as client:
            client.register_queue("bench_enq")
        q = DBOS.retrieve_queue("bench_enq")
        assert q is not None
        for i in range(-20, 0):
            q.enqueue(bench_queued, i)  # warm-up (connections, prepared statements)
        st = store()
        before = st.round_trips
        per = n // ENQUEUE_THREADS
        barrier = threading.Barrier(ENQUEUE_THREADS + 1)
        ids: list[list[str]] = [[] for _ in range(ENQUEUE_THREADS)]

        def enqueue(k: int) -> None:
            barrier.wait()
            ids[k].extend(q.enqueue(bench_queued, k * per + i).workflow_id for i in range(per))

        threads = [threading.Thread(target=enqueue, args=(k,)) for k in range(ENQUEUE_THREADS)]
        for t in threads:
            t.start()
        with CpuMeter(url if pg else None) as cpu:
            barrier.wait()
            t0 = time.perf_counter()
            for t in threads:
                t.join()
            elapsed = time.perf_counter() - t0
        total = per * ENQUEUE_THREADS
        trips = (st.round_trips - before) / total
        stored = len(DBOS.list_queued_workflows(queue_name="bench_enq"))
    assert len({w for chunk in ids for w in chunk}) == total, "duplicate workflow ids"
    rate = total / elapsed
    rec.add(
        Result(
            "3.queue",
            f"enqueue from {ENQUEUE_THREADS} threads",
            "enq/s",
            value=rate,
            target=">= 4,000 enq/s" if pg else None,
            ok=rate >= 4000 if pg else None,
            note=f"{total} Queue.enqueue calls; {stored - 20} rows ENQUEUED; {trips:.2f} round trips/enqueue; {cpu.per(total)}",
            extra={**cpu.extra(total), "round_trips_per_enqueue": trips, "threads": ENQUEUE_THREADS},
        )
    )


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
    rec.add(
        latency_row(
            "3.queue",
            "enqueue-to-start, idle queue",
            samples,
            floor_name="insert ms",
            floor=rec.floors["insert_commit_ms"],
            target_ms=5 if pg else None,
        )
    )


def _backlog(target: Target, rec: Recorder, *, n: int) -> None:
    """A backlog of N written by DBOSClient while no app runs; then launch and time the drain."""
    try:
        from transact import DBOSClient
    except ImportError:
        rec.skip("3.queue", "backlog drain: DBOSClient not available")
        return

    pg = target.name == "postgres"
    floor_rate = rec.floors["insert_commit_concurrent_per_s"]
    url = target.fresh_url("queue-backlog")
    client = DBOSClient(url)
    t0 = time.perf_counter()
    ids = {client.enqueue({"workflow_name": "bench_queued", "queue_name": "bench_q"}, i).workflow_id for i in range(n)}
    enqueue_rate = n / (time.perf_counter() - t0)
    client.destroy()
    declare_queue("bench_q")
    _runs.clear()
    remaining = set(ids)
    all_done = threading.Event()
    lock = threading.Lock()

    def on_hint(kind: str, ident: str, _key: str) -> None:
        if kind == "done" and ident in remaining:
            with lock:
                remaining.discard(ident)
                if not remaining:
                    all_done.set()

    t0 = time.perf_counter()
    with launched(url):
        t_launch = time.perf_counter() - t0
        with CpuMeter(url if pg else None) as cpu:  # inside: the app's backends must still exist at exit
            DBOS._rt().hint_listeners.append(on_hint)
            for status in DBOS.list_workflows(queue_name="bench_q", status="SUCCESS"):  # done before we listened
                on_hint("done", status.workflow_id, "")
            finished = all_done.wait(timeout=300)
            elapsed = time.perf_counter() - t0
        trips = store().round_trips / n
        done = _count_done("bench_q")
    assert finished, f"backlog drain did not finish: {len(remaining)} of {n} left"
    dupes = len(_runs) - len(set(_runs))
    rate = n / elapsed
    floor_wf = floor_rate / 2  # claim + finish (the enqueue insert happened before the clock)
    rec.add(
        Result(
            "3.queue",
            f"{n} backlog (DBOSClient), launch+drain",
            "wf/s",
            value=rate,
            floor="2 commits at concurrent floor (wf/s)",
            floor_value=floor_wf,
            x_floor=floor_wf / rate,
            target=">= 2,000 wf/s" if pg else None,
            ok=rate >= 2000 if pg else None,
            note=f"{done} SUCCESS rows, {dupes} re-executions; launch {t_launch:.2f} s; {trips:.1f} round trips/wf; {cpu.per(n)}",
            extra={
                "launch_s": t_launch,
                "round_trips_per_wf": trips,
                "success_rows": done,
                "duplicate_runs": dupes,
                **cpu.extra(n),
            },
        )
    )
    rec.add(Result("3.queue", "DBOSClient.enqueue (one thread)", "enq/s", value=enqueue_rate))
