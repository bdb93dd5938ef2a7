"""Workload 5: durable communication. send -> recv latency (a sender outside workflows, one
receiving workflow, one message in flight at a time), start workflow -> get_event sees its first
event, and durable sleep accuracy (how late a short sleep wakes up)."""

from __future__ import annotations

import queue
import time

from bench.harness import Recorder, Result, Target, latency_row, launched, ms_stats
from transact import DBOS

_received: dict[int, float] = {}
_signal: queue.Queue[int] = queue.Queue()


def available(*names: str) -> bool:
    return all(hasattr(DBOS, name) for name in names)


@DBOS.workflow()
def bench_receiver(n: int) -> int:
    for _ in range(n):
        msg = DBOS.recv("ping", timeout_seconds=30)
        _received[msg] = time.perf_counter()
        _signal.put(msg)
    return n


@DBOS.workflow()
def bench_eventer() -> int:
    DBOS.set_event("first", 1)
    return 1


@DBOS.workflow()
def bench_sleeper(seconds: float) -> float:
    t0 = time.perf_counter()
    DBOS.sleep(seconds)
    return time.perf_counter() - t0 - seconds


def run(target: Target, rec: Recorder, *, quick: bool) -> None:
    pg = target.name == "postgres"
    floor = rec.floors["insert_commit_ms"]
    if available("send", "recv", "get_event", "set_event", "sleep"):
        url = target.fresh_url("comms")
        with launched(url):
            _send_recv(rec, 50 if quick else 300, pg, floor)
            _get_event(rec, 50 if quick else 200, pg, floor)
            _sleep(rec, 10 if quick else 40)
    else:
        rec.skip("5.comms", "not available (DBOS.send/recv/set_event/get_event/sleep missing)")


def _send_recv(rec: Recorder, n: int, pg: bool, floor: float) -> None:
    warm = 10
    _received.clear()
    handle = DBOS.start_workflow(bench_receiver, n + warm)
    sent: dict[int, float] = {}
    for i in range(n + warm):
        sent[i] = time.perf_counter()
        DBOS.send(handle.workflow_id, i, topic="ping")
        got = _signal.get(timeout=30)
        assert got == i, f"received message {got}, expected {i}"
    assert handle.get_result() == n + warm
    rec.add(
        latency_row(
            "5.comms",
            "send -> recv",
            [_received[i] - sent[i] for i in range(warm, n + warm)],
            floor_name="insert ms",
            floor=floor,
            target_ms=3 if pg else 10,
        )
    )


def _get_event(rec: Recorder, n: int, pg: bool, floor: float) -> None:
    samples = []
    for i in range(n + 10):
        t0 = time.perf_counter()
        handle = DBOS.start_workflow(bench_eventer)
        value = DBOS.get_event(handle.workflow_id, "first", timeout_seconds=30)
        if i >= 10:
            samples.append(time.perf_counter() - t0)
        assert value == 1, f"get_event returned {value!r}"
        handle.get_result()
    rec.add(
        latency_row(
            "5.comms",
            "start wf -> get_event sees event",
            samples,
            floor_name="insert ms",
            floor=floor,
            target_ms=3 if pg else None,
        )
    )


def _sleep(rec: Recorder, n: int) -> None:
    late = [bench_sleeper(0.05) for _ in range(n)]
    s = ms_stats(late)
    rec.add(Result("5.comms", "DBOS.sleep(0.05) wakes late by", "ms", p50=s["p50"], p99=s["p99"]))
