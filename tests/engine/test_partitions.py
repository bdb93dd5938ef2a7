"""Partitioned queues with queue-wide and per-partition limits together: ``global_concurrency``
across partitions and processes, ``partition_concurrency`` / ``partition_worker_concurrency`` /
``partition_limiter`` per partition; round-robin service so a crowded partition starves no other;
the limits stored in the registry, changed live; two processes obeying them together.

In-process tests run with ``queue_poll_seconds=30``: they must act through pushed wake-ups."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import spawn, wait_until
from transact import DBOS, ConfigError, DBOSClient, Queue, SetEnqueueOptions

APP = Path(__file__).parent.parent / "crash" / "apps" / "registry_app.py"
GATE = threading.Event()


@pytest.fixture
def launched(config: dict[str, Any]) -> Iterator[None]:
    DBOS.destroy(destroy_registry=True)
    GATE.clear()
    yield None
    GATE.set()
    DBOS.destroy(destroy_registry=True)


def _launch(config: dict[str, Any]) -> None:
    DBOS(config={**config, "queue_poll_seconds": 30})
    DBOS.launch()


def _enqueue(queue: Queue, fn: Any, key: str, *args: Any) -> Any:
    with SetEnqueueOptions(queue_partition_key=key):
        return queue.enqueue(fn, *args)


def test_a_crowded_partition_does_not_starve_a_small_one(config: dict[str, Any], launched: None) -> None:
    order: list[str] = []

    @DBOS.workflow(name="tenant_job")
    def job(tag: str) -> str:
        order.append(tag)
        GATE.wait(10)
        return tag

    q = Queue("fair", partition_queue=True, global_concurrency=1)
    _launch(config)
    hot = [_enqueue(q, job, "hot", f"hot{i}") for i in range(20)]
    wait_until(lambda: order, what="the first hot job started")
    cold = _enqueue(q, job, "cold", "cold0")
    GATE.set()
    assert cold.get_result(timeout=20) == "cold0"
    assert [h.get_result(timeout=20) for h in hot] == [f"hot{i}" for i in range(20)]
    # global_concurrency=1 serializes them; the cold partition's only job goes right after the
    # hot job that was running, not behind the other nineteen.
    assert order[:2] == ["hot0", "cold0"], order


def test_global_and_partition_limits_hold_together(config: dict[str, Any], launched: None) -> None:
    lock = threading.Lock()
    running: dict[str, int] = {}
    peaks = {"total": 0, "partition": 0}

    @DBOS.workflow(name="limited_job")
    def job(key: str) -> str:
        with lock:
            running[key] = running.get(key, 0) + 1
            peaks["total"] = max(peaks["total"], sum(running.values()))
            peaks["partition"] = max(peaks["partition"], running[key])
        GATE.wait(0.05)
        with lock:
            running[key] -= 1
        return key

    q = Queue("both", partition_queue=True, global_concurrency=3, partition_concurrency=2)
    _launch(config)
    handles = [_enqueue(q, job, f"p{i % 4}", f"p{i % 4}") for i in range(24)]
    assert sorted(h.get_result(timeout=30) for h in handles) == sorted(f"p{i % 4}" for i in range(24))
    assert peaks["total"] <= 3 and peaks["partition"] <= 2, peaks


def test_partition_limits_are_stored_and_changed_live(config: dict[str, Any], launched: None) -> None:
    _launch(config)
    q = DBOS.register_queue(
        "stored",
        partition_queue=True,
        global_concurrency=4,
        partition_concurrency=2,
        partition_worker_concurrency=1,
        partition_limiter={"limit": 5, "period": 2.0},
    )
    got = DBOS.retrieve_queue("stored")
    assert got is not None and got.global_concurrency == 4 and got.partition_concurrency == 2
    assert got.concurrency == 2 and got.partition_worker_concurrency == 1
    assert got.partition_limiter == {"limit": 5, "period": 2.0}
    q.set_global_concurrency(6)
    q.set_partition_concurrency(3)
    again = DBOS.retrieve_queue("stored")
    assert again is not None and again.global_concurrency == 6 and again.concurrency == 3
    with pytest.raises(ConfigError, match="global_concurrency needs partition_queue=True"):
        q.set_partition_queue(False)
    with DBOSClient(config["system_database_url"]) as client:
        seen = client.retrieve_queue("stored")
        assert seen is not None and seen.global_concurrency == 6
        client.register_queue("stored", partition_queue=True, global_concurrency=1, on_conflict="always_update")
    final = DBOS.retrieve_queue("stored")
    assert final is not None and final.global_concurrency == 1 and final.concurrency is None


def test_bad_partition_limits_are_refused_naming_the_fix(launched: None) -> None:
    with pytest.raises(ConfigError, match="global_concurrency needs partition_queue=True"):
        Queue("plain-global", global_concurrency=2)
    with pytest.raises(ConfigError, match="partition_concurrency needs partition_queue=True"):
        Queue("plain-part", partition_concurrency=2)
    with pytest.raises(ConfigError, match="both concurrency and partition_concurrency"):
        Queue("clash", partition_queue=True, concurrency=1, partition_concurrency=2)
    with pytest.raises(ConfigError, match="global_concurrency"):
        Queue("zero", partition_queue=True, global_concurrency=0)
    with pytest.raises(ConfigError, match="limiter"):
        Queue("bad-limiter", partition_queue=True, partition_limiter={"limit": 1})


def _intervals(path: Path) -> list[tuple[str, int, int]]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        kind, i, _pid, ns = line.split()
        rows.append((kind, int(i), int(ns)))
    return rows


def test_two_processes_obey_global_and_partition_limits(
    db_url: str, tmp_path: Path, procs: list[subprocess.Popen[str]]
) -> None:
    limits = {"partition_queue": True, "global_concurrency": 2, "partition_concurrency": 1}
    for _ in range(2):
        proc = spawn(APP, db_url, str(tmp_path), json.dumps(limits))
        procs.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("READY"), line
    items = 12
    part = {i: f"p{i % 3}" for i in range(items)}
    with DBOSClient(db_url) as client:
        handles = [
            client.enqueue({"workflow_name": "interval", "queue_name": "reg", "queue_partition_key": part[i]}, i, 0.05)
            for i in range(items)
        ]
        assert sorted(h.get_result(timeout=60) for h in handles) == list(range(items))
    events = sorted((ns, 0 if kind == "end" else 1, i) for kind, i, ns in _intervals(tmp_path / "intervals.txt"))
    assert sum(1 for _, start, _ in events if start) == items  # each ran once
    total, per = 0, dict.fromkeys(part.values(), 0)
    for _, start, i in events:  # ends sort before starts at the same instant
        step = 1 if start else -1
        total, per[part[i]] = total + step, per[part[i]] + step
        assert total <= 2 and per[part[i]] <= 1, f"limits exceeded at item {i}: total {total}, {per}"
