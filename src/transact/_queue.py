"""Queues: ``Queue(...)`` declarations (2.x) and the registry objects ``DBOS.register_queue`` /
``retrieve_queue`` return (3.x); ``enqueue`` / ``enqueue_async``.

Both fronts write the same registry (engine/queues.py, table ``queues``): a ``Queue(...)``
declared before launch joins it at launch, one declared after at once, each under the
``update_if_latest_version`` rule. The dispatcher (engine/dispatcher.py) serves the queues declared
or registered in this process, with the limits the registry holds. Reading a limit property reads
the registry (the latest value, whoever set it); the setters change it for every process.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypedDict, TypeVar, overload

from transact._facade._base import FacadeBase
from transact._facade.targets import resolve
from transact._handles import WorkflowHandle, WorkflowHandleAsync
from transact._lib import checks
from transact._lib.states import Hint
from transact._options import EnqueueOptions, check_enqueue_options, current_enqueue_options
from transact.engine import queues as registry
from transact.engine import workflow as wf
from transact.engine.dispatcher import Dispatcher
from transact.engine.queues import QueueConfig, describe, validate
from transact.engine.registry import REGISTRY
from transact.engine.runtime import Runtime
from transact.engine.starts import QueueSpec
from transact.errors import ConfigError, QueueDeduplicatedError
from transact.storage import Store

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")

_DEDUP_ATTEMPTS = 3  # the holder of a deduplication id may finish between the clash and the look-up


class QueueRateLimit(TypedDict):
    limit: int
    period: float


class Queue:
    """A durable work queue. ``concurrency`` is global across every process sharing the system
    database, ``worker_concurrency`` per process, ``limiter`` a global rate limit (at most
    ``limit`` starts per ``period`` seconds). Limits apply per partition key when
    ``partition_queue`` is set (``partition_concurrency``, ``partition_worker_concurrency`` and
    ``partition_limiter`` are their explicit names there), and ``global_concurrency`` then caps
    the whole queue across partitions and processes; partitions are served round-robin. The limits live in the system database: change them with the
    ``set_*`` methods, from any process or client, and every dispatcher obeys the change."""

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
        global_concurrency: int | None = None,
        partition_concurrency: int | None = None,
        partition_worker_concurrency: int | None = None,
        partition_limiter: QueueRateLimit | dict[str, Any] | None = None,
    ) -> None:
        config = validate(
            name,
            concurrency,
            limiter,
            worker_concurrency,
            priority_enabled,
            partition_queue,
            polling_interval_sec,
            global_concurrency=global_concurrency,
            partition_concurrency=partition_concurrency,
            partition_worker_concurrency=partition_worker_concurrency,
            partition_limiter=partition_limiter,
        )
        self._setup(config, None)
        with REGISTRY.lock:
            existing = REGISTRY.queues.get(name)
            if existing is not None and existing.config != self.config:
                raise ConfigError(
                    f"queue {name!r} is already declared with different settings ({describe(existing.config)}); "
                    f"this declaration has ({describe(self.config)}). Declare each queue once, or give it "
                    "another name"
                )
            REGISTRY.queues[name] = self
        rt = FacadeBase._rt_or_none()
        if rt is not None and rt.launched:  # declared after launch: join the registry, serve waiting work
            _join(rt, name, self, config, self.on_conflict)

    def _setup(self, config: QueueConfig, store: Store | None, on_conflict: str = registry.DEFAULT_ON_CONFLICT) -> None:
        self.config = config  # as declared here; the registry's limits are the ones in force
        self.name = config.name
        self.on_conflict = on_conflict
        self._client_store = store

    @classmethod
    def _handle(cls, config: QueueConfig, store: Store | None) -> Queue:
        """A registry object (``retrieve_queue``, ``list_queues``, a client): not a declaration."""
        queue = cls.__new__(cls)
        queue._setup(config, store)
        return queue

    def __repr__(self) -> str:
        return f"Queue({describe(self.config)})"

    # -- the registry ---------------------------------------------------------------------------
    def _store(self) -> Store:
        if self._client_store is not None:
            return self._client_store
        return FacadeBase._rt().store

    def _stored(self) -> QueueConfig:
        """The limits in force: the registry's (one read) once launched, else as declared."""
        if self._client_store is None:
            rt = FacadeBase._rt_or_none()
            if rt is None or not rt.launched:
                return self.config
        return registry.get(self._store(), self.name) or self.config

    async def _aio(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if self._client_store is None:
            rt = FacadeBase._rt_or_none()
            if rt is not None and rt.launched:
                return await rt.aio(fn, *args, **kwargs)
        return await asyncio.to_thread(fn, *args, **kwargs)

    @property
    def concurrency(self) -> int | None:
        return self._stored().concurrency

    @property
    def worker_concurrency(self) -> int | None:
        return self._stored().worker_concurrency

    @property
    def limiter(self) -> QueueRateLimit | None:
        return _limiter(self._stored())

    @property
    def priority_enabled(self) -> bool:
        return self._stored().priority_enabled

    @property
    def partition_queue(self) -> bool:
        return self._stored().partitioned

    @property
    def polling_interval_sec(self) -> float | None:
        return self._stored().poll_seconds

    @property
    def global_concurrency(self) -> int | None:
        return self._stored().global_concurrency

    @property
    def partition_concurrency(self) -> int | None:
        stored = self._stored()
        return stored.concurrency if stored.partitioned else None

    @property
    def partition_worker_concurrency(self) -> int | None:
        stored = self._stored()
        return stored.worker_concurrency if stored.partitioned else None

    @property
    def partition_limiter(self) -> QueueRateLimit | None:
        stored = self._stored()
        return _limiter(stored) if stored.partitioned else None

    async def get_concurrency_async(self) -> int | None:
        return (await self._aio(self._stored)).concurrency

    async def get_worker_concurrency_async(self) -> int | None:
        return (await self._aio(self._stored)).worker_concurrency

    async def get_limiter_async(self) -> QueueRateLimit | None:
        return _limiter(await self._aio(self._stored))

    async def get_priority_enabled_async(self) -> bool:
        return (await self._aio(self._stored)).priority_enabled

    async def get_partition_queue_async(self) -> bool:
        return (await self._aio(self._stored)).partitioned

    async def get_polling_interval_sec_async(self) -> float | None:
        return (await self._aio(self._stored)).poll_seconds

    # -- live setters: every process's dispatcher obeys them before its next claim ---------------
    def _update(self, **changes: Any) -> None:
        registry.update(self._store(), self.name, **changes)

    def set_concurrency(self, concurrency: int | None) -> None:
        """Set (None: remove) the global concurrency limit."""
        self._update(concurrency=checks.optional_count(concurrency, f"Queue({self.name!r}) concurrency", minimum=1))

    def set_worker_concurrency(self, worker_concurrency: int | None) -> None:
        """Set (None: remove) the per-process concurrency limit."""
        what = f"Queue({self.name!r}) worker_concurrency"
        self._update(worker_concurrency=checks.optional_count(worker_concurrency, what, minimum=1))

    def set_limiter(self, limiter: QueueRateLimit | dict[str, Any] | None) -> None:
        """Set (None: remove) the rate limit, ``{'limit': n, 'period': seconds}``."""
        limit, period = registry.check_limiter(f"Queue({self.name!r})", limiter)
        self._update(rate_limit=limit, rate_period_s=period)

    def set_global_concurrency(self, global_concurrency: int | None) -> None:
        """Set (None: remove) a partitioned queue's cap across all its partitions."""
        what = f"Queue({self.name!r}) global_concurrency"
        self._update(global_concurrency=checks.optional_count(global_concurrency, what, minimum=1))

    def set_partition_concurrency(self, partition_concurrency: int | None) -> None:
        """A partitioned queue's per-partition limit across processes (its ``concurrency``)."""
        self._partitioned("set_partition_concurrency")
        self.set_concurrency(partition_concurrency)

    def set_partition_worker_concurrency(self, partition_worker_concurrency: int | None) -> None:
        """A partitioned queue's per-partition, per-process limit (its ``worker_concurrency``)."""
        self._partitioned("set_partition_worker_concurrency")
        self.set_worker_concurrency(partition_worker_concurrency)

    def set_partition_limiter(self, partition_limiter: QueueRateLimit | dict[str, Any] | None) -> None:
        """A partitioned queue's per-partition rate limit (its ``limiter``)."""
        self._partitioned("set_partition_limiter")
        self.set_limiter(partition_limiter)

    def _partitioned(self, what: str) -> None:
        if not self._stored().partitioned:
            raise ConfigError(f"Queue({self.name!r}).{what}: the queue is not partitioned (partition_queue=False)")

    async def set_global_concurrency_async(self, global_concurrency: int | None) -> None:
        await self._aio(self.set_global_concurrency, global_concurrency)

    async def set_partition_concurrency_async(self, partition_concurrency: int | None) -> None:
        await self._aio(self.set_partition_concurrency, partition_concurrency)

    async def set_partition_worker_concurrency_async(self, partition_worker_concurrency: int | None) -> None:
        await self._aio(self.set_partition_worker_concurrency, partition_worker_concurrency)

    async def set_partition_limiter_async(self, partition_limiter: QueueRateLimit | dict[str, Any] | None) -> None:
        await self._aio(self.set_partition_limiter, partition_limiter)

    def set_priority_enabled(self, priority_enabled: bool) -> None:
        self._update(priority_enabled=checks.flag(priority_enabled, f"Queue({self.name!r}) priority_enabled"))

    def set_partition_queue(self, partition_queue: bool) -> None:
        self._update(partitioned=checks.flag(partition_queue, f"Queue({self.name!r}) partition_queue"))

    def set_polling_interval_sec(self, polling_interval_sec: float | None) -> None:
        poll = polling_interval_sec
        what = f"Queue({self.name!r}) polling_interval_sec"
        self._update(poll_seconds=None if poll is None else checks.seconds(poll, what, positive=True))

    async def set_concurrency_async(self, concurrency: int | None) -> None:
        await self._aio(self.set_concurrency, concurrency)

    async def set_worker_concurrency_async(self, worker_concurrency: int | None) -> None:
        await self._aio(self.set_worker_concurrency, worker_concurrency)

    async def set_limiter_async(self, limiter: QueueRateLimit | dict[str, Any] | None) -> None:
        await self._aio(self.set_limiter, limiter)

    async def set_priority_enabled_async(self, priority_enabled: bool) -> None:
        await self._aio(self.set_priority_enabled, priority_enabled)

    async def set_partition_queue_async(self, partition_queue: bool) -> None:
        await self._aio(self.set_partition_queue, partition_queue)

    async def set_polling_interval_sec_async(self, polling_interval_sec: float | None) -> None:
        await self._aio(self.set_polling_interval_sec, polling_interval_sec)

    # -- enqueue ------------------------------------------------------------------------------
    @overload
    def enqueue(
        self, func: Callable[P, Coroutine[Any, Any, R]], *args: P.args, **kwargs: P.kwargs
    ) -> WorkflowHandle[R]: ...

    @overload
    def enqueue(self, func: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> WorkflowHandle[R]: ...

    def enqueue(self, func: Callable[P, Any], *args: P.args, **kwargs: P.kwargs) -> WorkflowHandle[Any]:
        """Durably enqueue a workflow; a worker of this queue runs it. Returns its handle."""
        rt = self._runtime()
        info, call_args = resolve(func, args)
        opts = current_enqueue_options()
        for _ in range(_DEDUP_ATTEMPTS):
            spec = self._spec(rt, opts)
            try:
                return WorkflowHandle(rt, wf.start(rt, info, call_args, kwargs, queue=spec))
            except QueueDeduplicatedError as exc:
                dedup = _returns_existing(opts, exc)
                owner = rt.store.queue_dedup_owner(queue_name=self.name, deduplication_id=dedup)
                if owner is not None:
                    return WorkflowHandle(rt, owner)
        raise _dedup_race(self.name, opts)

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
        rt = self._runtime()
        info, call_args = resolve(func, args)
        opts = current_enqueue_options()
        for _ in range(_DEDUP_ATTEMPTS):
            spec = self._spec(rt, opts)
            try:
                return WorkflowHandleAsync(rt, await wf.start_async(rt, info, call_args, kwargs, queue=spec))
            except QueueDeduplicatedError as exc:
                dedup = _returns_existing(opts, exc)
                owner = await rt.aio(rt.store.queue_dedup_owner, queue_name=self.name, deduplication_id=dedup)
                if owner is not None:
                    return WorkflowHandleAsync(rt, owner)
        raise _dedup_race(self.name, opts)

    def _runtime(self) -> Runtime:
        if self._client_store is not None:
            raise ConfigError(
                f"this Queue({self.name!r}) object came from a DBOSClient: enqueue with "
                f"client.enqueue({{'queue_name': {self.name!r}, 'workflow_name': ...}}, ...)"
            )
        return FacadeBase._rt()

    def _limits(self, rt: Runtime) -> QueueConfig:
        """The limits as this process's dispatcher last read them (no round trip), else as declared
        or, for a queue not declared here, as registered."""
        for service in rt.services:
            if isinstance(service, Dispatcher):
                cached = service.limits(self.name)
                if cached is not None:
                    return cached
        if self.name in REGISTRY.queues:
            return self.config
        return registry.get(rt.store, self.name) or self.config

    def _spec(self, rt: Runtime, opts: EnqueueOptions | None) -> QueueSpec:
        """The enqueue options of the enclosing ``SetEnqueueOptions``, checked against this queue."""
        limits = self._limits(rt)
        # Another application's queue is polled by that application only: its work belongs to it.
        owner = limits.owner if limits.owner != rt.settings.name else None
        if opts is None:
            if limits.partitioned:
                raise ConfigError(
                    f"queue {self.name!r} is partitioned: enqueue inside "
                    "`with SetEnqueueOptions(queue_partition_key=...)`"
                )
            return QueueSpec(self.name, application_name=owner)
        if opts.priority is not None and not limits.priority_enabled:
            raise ConfigError(
                f"queue {self.name!r} does not have priorities: declare it with "
                f"Queue({self.name!r}, priority_enabled=True) to use SetEnqueueOptions(priority=...)"
            )
        key = opts.queue_partition_key
        check_enqueue_options("SetEnqueueOptions", deduplication_id=opts.deduplication_id, queue_partition_key=key)
        if limits.partitioned and key is None:
            raise ConfigError(
                f"queue {self.name!r} is partitioned: set SetEnqueueOptions(queue_partition_key=...) to enqueue on it"
            )
        if not limits.partitioned and key is not None:
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
            application_name=opts.application_name or owner,
        )


def _limiter(config: QueueConfig) -> QueueRateLimit | None:
    if config.rate_limit is None or config.rate_period_s is None:
        return None
    return QueueRateLimit(limit=config.rate_limit, period=config.rate_period_s)


def _returns_existing(opts: EnqueueOptions | None, exc: QueueDeduplicatedError) -> str:
    """The deduplication id whose holder the enqueue returns instead (``duplication_policy=
    'return_existing'``); otherwise the clash is the caller's error. A holder that finishes before
    the look-up frees the id: the enqueue is tried again."""
    if opts is None or opts.duplication_policy != "return_existing" or opts.deduplication_id is None:
        raise exc
    return opts.deduplication_id


def _dedup_race(name: str, opts: EnqueueOptions | None) -> QueueDeduplicatedError:
    dedup = opts.deduplication_id if opts is not None else None
    return QueueDeduplicatedError("", name, dedup or "")


# -- the DBOS.* registry operations (transact._facade.queues delegates here) -------------------
def register(
    name: str,
    concurrency: int | None,
    limiter: QueueRateLimit | dict[str, Any] | None,
    worker_concurrency: int | None,
    priority_enabled: bool,
    partition_queue: bool,
    polling_interval_sec: float | None,
    on_conflict: str,
    **partition_limits: Any,
) -> Queue:
    """``DBOS.register_queue``: store the limits under ``on_conflict`` and serve the queue here.
    Before launch the queue is declared and joins the registry at launch. ``partition_limits``:
    ``global_concurrency`` and the ``partition_*`` limits (see ``validate``)."""
    config = validate(
        name,
        concurrency,
        limiter,
        worker_concurrency,
        priority_enabled,
        partition_queue,
        polling_interval_sec,
        **partition_limits,
    )
    rule = registry.check_on_conflict(on_conflict)
    with REGISTRY.lock:
        queue = REGISTRY.queues.get(name)
        if queue is None:
            queue = REGISTRY.queues[name] = Queue._handle(config, None)
        queue.config, queue.on_conflict = config, rule
    rt = FacadeBase._rt_or_none()
    if rt is not None and rt.launched:
        _join(rt, name, queue, config, rule)
    return queue


def _join(rt: Runtime, name: str, queue: Queue, config: QueueConfig, rule: str) -> None:
    """Register a queue declared after launch for this application and serve its waiting work;
    a name another application owns is refused, and the declaration is forgotten."""
    try:
        registry.register(
            rt.store, config, on_conflict=rule, app_version=rt.app_version, application_name=rt.settings.name
        )
    except ConfigError:
        with REGISTRY.lock:
            if REGISTRY.queues.get(name) is queue:
                del REGISTRY.queues[name]
        raise
    rt.store.hint(Hint.QUEUE, name, "")


def retrieve(name: str, store: Store | None = None) -> Queue | None:
    """The registered queue ``name`` (None if not registered)."""
    checks.text(name, "retrieve_queue name")
    config = registry.get(store or FacadeBase._rt().store, name)
    if config is None:
        return None
    if store is None:
        local = REGISTRY.queues.get(name)
        if local is not None:
            return local  # type: ignore[no-any-return]
    return Queue._handle(config, store)


def list_all(store: Store | None = None) -> list[Queue]:
    local = REGISTRY.queues if store is None else {}
    return [local.get(c.name) or Queue._handle(c, store) for c in registry.list_all(store or FacadeBase._rt().store)]


def delete(name: str, store: Store | None = None) -> bool:
    checks.text(name, "delete_queue name")
    return registry.delete(store or FacadeBase._rt().store, name)


def by_name(name: str) -> Queue:
    """The queue to enqueue on by name: declared here, or registered by any process."""
    local = REGISTRY.queues.get(name)
    if local is not None:
        return local  # type: ignore[no-any-return]
    found = retrieve(name)
    if found is None:
        raise ConfigError(f"no queue {name!r} is registered: register it with DBOS.register_queue({name!r}, ...) first")
    return found
