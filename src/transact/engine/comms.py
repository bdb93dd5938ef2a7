"""Durable time and communication: sleep, send/recv, events and streams.

Deadlines are recorded as steps, so a crash never moves them. Every wait is pushed: register a
waiter, read the table, then wait with a deadline (Postgres NOTIFY or a local hint wakes it; a slow
poll is only a safety net). Writes that must happen once commit together with their step outcome
(one store method each). Sync and async shells share the ``_op_*`` pieces. Must not import the facade.
"""

from __future__ import annotations

import contextvars
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from transact._lib import checks
from transact._lib.states import Hint, Status
from transact.engine import clock, comm_steps, serialization, step
from transact.engine.clock import now_ms
from transact.engine.comm_steps import (
    Slot,
    fenced,
    next_slot,
    recorded_read,
    slot_row,
    slot_value,
    unknown_destination,
    workflow_or_none,
)
from transact.engine.context import WorkflowContext, current_step, current_workflow
from transact.engine.runtime import Runtime
from transact.engine.waiters import Key
from transact.errors import (
    ConfigError,
    DBOSWorkflowCancelledError,
    NotInWorkflowError,
    TransactError,
)
from transact.storage import NotFound, OwnershipLost
from transact.storage.comms import OutMessage, StreamClosed
from transact.storage.rows import StepRow

SLEEP = "DBOS.sleep"
SEND = "DBOS.send"
SEND_BULK = "DBOS.send_bulk"
RECV = "DBOS.recv"
RECV_DEADLINE = "DBOS.recv.deadline"
SET_EVENT = "DBOS.set_event"
GET_EVENT = "DBOS.get_event"
GET_EVENT_DEADLINE = "DBOS.get_event.deadline"
GET_ALL_EVENTS = "DBOS.get_all_events"
WRITE_STREAM = "DBOS.write_stream"
CLOSE_STREAM = "DBOS.close_stream"

POLL_S = 2.0  # safety net for a lost wake-up; wake-ups themselves are pushed
RECHECK_S = 30.0  # long sleeps re-read the wall clock now and then (it may have been adjusted)
_NONE = serialization.dumps(None, what="None")


# -- validation (before anything is written) -----------------------------------------------------
def checked_duration_ms(value: Any, api: str, name: str) -> int:
    return math.ceil(checks.seconds(value, f"{api}: {name}") * 1000)


def checked_text(value: Any, api: str, name: str, *, optional: bool = False) -> str:
    """A bounded, non-empty string; with ``optional``, None or "" mean "no value" (returned as "")."""
    if optional and (value is None or value == ""):
        return ""
    return checks.text(value, f"{api}: {name}", bounded=True) or ""


def _require_workflow(api: str, *, in_step_ok: bool = False) -> WorkflowContext:
    ctx = current_workflow.get()
    if ctx is None:
        raise NotInWorkflowError(
            f"{api} can only be called inside a workflow (a function decorated with @DBOS.workflow()); "
            "it was called outside one"
        )
    if current_step.get() is not None and not in_step_ok:
        raise NotInWorkflowError(
            f"{api} cannot be called from inside a step of workflow {ctx.workflow_id!r}; "
            "call it from the workflow function itself"
        )
    return ctx


def _cancel_keys(ctx: WorkflowContext | None) -> list[Key]:
    return [] if ctx is None else [(Hint.CANCEL, ctx.workflow_id, "")]


def _left_s(deadline: int, cap: float) -> float:
    return clock.left_s(deadline, cap)


# -- operations shared by the sync and async shells (each is blocking: async runs them via aio) -
def _op_deadline(ctx: WorkflowContext, slot: Slot, name: str, ms: int) -> int:
    """The absolute deadline (epoch ms) recorded at ``slot``; recorded now on the first run."""
    if slot.recorded is not None:
        return int(slot_value(slot.recorded))
    stored = step.record(ctx, slot_row(ctx, slot, name, serialization.dumps(clock.now_ms_ceil() + ms, what=name)))
    return int(slot_value(stored))


