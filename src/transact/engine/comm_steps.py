"""Step positions of communication calls (send, recv, events, streams, their late additions):
taking the next position, its recorded outcome on replay, the row a first run records, the fence
that turns a refused checkpoint into the workflow's stop, and "read now, record as a step".

Shared by ``comms`` and ``late_comms`` so neither reaches into the other's private helpers. Must
not import the facade.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from transact.engine import serialization, step
from transact.engine.clock import now_ms
from transact.engine.context import WorkflowContext, current_step, current_workflow
from transact.engine.replay import recorded_outcome
from transact.errors import WorkflowNotFoundError
from transact.storage import WorkflowNotPending
from transact.storage.rows import StepRow


def workflow_or_none() -> WorkflowContext | None:
    """The running workflow, unless we are inside one of its steps (then calls are plain code,
    because a step's body is not replayed position by position)."""
    ctx = current_workflow.get()
    if ctx is None or current_step.get() is not None:
        return None
    return ctx


def unknown_destination(destination_id: str, api: str, *, several: bool = False) -> WorkflowNotFoundError:
    err = WorkflowNotFoundError(destination_id)
    nothing = "no message was sent" if several else "the message was not sent"
    err.args = (
        f"{api}: no workflow with id {destination_id!r} exists, so {nothing}. "
        "Start the destination workflow first (it may call recv later; messages wait for it) "
        "or check the id.",
    )
    return err


@dataclass(frozen=True)
class Slot:
    function_id: int
    recorded: StepRow | None


def next_slot(ctx: WorkflowContext, name: str) -> Slot:
    """Take the next step position; its recorded outcome on replay (determinism-checked)."""
    fid = ctx.next_function_id()
    return Slot(fid, recorded_outcome(ctx.recorded, workflow_id=ctx.workflow_id, function_id=fid, name=name))


def slot_row(ctx: WorkflowContext, slot: Slot, name: str, output: bytes | None) -> StepRow:
    now = now_ms()
    return StepRow(ctx.workflow_id, slot.function_id, name, output, None, None, now, now)


def slot_value(row: StepRow) -> Any:
    return serialization.loads(row.output)


@contextmanager
def fenced(ctx: WorkflowContext, name: str) -> Iterator[None]:
    """A refused checkpoint means the workflow was cancelled (or ended) elsewhere: stop it."""
    try:
        yield
    except WorkflowNotPending as exc:
        raise step.not_pending(ctx, exc, name) from None


def record(ctx: WorkflowContext, slot: Slot, name: str, output: bytes) -> Any:
    """Record ``output`` at ``slot``; the value as stored (a concurrent recording may have won)."""
    return slot_value(step.record(ctx, slot_row(ctx, slot, name, output)))


def recorded_read(name: str, read: Callable[[], Any]) -> Any:
    """``read()`` now; in a workflow (outside its steps) a step: the first run records the answer
    and a replay returns it without reading."""
    ctx = workflow_or_none()
    if ctx is None:
        return read()
    slot = next_slot(ctx, name)
    if slot.recorded is not None:
        return slot_value(slot.recorded)
    ctx.check_cancelled()
    return record(ctx, slot, name, serialization.dumps(read(), what=name))
