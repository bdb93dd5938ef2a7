"""``Debouncer`` and ``DebouncerClient``: many calls within a window start one workflow run, with
the latest call's arguments.

``debouncer.debounce(key, period, *args)`` waits ``period`` seconds after the call; a new call
with the same key in that time replaces the arguments and starts the wait again, up to
``debounce_timeout_sec`` after the window's first call. The target then runs once (on ``queue``
when given). Every call of a window returns a handle to that one run. The window is a row of the
system database (engine/debounce.py): it survives crashes and is shared by every process.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Coroutine
from typing import Any, Generic, ParamSpec, TypeVar, overload

from transact._client import DBOSClient
from transact._client_handles import WorkflowHandleClient, WorkflowHandleClientAsync
from transact._facade._base import FacadeBase
from transact._facade.targets import resolve
from transact._handles import WorkflowHandle, WorkflowHandleAsync
from transact._options import current_enqueue_options
from transact._queue import Queue
from transact.engine import debounce as engine
from transact.engine.registry import REGISTRY
from transact.engine.starts import QueueSpec
from transact.errors import ConfigError

P = ParamSpec("P")
R = TypeVar("R")


def declare_internal_queue() -> None:
    """The queue debounced workflows without a queue of their own wait on; every application
    process serves it, so a window opened by a client or another process runs anywhere."""
    if engine.INTERNAL_QUEUE not in REGISTRY.queues:
        Queue(engine.INTERNAL_QUEUE)


def _queue_name(queue: object, api: str) -> str | None:
    if queue is None:
        return None
    if isinstance(queue, Queue):
        return queue.name
    if isinstance(queue, str) and queue:
        return queue
    raise ConfigError(f"{api}: queue must be a Queue (or a queue name), got {queue!r}")


def _check_workflow(workflow: object) -> None:
    func = workflow.__func__ if inspect.ismethod(workflow) else workflow
    if not callable(func) or not (
        hasattr(func, "__transact_workflow__") or hasattr(func, "__transact_step_workflow__")
    ):
        raise ConfigError(
            f"Debouncer.create: workflow must be a function decorated with @DBOS.workflow(), got {workflow!r}"
        )


class Debouncer(Generic[P, R]):
    """Debounces calls of one workflow. Create it with ``Debouncer.create(workflow, ...)`` (any
    time, before or after ``DBOS.launch()``); call ``debounce`` once launched."""

    def __init__(
        self, workflow: Callable[P, Any], *, debounce_timeout_sec: float | None = None, queue: Queue | None = None
    ) -> None:
        _check_workflow(workflow)
        self._workflow = workflow
        self._max_wait_ms = engine.checked_timeout(debounce_timeout_sec, "Debouncer.create")
        if queue is not None and not isinstance(queue, Queue):
            raise ConfigError(f"Debouncer.create: queue must be a Queue, got {queue!r}")
        self._queue = queue
        self.debounce_timeout_sec = debounce_timeout_sec
        if queue is None:
            declare_internal_queue()

    @overload
    @staticmethod
    def create(
        workflow: Callable[P, Coroutine[Any, Any, R]],
        *,
        debounce_timeout_sec: float | None = None,
        queue: Queue | None = None,
    ) -> Debouncer[P, R]: ...

    @overload
    @staticmethod
    def create(
        workflow: Callable[P, R], *, debounce_timeout_sec: float | None = None, queue: Queue | None = None
    ) -> Debouncer[P, R]: ...

    @staticmethod
    def create(
        workflow: Callable[P, Any], *, debounce_timeout_sec: float | None = None, queue: Queue | None = None
    ) -> Debouncer[P, Any]:
        """A debouncer for ``workflow``: each window waits at most ``debounce_timeout_sec`` after
        its first call (None: no limit); the run starts on ``queue`` (None: right away)."""
        return Debouncer(workflow, debounce_timeout_sec=debounce_timeout_sec, queue=queue)

    create_async = create  # the same debouncer serves async workflows (use ``debounce_async``)

    def _spec(self) -> QueueSpec:
        if self._queue is None:
            declare_internal_queue()  # after destroy(destroy_registry=True) too
            return QueueSpec(engine.INTERNAL_QUEUE)
        queue, opts = self._queue, current_enqueue_options()
        key = opts.queue_partition_key if opts is not None else None
        if queue._limits(FacadeBase._rt()).partitioned and key is None:  # as cached: no round trip
            raise ConfigError(
                f"queue {queue.name!r} is partitioned: debounce inside `with SetEnqueueOptions(queue_partition_key=...)`"
            )
        if opts is None:
            return QueueSpec(queue.name)
        return QueueSpec(
            queue_name=queue.name,
            deduplication_id=opts.deduplication_id,
            priority=opts.priority or 0,
            partition_key=key,
            delay_seconds=opts.delay_seconds,
            app_version=opts.app_version,
        )

    def debounce(
        self, debounce_key: str, debounce_period_sec: float, *args: P.args, **kwargs: P.kwargs
    ) -> WorkflowHandle[R]:
        """Debounce one call under ``debounce_key``: the window's run starts ``debounce_period_sec``
        after its last call with that call's arguments. Returns the handle of that run."""
        rt = FacadeBase._rt()
        window = engine.checked_window("Debouncer.debounce", debounce_key, debounce_period_sec, self._max_wait_ms)
        info, call_args = resolve(self._workflow, args)
        wid = engine.debounce(rt, info, call_args, kwargs, window=window, queue=self._spec())
        return WorkflowHandle(rt, wid)

    async def debounce_async(
        self, debounce_key: str, debounce_period_sec: float, *args: P.args, **kwargs: P.kwargs
    ) -> WorkflowHandleAsync[R]:
        """``debounce`` for async code: the write runs off the event loop."""
        rt = FacadeBase._rt()
        window = engine.checked_window("Debouncer.debounce_async", debounce_key, debounce_period_sec, self._max_wait_ms)
        info, call_args = resolve(self._workflow, args)
        wid = await engine.debounce_async(rt, info, call_args, kwargs, window=window, queue=self._spec())
        return WorkflowHandleAsync(rt, wid)

    def __repr__(self) -> str:
        name = getattr(self._workflow, "__qualname__", self._workflow)
        return f"Debouncer({name}, debounce_timeout_sec={self.debounce_timeout_sec}, queue={self._queue!r})"


