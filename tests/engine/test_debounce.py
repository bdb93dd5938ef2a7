"""Debouncing (engine/debounce.py, _facade/debounce.py): one run per window with the latest
arguments, the maximum wait, keys, queues, async, client and in-workflow calls, on both databases."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from tests.conftest import wait_until
from transact import (
    DBOS,
    ConfigError,
    DBOSClient,
    Debouncer,
    DebouncerClient,
    Queue,
    SetEnqueueOptions,
    SetWorkflowID,
)
from transact.engine.debounce import INTERNAL_QUEUE, STEP


class Runs:
    """What the target workflow saw: (argument, wall time at start) per run."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seen: list[tuple[Any, float]] = []

    def add(self, value: Any) -> None:
        with self.lock:
            self.seen.append((value, time.time()))

    def values(self) -> list[Any]:
        with self.lock:
            return [v for v, _ in self.seen]


def target(runs: Runs, name: str = "debounced") -> Any:
    @DBOS.workflow(name=name)
    def debounced(value: Any, extra: str = "") -> Any:
        runs.add((value, extra) if extra else value)
        return value

    return debounced


def test_a_thousand_calls_make_one_run_with_the_last_arguments(dbos: type[DBOS]) -> None:
    runs = Runs()
    debouncer = Debouncer.create(target(runs))
    period = 1.0
    started = time.time()
    handles = [debouncer.debounce("user-1", period, i) for i in range(1000)]
    last_call = time.time()
    assert last_call - started < 10
    assert {h.workflow_id for h in handles} == {handles[0].workflow_id}
    assert handles[-1].get_result(timeout=30) == 999
    finished = time.time()
    assert runs.values() == [999]
    (_, ran_at) = runs.seen[0]
    assert ran_at >= last_call + period - 0.05  # the last call pushed the start back
    assert finished - last_call < period + 2.0  # and the run started promptly once the window closed
    status = handles[0].get_status()
    assert status.status == "SUCCESS" and status.queue_name == INTERNAL_QUEUE
    # a call after the run started opens the next window
    again = debouncer.debounce("user-1", 0.1, 1000)
    assert again.workflow_id != handles[0].workflow_id
    assert again.get_result(timeout=30) == 1000
    assert runs.values() == [999, 1000]


def test_the_maximum_wait_starts_the_run_while_calls_keep_coming(dbos: type[DBOS]) -> None:
    runs = Runs()
    debouncer = Debouncer.create(target(runs), debounce_timeout_sec=1.0)
    first = time.time()
    ids: dict[str, int] = {}
    i = 0
    while time.time() - first < 2.6:  # a call every 50 ms: the 0.5 s period alone never closes a window
        ids[debouncer.debounce("k", 0.5, i).workflow_id] = i
        i += 1
        time.sleep(0.05)
    stopped = time.time()
    assert len(ids) >= 2, "the maximum wait should have closed at least one window"
    for wid, last in ids.items():
        assert DBOS.retrieve_workflow(wid).get_result(timeout=30) == last  # each run: its window's last call
    assert sorted(runs.values()) == sorted(ids.values())
    first_run = min(at for _, at in runs.seen)
    assert first_run < stopped  # started while calls were still coming
    assert first_run - first < 1.0 + 1.5  # about the maximum wait after the window's first call


def test_separate_keys_debounce_separately(dbos: type[DBOS]) -> None:
    runs = Runs()
    debouncer = Debouncer.create(target(runs))
    a = [debouncer.debounce("a", 0.3, f"a{i}") for i in range(5)]
    b = [debouncer.debounce("b", 0.3, f"b{i}") for i in range(3)]
    assert a[0].workflow_id != b[0].workflow_id
    assert a[-1].get_result(timeout=30) == "a4" and b[-1].get_result(timeout=30) == "b2"
    assert sorted(runs.values()) == ["a4", "b2"]


def test_keyword_arguments_and_workflow_id_of_the_window(dbos: type[DBOS]) -> None:
    runs = Runs()
    debouncer = Debouncer.create(target(runs))
    with SetWorkflowID("window-1"):
        first = debouncer.debounce("k", 0.3, 1, extra="x")
    with SetWorkflowID("ignored: the window is open"):
        second = debouncer.debounce("k", 0.3, 2, extra="y")
    assert first.workflow_id == second.workflow_id == "window-1"
    assert second.get_result(timeout=30) == 2
    assert runs.values() == [(2, "y")]


