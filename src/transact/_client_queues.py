"""DBOSClient's queue-registry methods: register, inspect, reconfigure and delete an
application's queues, and move a delayed workflow's due time, from any process.

The limits live in the system database, so the application's dispatchers obey a change before
their next claim. A client runs no application version, so it cannot register with
``on_conflict='update_if_latest_version'``; its default is ``'always_update'``. ``Queue`` objects
it returns read and set limits through the client; enqueue with ``client.enqueue``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from transact import _queue
from transact.engine import queues as registry

if TYPE_CHECKING:
    from transact._queue import Queue, QueueRateLimit
    from transact.storage import Store

T = TypeVar("T")


class ClientQueues:
    """Mixed into DBOSClient, which provides the store and the outage-mapping call."""

    if TYPE_CHECKING:
        _store: Store
        _application_name: str | None

        def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T: ...

    def register_queue(
        self,
        name: str,
        concurrency: int | None = None,
        limiter: QueueRateLimit | dict[str, Any] | None = None,
        *,
        worker_concurrency: int | None = None,
        priority_enabled: bool = False,
        partition_queue: bool = False,
        polling_interval_sec: float | None = None,
        on_conflict: str = "always_update",
        global_concurrency: int | None = None,
        partition_concurrency: int | None = None,
        partition_worker_concurrency: int | None = None,
        partition_limiter: QueueRateLimit | dict[str, Any] | None = None,
    ) -> Queue:
        """Register queue ``name`` (see ``DBOS.register_queue``); returns it with its stored limits."""
        config = registry.validate(
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
        rule = registry.check_on_conflict(on_conflict, client=True)
        stored = self._call(
            registry.register,
            self._store,
            config,
            on_conflict=rule,
            app_version=None,
            application_name=self._application_name,
        )
        return _queue.Queue._handle(stored, self._store)

    async def register_queue_async(self, name: str, *args: Any, **kwargs: Any) -> Queue:
        return await asyncio.to_thread(self.register_queue, name, *args, **kwargs)

    def retrieve_queue(self, name: str) -> Queue | None:
        return self._call(_queue.retrieve, name, self._store)

    async def retrieve_queue_async(self, name: str) -> Queue | None:
        return await asyncio.to_thread(self.retrieve_queue, name)

    def list_queues(self) -> list[Queue]:
        return self._call(_queue.list_all, self._store)

    async def list_queues_async(self) -> list[Queue]:
        return await asyncio.to_thread(self.list_queues)

    def delete_queue(self, name: str) -> bool:
        """See ``DBOS.delete_queue``: refused while workflows still wait or run in the queue."""
        return self._call(_queue.delete, name, self._store)

    async def delete_queue_async(self, name: str) -> bool:
        return await asyncio.to_thread(self.delete_queue, name)

    def set_workflow_delay(self, workflow_id: str, delay_seconds: float) -> None:
        """See ``DBOS.set_workflow_delay``."""
        self._call(registry.set_delay, self._store, workflow_id, delay_seconds)

    async def set_workflow_delay_async(self, workflow_id: str, delay_seconds: float) -> None:
        await asyncio.to_thread(self.set_workflow_delay, workflow_id, delay_seconds)
