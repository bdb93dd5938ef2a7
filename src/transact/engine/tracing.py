"""Tracing hooks: a span per workflow run and per step, transaction and communication call, and
the workflow id and step on log records.

The engine never imports OpenTelemetry. ``transact.integrations.otel`` installs a ``Backend`` at
launch when tracing is enabled; until then ``on`` is False and every hook in the engine is a single
test of that flag, so an untraced step does no extra work. Must not import the facade.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from transact.engine.context import WorkflowContext, current_step, current_workflow

if TYPE_CHECKING:
    from transact.storage.rows import WorkflowRow

T = TypeVar("T")

# Set at launch by the OpenTelemetry integration; read by the engine's hooks.
on = False


class Backend(Protocol):
    """What the engine asks of a tracing implementation."""

    def workflow(self, ctx: WorkflowContext, row: WorkflowRow | None) -> AbstractContextManager[Any]:
        """A span around one run of a workflow, current while its body runs."""

    def operation(
        self, kind: str, name: str, position: tuple[WorkflowContext, int, bool] | None = None
    ) -> AbstractContextManager[Any]:
        """A span around one step, transaction or communication call, under the current span.
        ``position``: (workflow, step id, replayed) when already known (a step opens its span after
        taking its position, so the span starts labelled; a transaction too); None otherwise."""

    def carrier(self) -> str | None:
        """The current trace context as stored with a new workflow row (JSON), or None."""

    def close(self) -> None:
        """Tracing is turned off: undo whatever enabling it installed."""


_backend: Backend | None = None


def enable(backend: Backend) -> None:
    global on, _backend
    _backend, on = backend, True


def disable() -> None:
    """Turn tracing off (``DBOS.destroy``): the backend undoes what it installed."""
    global on, _backend
    backend, on, _backend = _backend, False, None
    if backend is not None:
        backend.close()


def _active() -> Backend:
    if _backend is None:
        raise RuntimeError("tracing hook called while tracing is off")
    return _backend


# -- hooks (each called only when ``on``) -------------------------------------------------------
def workflow(ctx: WorkflowContext, run: Callable[..., T], *args: Any) -> T:
    with _active().workflow(ctx, ctx.row):
        return run(*args)


async def workflow_async(ctx: WorkflowContext, run: Callable[..., Awaitable[T]], *args: Any) -> T:
    with _active().workflow(ctx, ctx.row):
        return await run(*args)


def operation(kind: str, name: str, run: Callable[..., T], *args: Any) -> T:
    with _active().operation(kind, name):
        return run(*args)


async def operation_async(kind: str, name: str, run: Callable[..., Awaitable[T]], *args: Any) -> T:
    with _active().operation(kind, name):
        return await run(*args)


def operation_at(
    kind: str, name: str, position: tuple[WorkflowContext, int, bool] | None
) -> AbstractContextManager[Any]:
    """The span of an operation whose position is known (``with``: current inside the block)."""
    backend = _backend  # (read once: the per-step path)
    if backend is None:
        raise RuntimeError("tracing hook called while tracing is off")
    return backend.operation(kind, name, position)


_UNTRACED: AbstractContextManager[Any] = nullcontext()


def operation_if_on(
    kind: str, name: str, position: tuple[WorkflowContext, int, bool] | None
) -> AbstractContextManager[Any]:
    """``operation_at`` while tracing is on, else a context that does nothing: for operations that
    make a database round trip anyway (transactions), where one ``with`` costs less than a second
    copy of the code. The per-step path tests ``on`` itself."""
    backend = _backend
    return _UNTRACED if backend is None else backend.operation(kind, name, position)


def carrier() -> str | None:
    """The caller's trace context for a new workflow row. Without tracing enabled here (a
    ``DBOSClient`` process), the context of an OpenTelemetry span the application opened itself."""
    if _backend is not None:
        return _backend.carrier()
    if "opentelemetry.propagate" not in sys.modules:
        return None  # the application uses no OpenTelemetry: nothing to continue
    return inject_current()


def inject_current() -> str | None:
    """The current OpenTelemetry context as W3C propagation headers (JSON); None without a span."""
    from opentelemetry import propagate

    headers: dict[str, str] = {}
    propagate.inject(headers)
    return json.dumps(headers, sort_keys=True) if headers else None


# -- log records --------------------------------------------------------------------------------
class WorkflowLogFilter(logging.Filter):
    """Adds ``workflow_id``, ``step_id`` (the step's position) and ``workflow_name`` to every
    record it sees (None outside a workflow). Never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        ctx = current_workflow.get()
        record.workflow_id = ctx.workflow_id if ctx is not None else None
        record.workflow_name = ctx.name if ctx is not None else None
        record.step_id = current_step.get() if ctx is not None else None
        return True


LOG_FILTER = WorkflowLogFilter()