def test_concurrent_callers_share_one_window(dbos: type[DBOS]) -> None:
    runs = Runs()
    debouncer = Debouncer.create(target(runs))
    barrier = threading.Barrier(8)
    ids: list[str] = []

    def call(n: int) -> None:
        barrier.wait()
        for i in range(20):
            ids.append(debouncer.debounce("shared", 1.0, n * 100 + i).workflow_id)

    threads = [threading.Thread(target=call, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(ids) == 160 and len(set(ids)) == 1
    DBOS.retrieve_workflow(ids[0]).get_result(timeout=30)
    assert len(runs.values()) == 1


def test_debouncing_onto_a_queue(dbos: type[DBOS]) -> None:
    runs = Runs()
    queue = Queue("debounce-q", concurrency=1)
    debouncer = Debouncer.create(target(runs), queue=queue)
    handles = [debouncer.debounce("k", 0.2, i) for i in range(10)]
    assert handles[0].get_status().status == "DELAYED"
    assert handles[-1].get_result(timeout=30) == 9
    assert handles[-1].get_status().queue_name == "debounce-q"
    assert runs.values() == [9]


def test_async_form(dbos: type[DBOS]) -> None:
    runs = Runs()

    @DBOS.workflow(name="debounced-async")
    async def debounced(value: int) -> int:
        runs.add(value)
        return value * 2

    debouncer = Debouncer.create_async(debounced)

    async def main() -> int:
        handles = [await debouncer.debounce_async("k", 0.3, i) for i in range(20)]
        assert len({h.workflow_id for h in handles}) == 1
        result: int = await handles[-1].get_result(timeout=30)
        return result

    assert asyncio.run(main()) == 38
    assert runs.values() == [19]


def test_a_call_inside_a_workflow_is_recorded_once(dbos: type[DBOS]) -> None:
    runs = Runs()
    debouncer = Debouncer.create(target(runs))

    @DBOS.workflow(name="caller")
    def caller(n: int) -> str:
        return debouncer.debounce("from-workflow", 0.2, n).workflow_id

    wid = caller(7)
    assert DBOS.retrieve_workflow(wid).get_result(timeout=30) == 7
    with SetWorkflowID("caller-1"):
        caller(8)
    steps = DBOS.list_workflow_steps("caller-1")
    assert [s["function_name"] for s in steps] == [STEP]
    assert runs.values() == [7, 8] or wait_until(lambda: runs.values() == [7, 8], what="second run")


def test_client_form(dbos: type[DBOS], db_url: str) -> None:
    runs = Runs()
    target(runs, name="client-target")
    Debouncer.create(target(Runs(), name="unused"))  # any debouncer declares the internal queue
    with DBOSClient(db_url) as client:
        debouncer = DebouncerClient(client, {"workflow_name": "client-target"}, debounce_timeout_sec=30)
        handles = [debouncer.debounce("k", 0.3, i) for i in range(10)]
        assert len({h.workflow_id for h in handles}) == 1
        assert handles[-1].get_result(timeout=30) == 9

        async def more() -> Any:
            h = await debouncer.debounce_async("k2", 0.2, "async")
            return await h.get_result(timeout=30)

        assert asyncio.run(more()) == "async"
        queued = DebouncerClient(client, {"workflow_name": "client-target", "queue_name": "client-q"})
        Queue("client-q")
        h = queued.debounce("k", 0.2, "queued")
        assert h.get_result(timeout=30) == "queued" and h.get_status().queue_name == "client-q"
    assert sorted(map(str, runs.values())) == ["9", "async", "queued"]


def test_bad_input_names_the_argument(dbos: type[DBOS], db_url: str) -> None:
    debouncer = Debouncer.create(target(Runs()))
    for key in ("", None, 3):
        with pytest.raises(ConfigError, match="debounce_key"):
            debouncer.debounce(key, 1.0, 1)  # type: ignore[arg-type]
    for period in (-1, "1", float("nan")):
        with pytest.raises(ConfigError, match="debounce_period_sec"):
            debouncer.debounce("k", period, 1)  # type: ignore[arg-type]
    for timeout in (0, -1, "5"):
        with pytest.raises(ConfigError, match="debounce_timeout_sec"):
            Debouncer.create(target(Runs(), name="other"), debounce_timeout_sec=timeout)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"decorated with @DBOS\.workflow"):
        Debouncer.create(print)
    queued = Debouncer.create(target(Runs(), name="queued"), queue=Queue("bad-q"))
    with SetEnqueueOptions(deduplication_id="d"), pytest.raises(ConfigError, match="deduplication_id"):
        queued.debounce("k", 1.0, 1)
    with DBOSClient(db_url) as client:
        with pytest.raises(ConfigError, match="workflow_name"):
            DebouncerClient(client, {"queue_name": "q"})
        with pytest.raises(ConfigError, match="delay_seconds"):
            DebouncerClient(client, {"workflow_name": "x", "delay_seconds": 1}).debounce("k", 1.0)
        with pytest.raises(ConfigError, match="debounce_key"):
            DebouncerClient(client, {"workflow_name": "x"}).debounce("", 1.0)
    assert DBOS.list_workflows() == []  # nothing was written
