"""Queue declaration; ``enqueue`` / ``enqueue_async``. Declare queues at import time, before or
after ``DBOS()`` and ``launch()``; the dispatcher (engine/dispatcher.py) serves every declared queue.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypedDict, TypeVar, overload

from transact._dbos import resolve
from transact._facade._base import FacadeBase
from transact._handles import WorkflowHandle, WorkflowHandleAsync
from transact._lib import checks
from transact._lib.states import Hint
from transact._options import check_enqueue_options, current_enqueue_options
from transact.engine import workflow as wf
from transact.engine.dispatcher import QueueConfig
from transact.engine.registry import REGISTRY
from transact.engine.starts import QueueSpec
from transact.errors import ConfigError

P = ParamSpec("P")
R = TypeVar("R")


class QueueRateLimit(TypedDict):
    limit: int
    period: float


class Queue:
    """A durable work queue. ``concurrency`` is global across every process sharing the system
    database, ``worker_concurrency`` per process, ``limiter`` a global rate limit (at most
    ``limit`` starts per ``period`` seconds). Limits apply per partition key when
    ``partition_queue`` is set."""

    def __init__(
        self,
        name: str,
        concurrency: int | None = None,
        limiter: QueueRateLimit | dict[str, Any] | None = None,
        *,
        worker_concurrency: int | None = None,
        priority_enabled: bool = False,
        partition_queue: bool = False,
        polling_interval_sec: float | None = None,
    ) -> None:
        self.config = _validate(
            name, concurrency, limiter, worker_concurrency, priority_enabled, partition_queue, polling_interval_sec
        )
        self.name = name
        self.concurrency = concurrency
        self.worker_concurrency = worker_concurrency
        self.limiter: QueueRateLimit | None = (
            QueueRateLimit(limit=int(limiter["limit"]), period=float(limiter["period"])) if limiter else None
        )
        self.priority_enabled = priority_enabled
        self.partition_queue = partition_queue
        self.polling_interval_sec = polling_interval_sec
        with REGISTRY.lock:
            existing = REGISTRY.queues.get(name)
            if existing is not None and existing.config != self.config:
                raise ConfigError(
                    f"queue {name!r} is already declared with different settings ({_describe(existing.config)}); "
                    f"this declaration has ({_describe(self.config)}). Declare each queue once, or give it "
                    "another name"
                )
            REGISTRY.queues[name] = self
        rt = FacadeBase._rt_or_none()
        if rt is not None and rt.launched:
            rt.store.hint(Hint.QUEUE, name, "")  # declared after launch: serve work already waiting

    def __repr__(self) -> str:
        return f"Queue({_describe(self.config)})"

    # -- enqueue ------------------------------------------------------------------------------
    @overload
    def enqueue(
        self, func: Callable[P, Coroutine[Any, Any, R]], *args: P.args, **kwargs: P.kwargs
    ) -> WorkflowHandle[R]: ...

    @overload
    def enqueue(self, func: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> WorkflowHandle[R]: ...

    def enqueue(self, func: Callable[P, Any], *args: P.args, **kwargs: P.kwargs) -> WorkflowHandle[Any]:
        """Durably enqueue a workflow; a worker of this queue runs it. Returns its handle."""
        rt = FacadeBase._rt()
        info, call_args = resolve(func, args)
        return WorkflowHandle(rt, wf.start(rt, info, call_args, kwargs, queue=self._spec()))

    @overload
    async def enqueue_async(
        self, func: Callable[P, Coroutine[Any, Any, R]], *args: P.args, **kwargs: P.kwargs
    ) -> WorkflowHandleAsync[R]: ...

    @overload
    async def enqueue_async(
        self, func: Callable[P, R], *args: P.args, **kwargs: P.kwargs
    ) -> WorkflowHandleAsync[R]: ...

    async def enqueue_async(
        self, func: Callable[P, Any], *args: P.args, **kwargs: P.kwargs
    ) -> WorkflowHandleAsync[Any]:
        """``enqueue`` for async code: the insert runs off the event loop."""
        rt = FacadeBase._rt()
        info, call_args = resolve(func, args)
        return WorkflowHandleAsync(rt, await wf.start_async(rt, info, call_args, kwargs, queue=self._spec()))

    def _spec(self) -> QueueSpec:
        """The enqueue options of the enclosing ``SetEnqueueOptions``, checked against this queue."""
        opts = current_enqueue_options()
        if opts is None:
            if self.partition_queue:
                raise ConfigError(
                    f"queue {self.name!r} is partitioned: enqueue inside "
                    "`with SetEnqueueOptions(queue_partition_key=...)`"
                )
            return QueueSpec(self.name)
        if opts.priority is not None and not self.priority_enabled:
            raise ConfigError(
                f"queue {self.name!r} does not have priorities: declare it with "
                f"Queue({self.name!r}, priority_enabled=True) to use SetEnqueueOptions(priority=...)"
            )
        key = opts.queue_partition_key
        check_enqueue_options("SetEnqueueOptions", deduplication_id=opts.deduplication_id, queue_partition_key=key)
        if self.partition_queue and key is None:
            raise ConfigError(
                f"queue {self.name!r} is partitioned: set SetEnqueueOptions(queue_partition_key=...) to enqueue on it"
            )
        if not self.partition_queue and key is not None:
            raise ConfigError(
                f"queue {self.name!r} is not partitioned, so queue_partition_key={key!r} cannot apply; declare it "
                f"with Queue({self.name!r}, partition_queue=True) or drop the key"
            )
        return QueueSpec(
            queue_name=self.name,
            deduplication_id=opts.deduplication_id,
            priority=opts.priority or 0,
            partition_key=key,
            delay_seconds=opts.delay_seconds,
            app_version=opts.app_version,
        )


def _validate(
    name: object,
    concurrency: object,
    limiter: object,
    worker_concurrency: object,
    priority_enabled: object,
    partition_queue: object,
    polling_interval_sec: object,
) -> QueueConfig:
    # '|' separates the fields of wake-up notifications ("queue|<name>|").
    if not isinstance(name, str) or not name or "|" in name:
        raise checks.fail("a queue name", "a non-empty string without '|'", name)
    where = f"Queue({name!r})"
    conc = checks.optional_count(concurrency, f"{where} concurrency", minimum=1)
    worker = checks.optional_count(worker_concurrency, f"{where} worker_concurrency", minimum=1)
    if conc is not None and worker is not None and worker > conc:
        raise ConfigError(
            f"{where} worker_concurrency ({worker}) cannot exceed concurrency ({conc}): no process "
            "may run more than the global limit; lower worker_concurrency or raise concurrency"
        )
    limit = period = None
    if limiter is not None:
        if not isinstance(limiter, dict) or set(limiter) != {"limit", "period"}:
            shape = "a dict like {'limit': 10, 'period': 1.0} (at most 'limit' starts per 'period' seconds)"
            raise checks.fail(f"{where} limiter", shape, limiter)
        limit = checks.count(limiter["limit"], f"{where} limiter 'limit'", minimum=1)
        period = checks.seconds(limiter["period"], f"{where} limiter 'period'", positive=True)
    poll = polling_interval_sec
    return QueueConfig(
        name=name,
        concurrency=conc,
        worker_concurrency=worker,
        rate_limit=limit,
        rate_period_s=period,
        priority_enabled=checks.flag(priority_enabled, f"{where} priority_enabled"),
        partitioned=checks.flag(partition_queue, f"{where} partition_queue"),
        poll_seconds=None if poll is None else checks.seconds(poll, f"{where} polling_interval_sec", positive=True),
    )


def _describe(config: QueueConfig) -> str:
    parts = [repr(config.name)]
    if config.concurrency is not None:
        parts.append(f"concurrency={config.concurrency}")
    if config.worker_concurrency is not None:
        parts.append(f"worker_concurrency={config.worker_concurrency}")
    if config.rate_limit is not None:
        parts.append(f"limiter={{'limit': {config.rate_limit}, 'period': {config.rate_period_s}}}")
    if config.priority_enabled:
        parts.append("priority_enabled=True")
    if config.partitioned:
        parts.append("partition_queue=True")
    if config.poll_seconds is not None:
        parts.append(f"polling_interval_sec={config.poll_seconds}")
    return ", ".join(parts)
