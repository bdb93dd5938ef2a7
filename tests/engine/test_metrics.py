"""Metrics: /metrics text parsed with prometheus_client's parser; the gauges equal the database's
counts (read through list_workflows, another path), the histograms count this process's runs."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import wait_until
from transact import DBOS, Queue
from transact.engine import metrics
from transact.engine.metrics import METRICS_CONTENT_TYPE, render_metrics


def _samples(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text.decode()):
        for s in family.samples:
            found[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return found


@pytest.fixture
def launched(config: dict[str, Any]) -> Iterator[type[DBOS]]:
    DBOS.destroy(destroy_registry=True)
    metrics.disable()
    DBOS(config={**config, "queue_poll_seconds": 30})
    yield DBOS
    DBOS.destroy(destroy_registry=True)
    metrics.disable()


def test_gauges_equal_the_database_and_histograms_count_runs(launched: type[DBOS]) -> None:
    gate = threading.Event()
    queue = Queue("metered", concurrency=1)

    @DBOS.step()
    def double(x: int) -> int:
        return x * 2

    @DBOS.workflow()
    def work(x: int) -> int:
        return double(x) + double(x)

    @DBOS.workflow()
    def fail() -> None:
        raise ValueError("no")

    @DBOS.workflow()
    def blocked() -> None:
        gate.wait(20)

    DBOS.launch()
    metrics.enable()
    for i in range(3):
        work(i)
    with pytest.raises(ValueError):
        fail()
    running = queue.enqueue(blocked)
    waiting = queue.enqueue(blocked)
    wait_until(lambda: DBOS.get_workflow_status(running.workflow_id).status == "PENDING")  # type: ignore[union-attr]
    try:
        got = _samples(render_metrics(DBOS._rt().store))
        expected: dict[tuple[str, str], int] = {}
        for status in DBOS.list_workflows():
            key = (status.status, status.name)
            expected[key] = expected.get(key, 0) + 1
        gauges = {
            (dict(labels)["status"], dict(labels)["name"]): v
            for (n, labels), v in got.items()
            if n == "transact_workflows"
        }
        assert gauges == expected
        assert expected[("SUCCESS", "test_gauges_equal_the_database_and_histograms_count_runs.<locals>.work")] == 3
        assert got[("transact_queue_depth", (("queue", "metered"), ("state", "enqueued")))] == 1
        assert got[("transact_queue_depth", (("queue", "metered"), ("state", "running")))] == 1
        assert got[("transact_queue_oldest_enqueued_age_seconds", (("queue", "metered"),))] >= 0
        assert got[("transact_executors", (("state", "alive"),))] == 1
        assert got[("transact_executors", (("state", "dead"),))] == 0
        name = "test_gauges_equal_the_database_and_histograms_count_runs.<locals>.double"
        assert got[("transact_step_duration_seconds_count", (("name", name),))] == 6
        assert got[("transact_step_duration_seconds_bucket", (("le", "+Inf"), ("name", name)))] == 6
        wf_name = "test_gauges_equal_the_database_and_histograms_count_runs.<locals>.work"
        assert got[("transact_workflow_duration_seconds_count", (("name", wf_name),))] == 3
        assert METRICS_CONTENT_TYPE.startswith("text/plain")
    finally:
        gate.set()
    running.get_result()
    waiting.get_result()
    got = _samples(render_metrics(DBOS._rt().store))
    assert got[("transact_queue_depth", (("queue", "metered"), ("state", "enqueued")))] == 0
    assert got[("transact_queue_depth", (("queue", "metered"), ("state", "running")))] == 0


def test_histograms_stay_off_until_enabled(dbos: type[DBOS]) -> None:
    metrics.disable()

    @DBOS.step()
    def one() -> int:
        return 1

    @DBOS.workflow()
    def flow() -> int:
        return one()

    flow()
    assert metrics.steps is None and metrics.workflows is None
    text = render_metrics(DBOS._rt().store)  # the first scrape turns them on
    assert b"transact_step_duration_seconds_count" not in text
    flow()
    got = _samples(render_metrics(DBOS._rt().store))
    assert got[("transact_step_duration_seconds_count", (("name", one.__qualname__),))] == 1
    metrics.disable()


def test_buckets_are_cumulative() -> None:
    hist = metrics.Histogram()
    for ms in (0, 1, 2, 7_000, 10**9):
        hist.observe("x", ms)
    ((name, buckets, total),) = list(hist.samples())
    assert name == "x" and total == pytest.approx((3 + 7_000 + 10**9) / 1000)
    as_dict = dict(buckets)
    assert as_dict["0.001"] == 2 and as_dict["0.005"] == 3 and as_dict["10.0"] == 4 and as_dict["+Inf"] == 5
