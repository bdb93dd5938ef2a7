"""Debouncing: the calls of one window become one run of the target workflow, with the latest arguments.

Each call builds the row the target would start with (DELAYED, due one period from now, its
window marker as deduplication id) and hands it to ``store.workflow_debounce``, which pushes the
open window of (queue, marker), giving it the call's inputs and a later due time capped at the
maximum wait after the window's first call, or opens a new window with the row. The dispatcher
starts the row when it comes due, like any delayed enqueue: a window is a database row, so it
survives crashes, restarts and every process sharing the database, and no call is lost or run twice.
Targets without a queue wait on ``INTERNAL_QUEUE``. Inside a workflow a call is a step recording the
window's workflow id: a replay returns that id without debouncing again.
Must not import the facade.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from transact._lib import checks
from transact._lib.states import Status
from transact.engine import by_name, serialization, starts, step
from transact.engine.clock import now_ms
from transact.engine.context import WorkflowContext, current_workflow
from transact.engine.registry import WorkflowInfo
from transact.errors import ConfigError
from transact.storage import Store
from transact.storage.rows import StepRow, WorkflowRow

if TYPE_CHECKING:
    from transact.engine.runtime import Runtime

INTERNAL_QUEUE = "_transact_debounce"  # where targets without a queue of their own wait
STEP = "DBOS.debounce"
_OWNED_OPTIONS = (  # a window sets these itself
    "deduplication_id",
    "delay_seconds",
    *by_name.POLICY_KEYS,
)


@dataclass(frozen=True)
class Window:
    """One debounce call's checked window: its key, period and maximum wait (ms)."""

    key: str
    period_ms: int
    max_wait_ms: int | None


def checked_timeout(value: Any, api: str) -> int | None:
    """``debounce_timeout_sec``: None (no maximum wait) or seconds > 0, in ms."""
    if value is None:
        return None
    return math.ceil(checks.seconds(value, f"{api}: debounce_timeout_sec", positive=True) * 1000)


def checked_window(api: str, key: Any, period: Any, max_wait_ms: int | None) -> Window:
    """Validate a call's key and period before anything is serialized or written."""
    text = checks.text(key, f"{api}: debounce_key", bounded=True) or ""
    period_ms = math.ceil(checks.seconds(period, f"{api}: debounce_period_sec") * 1000)
    return Window(text, period_ms, max_wait_ms)


def marker(workflow_name: str, key: str) -> str:
    """The window marker of (workflow, key): the name's length keeps every pair distinct."""
    return f"transact.debounce:{len(workflow_name)}:{workflow_name}:{key}"


def window_row(row: WorkflowRow, window: Window) -> WorkflowRow:
    """``row`` (a queued start) as the row a window opens with or pushes: DELAYED one period from
    its creation (the maximum wait, when shorter), marked with the window's key."""
    now = row.created_at
    delay = window.period_ms if window.max_wait_ms is None else min(window.period_ms, window.max_wait_ms)
    return replace(
        row,
        status=Status.DELAYED,
        deduplication_id=marker(row.name, window.key),
        available_at=now + delay,
        started_at=None,
    )


# -- in an application process --------------------------------------------------------------------
def _begin() -> tuple[WorkflowContext, int, StepRow | None] | None:
    return step.begin(STEP)


def _plan(
    rt: Runtime,
    info: WorkflowInfo,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    queue: starts.QueueSpec,
    window: Window,
) -> WorkflowRow:
    """The call's row, built like an enqueue from outside any workflow: the target is shared by
    every call of its window, so it is nobody's child (``SetWorkflowID``/``SetWorkflowTimeout``
    apply to it as to any start)."""
    if queue.deduplication_id is not None or queue.delay_seconds is not None:
        raise ConfigError(
            f"debounce of {info.name!r}: SetEnqueueOptions(deduplication_id=..., delay_seconds=...) cannot apply, "
            "the debounce window sets both itself; drop them (priority and queue_partition_key do apply)"
        )
    token = current_workflow.set(None)
    try:
        planned = starts.plan(rt, info, args, kwargs, queue=queue)
    finally:
        current_workflow.reset(token)
    return window_row(planned.row, window)


def _step_row(ctx: WorkflowContext, function_id: int, workflow_id: str) -> StepRow:
    now = now_ms()
    return StepRow(
        ctx.workflow_id, function_id, STEP, serialization.dumps(workflow_id, what=STEP), None, None, now, now
    )


def debounce(
    rt: Runtime,
    info: WorkflowInfo,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    window: Window,
    queue: starts.QueueSpec,
) -> str:
    """Debounce one call; returns the workflow id of the run its window will start."""
    begun = _begin()
    if begun is not None and begun[2] is not None:
        return str(step.result(begun[2]))
    row = _plan(rt, info, args, kwargs, queue, window)
    workflow_id, _ = rt.store.workflow_debounce(row, max_wait_ms=window.max_wait_ms, now=row.created_at)
    if begun is not None:
        step.record(begun[0], _step_row(begun[0], begun[1], workflow_id))
    return workflow_id


async def debounce_async(
    rt: Runtime,
    info: WorkflowInfo,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    window: Window,
    queue: starts.QueueSpec,
) -> str:
    """``debounce`` for async callers: planned in the caller's context, written off the event loop."""
    begun = _begin()
    if begun is not None and begun[2] is not None:
        return str(step.result(begun[2]))
    row = _plan(rt, info, args, kwargs, queue, window)
    workflow_id, _ = await rt.aio(rt.store.workflow_debounce, row, max_wait_ms=window.max_wait_ms, now=row.created_at)
    if begun is not None:
        await step.record_async(begun[0], _step_row(begun[0], begun[1], workflow_id))
    return workflow_id


# -- from a client (no runtime) -------------------------------------------------------------------
def client_row(
    options: Mapping[str, Any], args: Sequence[Any], kwargs: Mapping[str, Any], *, window: Window, queue_name: str
) -> WorkflowRow:
    """The row a client's call debounces, for a workflow known by name only (``enqueue`` options)."""
    if not isinstance(options, Mapping):
        raise ConfigError(f"DebouncerClient workflow_options must be a dict with 'workflow_name', got {options!r}")
    owned = [key for key in _OWNED_OPTIONS if options.get(key) is not None]
    if owned:
        raise ConfigError(
            f"DebouncerClient workflow_options cannot set {owned[0]!r}: the debounce window sets it itself; drop it"
        )
    row = by_name.enqueue_row({**options, "queue_name": queue_name}, args, kwargs)
    return window_row(row, window)


def client_debounce(store: Store, row: WorkflowRow, window: Window) -> str:
    workflow_id, _ = store.workflow_debounce(row, max_wait_ms=window.max_wait_ms, now=row.created_at)
    return workflow_id