def _op_send(
    rt: Runtime, ctx: WorkflowContext | None, slot: Slot | None, dest: str, topic: str, data: bytes, key: str | None
) -> None:
    now = now_ms()
    try:
        if ctx is None or slot is None:
            rt.store.message_send(destination_id=dest, topic=topic, message=data, idempotency_key=key, now=now)
            return
        with fenced(ctx, SEND):
            rt.store.message_send_step(
                slot_row(ctx, slot, SEND, _NONE),
                executor_id=rt.executor_id,
                destination_id=dest,
                topic=topic,
                message=data,
                idempotency_key=key,
                now=now,
            )
    except NotFound:
        raise unknown_destination(dest, SEND) from None


def _op_take(ctx: WorkflowContext, slot: Slot, topic: str) -> StepRow | None:
    """Take the oldest message and record it at ``slot`` in one transaction (or None)."""
    rt = ctx.runtime
    with fenced(ctx, RECV):
        return rt.store.message_take_step(
            slot_row(ctx, slot, RECV, None), executor_id=rt.executor_id, topic=topic, now=now_ms()
        )


def _op_set_event(rt: Runtime, ctx: WorkflowContext, slot: Slot | None, key: str, data: bytes) -> None:
    if slot is None:  # inside a step: the step is retried as a whole, an upsert is idempotent
        rt.store.event_set(workflow_id=ctx.workflow_id, key=key, value=data, now=now_ms())
        return
    with fenced(ctx, SET_EVENT):
        rt.store.event_set_step(
            slot_row(ctx, slot, SET_EVENT, _NONE),
            executor_id=rt.executor_id,
            workflow_id=ctx.workflow_id,
            key=key,
            value=data,
            now=now_ms(),
        )


def _op_stream(rt: Runtime, ctx: WorkflowContext, slot: Slot | None, name: str, key: str, data: bytes | None) -> None:
    closed = name == CLOSE_STREAM
    try:
        if slot is None:
            rt.store.stream_append(workflow_id=ctx.workflow_id, key=key, value=data, closed=closed)
            return
        with fenced(ctx, name):
            rt.store.stream_append_step(
                slot_row(ctx, slot, name, _NONE),
                executor_id=rt.executor_id,
                workflow_id=ctx.workflow_id,
                key=key,
                value=data,
                closed=closed,
            )
    except StreamClosed:
        raise TransactError(
            f"{name}: stream {key!r} of workflow {ctx.workflow_id!r} is already closed; "
            "nothing was written (write every value before DBOS.close_stream)"
        ) from None


# -- sleep ----------------------------------------------------------------------------------------
def _op_still_ours(ctx: WorkflowContext) -> None:
    row = ctx.runtime.store.workflow_get(ctx.workflow_id)
    status = "DELETED" if row is None else row.status
    if status != Status.PENDING:
        ctx.cancelled.set()
        raise DBOSWorkflowCancelledError.of(ctx.workflow_id, f"is {status}")
    if row is not None and row.executor_id != ctx.runtime.executor_id:
        raise OwnershipLost(f"workflow {ctx.workflow_id!r} is owned by executor {row.executor_id!r} now")


# -- sleep: the wake-up time is a step -------------------------------------------------------------
def _sleep_plan(seconds: Any) -> tuple[int, WorkflowContext | None, Slot | None]:
    ms = checked_duration_ms(seconds, "DBOS.sleep", "seconds")
    ctx = workflow_or_none()
    if ctx is None:
        return ms, None, None
    slot = next_slot(ctx, SLEEP)
    if slot.recorded is None:
        ctx.check_cancelled()
    return ms, ctx, slot


def sleep(seconds: float) -> None:
    """Sleep durably: the wake-up time is recorded, so a restarted workflow wakes on schedule."""
    ms, ctx, slot = _sleep_plan(seconds)
    if ctx is None or slot is None:
        clock.sleep(ms / 1000)
        return
    wake = _op_deadline(ctx, slot, SLEEP, ms)
    with ctx.cancel_watch() as waiter:
        while True:
            ctx.check_cancelled()
            if now_ms() >= wake:
                return
            if waiter.wait(_left_s(wake, RECHECK_S)) and not ctx.cancelled.is_set():
                _op_still_ours(ctx)