class DebouncerClient:
    """Debounce a workflow known by name from a process that never launches, through ``client``.
    ``workflow_options`` are ``DBOSClient.enqueue``'s (``workflow_name`` required; ``queue_name``
    optional here: without it, nor ``queue``, the run starts right away when its window closes);
    an application process that registers the workflow runs it."""

    def __init__(
        self,
        client: DBOSClient,
        workflow_options: dict[str, Any],
        debounce_timeout_sec: float | None = None,
        queue: Queue | str | None = None,
    ) -> None:
        if not isinstance(client, DBOSClient):
            raise ConfigError(f"DebouncerClient: client must be a DBOSClient, got {client!r}")
        if not isinstance(workflow_options, dict) or not workflow_options.get("workflow_name"):
            raise ConfigError(
                "DebouncerClient: workflow_options must be a dict naming the workflow, "
                f"e.g. {{'workflow_name': 'process'}}, got {workflow_options!r}"
            )
        self._client = client
        self._options = dict(workflow_options)
        self._max_wait_ms = engine.checked_timeout(debounce_timeout_sec, "DebouncerClient")
        named = _queue_name(queue, "DebouncerClient") or self._options.pop("queue_name", None)
        self._options.pop("queue_name", None)
        self._queue_name = named or engine.INTERNAL_QUEUE

    def debounce(
        self, debounce_key: str, debounce_period_sec: float, *args: Any, **kwargs: Any
    ) -> WorkflowHandleClient[Any]:
        """Debounce one call under ``debounce_key`` (see ``Debouncer.debounce``)."""
        window = engine.checked_window("DebouncerClient.debounce", debounce_key, debounce_period_sec, self._max_wait_ms)
        row = engine.client_row(self._options, args, kwargs, window=window, queue_name=self._queue_name)
        wid = self._client._call(engine.client_debounce, self._client.store, row, window)
        return WorkflowHandleClient(self._client, wid)

    async def debounce_async(
        self, debounce_key: str, debounce_period_sec: float, *args: Any, **kwargs: Any
    ) -> WorkflowHandleClientAsync[Any]:
        handle = await asyncio.to_thread(self.debounce, debounce_key, debounce_period_sec, *args, **kwargs)
        return WorkflowHandleClientAsync(self._client, handle.workflow_id)


declare_internal_queue()
