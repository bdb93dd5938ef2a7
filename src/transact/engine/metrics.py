"""Prometheus metrics: gauges read from the system database at scrape time, so every process
reports the same numbers, and this process's histograms of workflow and step durations.

Gauges: ``transact_workflows{status,name}``, ``transact_queue_depth{queue,state}`` (state
``enqueued`` | ``running``), ``transact_executors{state}`` (``alive`` | ``dead``) and
``transact_queue_oldest_enqueued_age_seconds{queue}``. Histograms (per process):
``transact_workflow_duration_seconds{name}`` and ``transact_step_duration_seconds{name}``.

The histograms cost nothing until something serves metrics: the engine's hooks test one module
attribute (``steps`` / ``workflows``, None while off). ``enable()`` (the worker command, or the
first ``render_metrics``) turns them on; from then on an observation is a bisect and two integer
additions on a per-name list, with no lock (CPython runs each ``+=`` on a list item without a
thread switch in between). prometheus_client is imported only when metrics are rendered.
Must not import the facade.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from transact.engine.clock import now_ms

if TYPE_CHECKING:
    from transact.engine.context import WorkflowContext
    from transact.storage import Store
    from transact.storage.rows import StepRow
    from transact.storage.stats import QueueDepth

METRICS_CONTENT_TYPE: str = "text/plain; version=0.0.4; charset=utf-8"
"""The Content-Type of ``render_metrics`` output (Prometheus text exposition format)."""

DEFAULT_LEASE_SECONDS = 30.0  # an executor not seen for this long counts as dead (config lease_seconds)

# Upper bounds in ms (observations are whole ms, as the rows record them); +Inf is the last slot.
BOUNDS_MS: tuple[int, ...] = (
    1,
    5,
    10,
    25,
    50,
    100,
    250,
    500,
    1000,
    2500,
    5000,
    10_000,
    30_000,
    60_000,
    300_000,
    3_600_000,
)


class Histogram:
    """Durations per name: ``series[name]`` is [bucket counts..., +Inf count, sum in ms]."""

    __slots__ = ("series",)

    def __init__(self) -> None:
        self.series: dict[str, list[int]] = {}

    def observe(self, name: str, ms: int) -> None:
        counts = self.series.get(name)
        if counts is None:
            counts = self.series.setdefault(name, [0] * (len(BOUNDS_MS) + 2))
        counts[bisect.bisect_left(BOUNDS_MS, ms)] += 1
        counts[-1] += ms

    def samples(self) -> Iterator[tuple[str, list[tuple[str, float]], float]]:
        """(name, cumulative buckets as (le, count), sum in seconds) per name, sorted by name."""
        for name, counts in sorted(self.series.items()):
            snapshot = list(counts)
            running = 0
            buckets: list[tuple[str, float]] = []
            for bound, n in zip(_LE, snapshot[:-1], strict=True):
                running += n
                buckets.append((bound, float(running)))
            yield name, buckets, snapshot[-1] / 1000.0


_LE = (*(repr(b / 1000.0) for b in BOUNDS_MS), "+Inf")  # the buckets' ``le`` labels, in seconds


# The engine's hooks read these; None while metrics are off.
steps: Histogram | None = None
workflows: Histogram | None = None


def enable() -> None:
    """Start observing durations in this process (idempotent)."""
    global steps, workflows
    if steps is None:
        steps = Histogram()
    if workflows is None:
        workflows = Histogram()


def disable() -> None:
    """Stop observing and forget what was observed."""
    global steps, workflows
    steps = workflows = None


def step_recorded(row: StepRow) -> None:
    """Hook: a step's checkpoint was written (called only while ``steps`` is set)."""
    hist = steps
    if hist is not None and row.started_at is not None and row.completed_at is not None:
        hist.observe(row.function_name, row.completed_at - row.started_at)


def workflow_finished(ctx: WorkflowContext, now: int) -> None:
    """Hook: a workflow run wrote its outcome (called only while ``workflows`` is set)."""
    hist, row = workflows, ctx.row
    if hist is not None and row is not None:
        hist.observe(ctx.name, now - (row.started_at or row.created_at))