async def sleep_async(seconds: float) -> None:
    """``sleep`` for async workflows: waits on the event loop, holding no thread."""
    ms, ctx, slot = _sleep_plan(seconds)
    if ctx is None or slot is None:
        await clock.sleep_async(ms / 1000)
        return
    wake = await ctx.runtime.aio(_op_deadline, ctx, slot, SLEEP, ms)
    with ctx.cancel_watch(asynchronous=True) as waiter:
        while True:
            ctx.check_cancelled()
            if now_ms() >= wake:
                return
            if await waiter.wait_async(_left_s(wake, RECHECK_S)) and not ctx.cancelled.is_set():
                await ctx.runtime.aio(_op_still_ours, ctx)


# -- send / recv --------------------------------------------------------------------------------
def _send_plan(
    destination_id: Any, message: Any, topic: Any, idempotency_key: Any
) -> tuple[str, str, bytes, str | None, WorkflowContext | None, Slot | None]:
    dest = checked_text(destination_id, "DBOS.send", "destination_id")
    top = checked_text(topic, "DBOS.send", "topic", optional=True)
    key = None if idempotency_key is None else checked_text(idempotency_key, "DBOS.send", "idempotency_key")
    data = serialization.dumps(message, what=f"the message sent to workflow {dest!r}")
    ctx = workflow_or_none()
    if ctx is None:
        return dest, top, data, key, None, None
    slot = next_slot(ctx, SEND)
    if slot.recorded is None:
        ctx.check_cancelled()
    return dest, top, data, key, ctx, slot


def send(rt: Runtime, destination_id: str, message: Any, topic: str | None, idempotency_key: str | None) -> None:
    """Deliver a message to a workflow. In a workflow it is a step: sent once, whatever the replays."""
    dest, top, data, key, ctx, slot = _send_plan(destination_id, message, topic, idempotency_key)
    if slot is None or slot.recorded is None:
        _op_send(rt, ctx, slot, dest, top, data, key)


async def send_async(
    rt: Runtime, destination_id: str, message: Any, topic: str | None, idempotency_key: str | None
) -> None:
    dest, top, data, key, ctx, slot = _send_plan(destination_id, message, topic, idempotency_key)
    if slot is None or slot.recorded is None:
        await rt.aio(_op_send, rt, ctx, slot, dest, top, data, key)


# -- send_bulk: many messages, one transaction (in a workflow, one step) -------------------------
_ENTRY_KEYS = ("destination_id", "message", "topic", "idempotency_key")


def _bulk_entry(entry: Any, index: int, api: str) -> OutMessage:
    """One entry holds the arguments of one ``DBOS.send``: a tuple ``(destination_id, message[,
    topic[, idempotency_key]])`` or a mapping with those keys."""
    where = f"{api}: messages[{index}]"
    if isinstance(entry, Mapping):
        unknown = sorted(str(k) for k in entry if k not in _ENTRY_KEYS)
        if unknown or "destination_id" not in entry or "message" not in entry:
            raise ConfigError(
                f"{where} must have keys destination_id and message (optional: topic, idempotency_key); "
                f"got keys {sorted(str(k) for k in entry)}"
            )
        args = tuple(entry.get(k) for k in _ENTRY_KEYS)
    elif isinstance(entry, (tuple, list)) and 2 <= len(entry) <= 4:
        args = (*entry, None, None)[:4]
    else:
        raise ConfigError(
            f"{where} must be a tuple (destination_id, message[, topic[, idempotency_key]]) or a mapping "
            f"with those keys; got {type(entry).__name__}"
        )
    dest = checked_text(args[0], api, f"messages[{index}] destination_id")
    topic = checked_text(args[2], api, f"messages[{index}] topic", optional=True)
    key = None if args[3] is None else checked_text(args[3], api, f"messages[{index}] idempotency_key")
    data = serialization.dumps(args[1], what=f"message {index} sent to workflow {dest!r}")
    return dest, topic, data, key


