"""DBOS facade: the queue registry (``register_queue``, ``retrieve_queue``, ``list_queues``,
``delete_queue``), ``listen_queues``, ``enqueue_workflow`` and ``set_workflow_delay``; each with
an ``_async`` form where DBOS has one.

``Queue`` objects and the registry operations are transact._queue's; this mixin delegates to it.
Must not import transact._dbos.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from transact import _queue
from transact._facade._base import FacadeBase
from transact._handles import WorkflowHandle, WorkflowHandleAsync
from transact._lib import checks
from transact._queue import Queue, QueueRateLimit
from transact.engine import queues as registry
from transact.errors import ConfigError


class QueueFacade(FacadeBase):
    @classmethod
    def register_queue(
        cls,
        name: str,
        concurrency: int | None = None,
        limiter: QueueRateLimit | dict[str, Any] | None = None,
        *,
        worker_concurrency: int | None = None,
        priority_enabled: bool = False,
        partition_queue: bool = False,
        polling_interval_sec: float | None = None,
        on_conflict: str = registry.DEFAULT_ON_CONFLICT,
        global_concurrency: int | None = None,
        partition_concurrency: int | None = None,
        partition_worker_concurrency: int | None = None,
        partition_limiter: QueueRateLimit | dict[str, Any] | None = None,
    ) -> Queue:
        """Register queue ``name`` in the system database (every process and client sees its
        limits) and serve it in this process. If it is registered already, ``on_conflict`` says
        what wins: ``"update_if_latest_version"`` (default) overwrites the stored limits only when
        this process runs the newest application version, so an older deploy still running cannot
        revert a newer one's limits; ``"always_update"`` overwrites; ``"never_update"`` keeps them.
        Before launch the queue is registered at launch.

        Partitioned queues (``partition_queue=True``; enqueue with
        ``SetEnqueueOptions(queue_partition_key=...)``): ``concurrency`` / ``partition_concurrency``
        caps each partition across processes, ``worker_concurrency`` /
        ``partition_worker_concurrency`` each partition per process, ``limiter`` /
        ``partition_limiter`` rate-limits each partition, and ``global_concurrency`` caps the
        whole queue across partitions and processes. Partitions are served round-robin, so a
        partition with a long backlog does not delay one with a single item."""
        return _queue.register(
            name,
            concurrency,
            limiter,
            worker_concurrency,
            priority_enabled,
            partition_queue,
            polling_interval_sec,
            on_conflict,
            global_concurrency=global_concurrency,
            partition_concurrency=partition_concurrency,
            partition_worker_concurrency=partition_worker_concurrency,
            partition_limiter=partition_limiter,
        )

    @classmethod
    async def register_queue_async(
        cls,
        name: str,
        concurrency: int | None = None,
        limiter: QueueRateLimit | dict[str, Any] | None = None,
        *,
        worker_concurrency: int | None = None,
        priority_enabled: bool = False,
        partition_queue: bool = False,
        polling_interval_sec: float | None = None,
        on_conflict: str = registry.DEFAULT_ON_CONFLICT,
        global_concurrency: int | None = None,
        partition_concurrency: int | None = None,
        partition_worker_concurrency: int | None = None,
        partition_limiter: QueueRateLimit | dict[str, Any] | None = None,
    ) -> Queue:
        def call() -> Queue:
            return cls.register_queue(
                name,
                concurrency,
                limiter,
                worker_concurrency=worker_concurrency,
                priority_enabled=priority_enabled,
                partition_queue=partition_queue,
                polling_interval_sec=polling_interval_sec,
                on_conflict=on_conflict,
                global_concurrency=global_concurrency,
                partition_concurrency=partition_concurrency,
                partition_worker_concurrency=partition_worker_concurrency,
                partition_limiter=partition_limiter,
            )

        return await cls._rt().aio(call)

    @classmethod
    def retrieve_queue(cls, name: str) -> Queue | None:
        """The registered queue ``name`` (its limits as stored), or None."""
        return _queue.retrieve(name)

    @classmethod
    async def retrieve_queue_async(cls, name: str) -> Queue | None:
        return await cls._rt().aio(cls.retrieve_queue, name)

    @classmethod
    def list_queues(cls) -> list[Queue]:
        """Every registered queue, by name."""
        return _queue.list_all()

    @classmethod
    async def list_queues_async(cls) -> list[Queue]:
        return await cls._rt().aio(cls.list_queues)

    @classmethod
    def delete_queue(cls, name: str) -> bool:
        """Remove queue ``name`` from the registry: True if it was registered. Refused with a
        ConfigError while workflows still wait or run in it (they would never be dequeued):
        let them finish or cancel them first. A queue still declared in a process with
        ``Queue(...)`` keeps being served there, with its declared limits."""
        return _queue.delete(name)

    @classmethod
    async def delete_queue_async(cls, name: str) -> bool:
        return await cls._rt().aio(cls.delete_queue, name)

    @classmethod
    def listen_queues(cls, queues: Sequence[Queue | str]) -> None:
        """Dispatch only these queues (objects or names) in this process; call before launch.
        Other processes still serve the rest, and this one can still enqueue on any queue."""
        rt = cls._instance()._runtime
        if rt.launched:
            raise ConfigError("DBOS.listen_queues must be called before DBOS.launch()")
        if isinstance(queues, str) or not isinstance(queues, Sequence):
            raise checks.fail("DBOS.listen_queues queues", "a list of Queue objects or queue names", queues)
        names = [q if isinstance(q, str) else getattr(q, "name", None) for q in queues]
        for n, q in zip(names, queues, strict=True):
            if not isinstance(n, str) or not n:
                raise checks.fail("DBOS.listen_queues entry", "a Queue or a queue name", q)
        registry.set_listen(rt, [n for n in names if isinstance(n, str)])

    @classmethod
    def enqueue_workflow(
        cls, queue_name: str, func: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> WorkflowHandle[Any]:
        """Enqueue ``func`` on queue ``queue_name`` (declared here or registered anywhere)."""
        return _queue.by_name(queue_name).enqueue(func, *args, **kwargs)

    @classmethod
    async def enqueue_workflow_async(
        cls, queue_name: str, func: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> WorkflowHandleAsync[Any]:
        queue = await cls._rt().aio(_queue.by_name, queue_name)
        return await queue.enqueue_async(func, *args, **kwargs)

    @classmethod
    def set_workflow_delay(cls, workflow_id: str, delay_seconds: float) -> None:
        """Make DELAYED workflow ``workflow_id`` due ``delay_seconds`` from now (0: at once).
        A clear error when it is not DELAYED (already dequeued, finished) or does not exist."""
        registry.set_delay(cls._rt().store, workflow_id, delay_seconds)

    @classmethod
    async def set_workflow_delay_async(cls, workflow_id: str, delay_seconds: float) -> None:
        rt = cls._rt()
        await rt.aio(registry.set_delay, rt.store, workflow_id, delay_seconds)