# -- counts from the database -------------------------------------------------------------------
@dataclass(frozen=True)
class Stats:
    """One reading of the system database's counts (``transact stats`` and the gauges)."""

    workflows: list[tuple[str, str, int]]  # (status, name, count)
    queues: list[QueueDepth]
    executors_alive: int
    executors_dead: int
    now: int  # epoch ms of the reading

    def oldest_age_s(self, queue: QueueDepth) -> float:
        return max(0, self.now - queue.oldest_enqueued_at) / 1000.0 if queue.oldest_enqueued_at is not None else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "workflows": [{"status": s, "name": n, "count": c} for s, n, c in self.workflows],
            "queues": [
                {
                    "queue": q.queue_name,
                    "enqueued": q.enqueued,
                    "running": q.running,
                    "oldest_enqueued_age_seconds": self.oldest_age_s(q),
                }
                for q in self.queues
            ],
            "executors": {"alive": self.executors_alive, "dead": self.executors_dead},
        }


def read_stats(store: Store, *, lease_seconds: float = DEFAULT_LEASE_SECONDS) -> Stats:
    """Counts by status and name, queue depths (every registered queue, zeros included) and
    executors alive or dead (dead: stopped, or no heartbeat within ``lease_seconds``). Round trips: 4."""
    from transact.storage.stats import QueueDepth

    now = now_ms()
    counts = sorted(store.stats_workflow_counts())
    depths = {q.queue_name: q for q in store.stats_queue_depths()}
    for registered in store.queue_list():
        depths.setdefault(registered.queue_name, QueueDepth(registered.queue_name, 0, 0, None))
    alive = dead = 0
    for ex in store.executor_list():
        if ex.state == "RUNNING" and ex.last_seen_at >= now - lease_seconds * 1000:
            alive += 1
        else:
            dead += 1
    return Stats(counts, [depths[name] for name in sorted(depths)], alive, dead, now)


# -- exposition ---------------------------------------------------------------------------------
class _Collector:
    """A prometheus_client custom collector: reads the store on every scrape."""

    def __init__(self, store: Store, lease_seconds: float) -> None:
        self._store = store
        self._lease_s = lease_seconds

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily

        stats = read_stats(self._store, lease_seconds=self._lease_s)
        wf = GaugeMetricFamily("transact_workflows", "Workflows by status and name.", labels=["status", "name"])
        for status, name, n in stats.workflows:
            wf.add_metric([status, name], n)
        yield wf
        depth = GaugeMetricFamily(
            "transact_queue_depth", "Queued workflows waiting (enqueued) or running.", labels=["queue", "state"]
        )
        age = GaugeMetricFamily(
            "transact_queue_oldest_enqueued_age_seconds",
            "Seconds since the oldest waiting workflow of the queue was enqueued (0 when none waits).",
            labels=["queue"],
        )
        for q in stats.queues:
            depth.add_metric([q.queue_name, "enqueued"], q.enqueued)
            depth.add_metric([q.queue_name, "running"], q.running)
            age.add_metric([q.queue_name], stats.oldest_age_s(q))
        yield depth
        yield age
        ex = GaugeMetricFamily("transact_executors", "Executors (processes) alive or dead.", labels=["state"])
        ex.add_metric(["alive"], stats.executors_alive)
        ex.add_metric(["dead"], stats.executors_dead)
        yield ex
        for metric, what, hist in (
            ("transact_workflow_duration_seconds", "Workflow run durations in this process.", workflows),
            ("transact_step_duration_seconds", "Step durations in this process.", steps),
        ):
            family = HistogramMetricFamily(metric, what, labels=["name"])
            if hist is not None:
                for name, buckets, total in hist.samples():
                    family.add_metric([name], buckets, sum_value=total)
            yield family


def render_metrics(store: Store, *, lease_seconds: float = DEFAULT_LEASE_SECONDS) -> bytes:
    """The Prometheus text exposition of every metric (content type ``METRICS_CONTENT_TYPE``).
    The first call also turns this process's duration histograms on."""
    from prometheus_client import CollectorRegistry, generate_latest

    enable()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(store, lease_seconds))
    return generate_latest(registry)