def bulk_messages(messages: Any, api: str) -> list[OutMessage]:
    """Check and serialize the entries of a bulk send (before anything is written)."""
    if isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence):
        raise ConfigError(
            f"{api}: messages must be a list of (destination_id, message[, topic[, idempotency_key]]) "
            f"entries; got {type(messages).__name__}"
        )
    return [_bulk_entry(entry, i, api) for i, entry in enumerate(messages)]


def _bulk_plan(messages: Any) -> tuple[list[OutMessage], WorkflowContext | None, Slot | None]:
    out = bulk_messages(messages, SEND_BULK)
    ctx = workflow_or_none()
    if ctx is None or not out:
        return out, None, None
    slot = next_slot(ctx, SEND_BULK)
    if slot.recorded is None:
        ctx.check_cancelled()
    return out, ctx, slot


def _op_send_bulk(rt: Runtime, ctx: WorkflowContext | None, slot: Slot | None, out: list[OutMessage]) -> None:
    try:
        if ctx is None or slot is None:
            rt.store.message_send_bulk(messages=out, now=now_ms())
            return
        with fenced(ctx, SEND_BULK):
            rt.store.message_send_bulk_step(
                slot_row(ctx, slot, SEND_BULK, _NONE), executor_id=rt.executor_id, messages=out, now=now_ms()
            )
    except NotFound as exc:
        raise unknown_destination(str(exc), SEND_BULK, several=True) from None


def send_bulk(rt: Runtime, messages: Sequence[Any]) -> None:
    """Deliver many messages in one transaction: all of them, or none when a destination does not
    exist. In a workflow it is one step: sent once, whatever the replays."""
    out, ctx, slot = _bulk_plan(messages)
    if out and (slot is None or slot.recorded is None):
        _op_send_bulk(rt, ctx, slot, out)


async def send_bulk_async(rt: Runtime, messages: Sequence[Any]) -> None:
    out, ctx, slot = _bulk_plan(messages)
    if out and (slot is None or slot.recorded is None):
        await rt.aio(_op_send_bulk, rt, ctx, slot, out)


def _recv_plan(topic: Any, timeout_seconds: Any) -> tuple[WorkflowContext, str, int, Slot, Slot]:
    ctx = _require_workflow("DBOS.recv")
    top = checked_text(topic, "DBOS.recv", "topic", optional=True)
    ms = checked_duration_ms(timeout_seconds, "DBOS.recv", "timeout_seconds")
    deadline_slot = next_slot(ctx, RECV_DEADLINE)  # taken first: recorded before the outcome
    slot = next_slot(ctx, RECV)
    if slot.recorded is None:
        ctx.check_cancelled()
    return ctx, top, ms, deadline_slot, slot


def recv(topic: str | None, timeout_seconds: float) -> Any:
    """The oldest unread message for ``topic``, or None once the (recorded) timeout has passed.

    Every new message arrives as its own hint (Postgres NOTIFY, the SQLite poller). On SQLite "*"
    means only "another connection committed", so receivers skip it (thousands re-reading on each
    commit would swamp the store); on Postgres it means "hints may have been lost" (a reconnect)."""
    ctx, top, ms, deadline_slot, slot = _recv_plan(topic, timeout_seconds)
    if slot.recorded is not None:
        return slot_value(slot.recorded)
    wid = ctx.workflow_id
    star = ctx.runtime.store.pushes_wakeups
    with ctx.runtime.waiters.watch(Hint.MESSAGE, wid, top, also=_cancel_keys(ctx), wildcard=star) as waiter:
        taken = _op_take(ctx, slot, top)
        if taken is not None:
            return slot_value(taken)
        deadline = _op_deadline(ctx, deadline_slot, RECV_DEADLINE, ms)
        poll = POLL_S
        while now_ms() < deadline:
            if not waiter.wait(_left_s(deadline, poll)):
                poll = min(poll * 2, RECHECK_S)  # the safety net slows down: wake-ups are pushed
            ctx.check_cancelled()
            taken = _op_take(ctx, slot, top)
            if taken is not None:
                return slot_value(taken)
    return comm_steps.record(ctx, slot, RECV, _NONE)


async def recv_async(topic: str | None, timeout_seconds: float) -> Any:
    ctx, top, ms, deadline_slot, slot = _recv_plan(topic, timeout_seconds)
    if slot.recorded is not None:
        return slot_value(slot.recorded)
    rt = ctx.runtime
    wid = ctx.workflow_id
    star = rt.store.pushes_wakeups  # see recv
    with rt.waiters.watch(Hint.MESSAGE, wid, top, also=_cancel_keys(ctx), asynchronous=True, wildcard=star) as waiter:
        taken = await rt.aio(_op_take, ctx, slot, top)
        if taken is not None:
            return slot_value(taken)
        deadline = await rt.aio(_op_deadline, ctx, deadline_slot, RECV_DEADLINE, ms)
        poll = POLL_S
        while now_ms() < deadline:
            if not await waiter.wait_async(_left_s(deadline, poll)):
                poll = min(poll * 2, RECHECK_S)
            ctx.check_cancelled()
            taken = await rt.aio(_op_take, ctx, slot, top)
            if taken is not None:
                return slot_value(taken)
    return await rt.aio(comm_steps.record, ctx, slot, RECV, _NONE)


# -- events -------------------------------------------------------------------------------------
def _set_event_plan(key: Any, value: Any) -> tuple[WorkflowContext, str, bytes, Slot | None]:
    ctx = _require_workflow("DBOS.set_event", in_step_ok=True)
    k = checked_text(key, "DBOS.set_event", "key")
    data = serialization.dumps(value, what=f"the value of event {k!r}")
    if current_step.get() is not None:
        return ctx, k, data, None
    slot = next_slot(ctx, SET_EVENT)
    if slot.recorded is None:
        ctx.check_cancelled()
    return ctx, k, data, slot


def set_event(rt: Runtime, key: str, value: Any) -> None:
    """Publish ``key = value`` for this workflow (a step: the upsert commits with its checkpoint)."""
    ctx, k, data, slot = _set_event_plan(key, value)
    if slot is None or slot.recorded is None:
        _op_set_event(rt, ctx, slot, k, data)


async def set_event_async(rt: Runtime, key: str, value: Any) -> None:
    ctx, k, data, slot = _set_event_plan(key, value)
    if slot is None or slot.recorded is None:
        await rt.aio(_op_set_event, rt, ctx, slot, k, data)


@dataclass(frozen=True)
class _GetEvent:
    workflow_id: str
    key: str
    ms: int
    ctx: WorkflowContext | None
    deadline_slot: Slot | None
    slot: Slot | None


def _get_event_plan(workflow_id: Any, key: Any, timeout_seconds: Any) -> _GetEvent:
    wid = checked_text(workflow_id, "DBOS.get_event", "workflow_id")
    k = checked_text(key, "DBOS.get_event", "key")
    ms = checked_duration_ms(timeout_seconds, "DBOS.get_event", "timeout_seconds")
    ctx = workflow_or_none()
    if ctx is None:
        return _GetEvent(wid, k, ms, None, None, None)
    deadline_slot = next_slot(ctx, GET_EVENT_DEADLINE)
    slot = next_slot(ctx, GET_EVENT)
    if slot.recorded is None:
        ctx.check_cancelled()
    return _GetEvent(wid, k, ms, ctx, deadline_slot, slot)


def _event_deadline(plan: _GetEvent) -> int:
    if plan.ctx is None or plan.deadline_slot is None:
        return now_ms() + plan.ms
    return _op_deadline(plan.ctx, plan.deadline_slot, GET_EVENT_DEADLINE, plan.ms)


def _event_result(plan: _GetEvent, data: bytes | None) -> Any:
    """The value seen (None at timeout); in a workflow it is recorded, so replays see the same."""
    if plan.ctx is None or plan.slot is None:
        return serialization.loads(data)
    return comm_steps.record(plan.ctx, plan.slot, GET_EVENT, data if data is not None else _NONE)


def get_event(rt: Runtime, workflow_id: str, key: str, timeout_seconds: float) -> Any:
    """Wait until workflow ``workflow_id`` sets event ``key`` (its value), or None at the timeout."""
    plan = _get_event_plan(workflow_id, key, timeout_seconds)
    if plan.slot is not None and plan.slot.recorded is not None:
        return slot_value(plan.slot.recorded)
    with rt.waiters.watch(Hint.EVENT, plan.workflow_id, plan.key, also=_cancel_keys(plan.ctx)) as waiter:
        data = rt.store.event_get(plan.workflow_id, plan.key)
        if data is None:
            deadline = _event_deadline(plan)
            while data is None and now_ms() < deadline:
                waiter.wait(_left_s(deadline, POLL_S))
                if plan.ctx is not None:
                    plan.ctx.check_cancelled()
                data = rt.store.event_get(plan.workflow_id, plan.key)
    return _event_result(plan, data)


def get_all_events(rt: Runtime, workflow_id: str) -> dict[str, Any]:
    """Every event workflow ``workflow_id`` has set, key -> value. In a workflow the answer is a
    step: a replay returns what the first run saw."""
    workflow_id = checked_text(workflow_id, "DBOS.get_all_events", "workflow_id")

    def read() -> dict[str, Any]:
        return {key: serialization.loads(data) for key, data in rt.store.events_get_all(workflow_id).items()}

    return dict(recorded_read(GET_ALL_EVENTS, read))


async def get_all_events_async(rt: Runtime, workflow_id: str) -> dict[str, Any]:
    context = contextvars.copy_context()  # the workflow position is taken in the caller's context
    return await rt.aio(context.run, get_all_events, rt, workflow_id)


async def get_event_async(rt: Runtime, workflow_id: str, key: str, timeout_seconds: float) -> Any:
    plan = _get_event_plan(workflow_id, key, timeout_seconds)
    if plan.slot is not None and plan.slot.recorded is not None:
        return slot_value(plan.slot.recorded)
    watch = rt.waiters.watch(Hint.EVENT, plan.workflow_id, plan.key, also=_cancel_keys(plan.ctx), asynchronous=True)
    with watch as waiter:
        data = await rt.aio(rt.store.event_get, plan.workflow_id, plan.key)
        if data is None:
            deadline = await rt.aio(_event_deadline, plan)
            while data is None and now_ms() < deadline:
                await waiter.wait_async(_left_s(deadline, POLL_S))
                if plan.ctx is not None:
                    plan.ctx.check_cancelled()
                data = await rt.aio(rt.store.event_get, plan.workflow_id, plan.key)
    return await rt.aio(_event_result, plan, data)


# -- streams ------------------------------------------------------------------------------------
def _stream_plan(name: str, key: Any, value: Any) -> tuple[WorkflowContext, str, bytes | None, Slot | None]:
    api = name
    ctx = _require_workflow(api, in_step_ok=True)
    k = checked_text(key, api, "key")
    data = None if name == CLOSE_STREAM else serialization.dumps(value, what=f"the value written to stream {k!r}")
    if current_step.get() is not None:
        return ctx, k, data, None  # inside a step: appended without a checkpoint (at least once)
    slot = next_slot(ctx, name)
    if slot.recorded is None:
        ctx.check_cancelled()
    return ctx, k, data, slot


def write_stream(rt: Runtime, key: str, value: Any, *, close: bool = False) -> None:
    """Append ``value`` to this workflow's stream ``key`` (or close it): exactly once per position."""
    name = CLOSE_STREAM if close else WRITE_STREAM
    ctx, k, data, slot = _stream_plan(name, key, value)
    if slot is None or slot.recorded is None:
        _op_stream(rt, ctx, slot, name, k, data)


async def write_stream_async(rt: Runtime, key: str, value: Any, *, close: bool = False) -> None:
    name = CLOSE_STREAM if close else WRITE_STREAM
    ctx, k, data, slot = _stream_plan(name, key, value)
    if slot is None or slot.recorded is None:
        await rt.aio(_op_stream, rt, ctx, slot, name, k, data)
