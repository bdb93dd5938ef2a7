"""Communication for late arrivals: where a stream's next value will go, and a send that reaches
every fork of its destination.

- ``read_stream_offset``: the offset the next value written to a stream takes (its number of
  values; 0 for a stream never written). A reader that wants only new values passes it to
  ``read_stream(offset=...)``. Like ``read_stream``, an unknown workflow id raises
  ``WorkflowNotFoundError``. In a workflow the answer is a step: a replay returns the recorded number.
- ``send_to_forks``: delivers a message to a workflow and to every workflow forked from it, at any
  depth, that has not finished (the destination too is skipped once finished), in one transaction;
  returns the ids it was delivered to (the destination first, then each generation of forks in
  creation order). An unknown destination raises ``WorkflowNotFoundError`` and sends nothing, as
  ``send`` does. In a workflow it is one step: sent once whatever the replays, and a replay
  returns the recorded ids. A fork created after the send does not receive the message.

The application (``DBOS``) and ``DBOSClient`` share the plain forms. Must not import the facade.
"""

from __future__ import annotations

import contextvars
from typing import Any

from transact.engine import serialization
from transact.engine.clock import now_ms
from transact.engine.comm_steps import (
    fenced,
    next_slot,
    recorded_read,
    slot_row,
    slot_value,
    unknown_destination,
    workflow_or_none,
)
from transact.engine.comms import checked_text
from transact.engine.runtime import Runtime
from transact.errors import WorkflowNotFoundError
from transact.storage import NotFound, Store

READ_STREAM_OFFSET = "DBOS.read_stream_offset"
SEND_TO_FORKS = "DBOS.send_to_forks"


# -- read_stream_offset ---------------------------------------------------------------------------
def stream_offset(store: Store, workflow_id: Any, key: Any, *, api: str = READ_STREAM_OFFSET) -> int:
    """The offset the next value of stream ``key`` of ``workflow_id`` takes, read now (not recorded)."""
    return _offset(store, checked_text(workflow_id, api, "workflow_id"), checked_text(key, api, "key"), api)


def _offset(store: Store, wid: str, key: str, api: str) -> int:
    offset = store.stream_offset(wid, key)
    if offset is None:
        err = WorkflowNotFoundError(wid)
        err.args = (f"{api}: no workflow with id {wid!r} exists, so its stream {key!r} has no offset",)
        raise err
    return offset


def read_stream_offset(rt: Runtime, workflow_id: str, key: str) -> int:
    """``stream_offset``; in a workflow (outside its steps) recorded as a step, so a replay
    returns the number the first run saw."""
    wid = checked_text(workflow_id, READ_STREAM_OFFSET, "workflow_id")
    k = checked_text(key, READ_STREAM_OFFSET, "key")
    return int(recorded_read(READ_STREAM_OFFSET, lambda: _offset(rt.store, wid, k, READ_STREAM_OFFSET)))


async def read_stream_offset_async(rt: Runtime, workflow_id: str, key: str) -> int:
    context = contextvars.copy_context()  # the workflow position is taken in the caller's context
    return await rt.aio(context.run, read_stream_offset, rt, workflow_id, key)


# -- send_to_forks --------------------------------------------------------------------------------
def _encode_ids(ids: list[str]) -> bytes:
    return serialization.dumps(ids, what=f"the ids {SEND_TO_FORKS} delivered to")


def _checked_send(destination_id: Any, message: Any, topic: Any, api: str) -> tuple[str, str, bytes]:
    dest = checked_text(destination_id, api, "destination_id")
    top = checked_text(topic, api, "topic", optional=True)
    data = serialization.dumps(message, what=f"the message sent to workflow {dest!r} and its forks")
    return dest, top, data


def send_to_forks_plain(store: Store, destination_id: Any, message: Any, topic: Any, *, api: str) -> list[str]:
    """``send_to_forks`` outside a workflow (no step): returns the ids delivered to."""
    dest, top, data = _checked_send(destination_id, message, topic, api)
    try:
        return store.message_send_forks(destination_id=dest, topic=top, message=data, now=now_ms())
    except NotFound:
        raise unknown_destination(dest, api) from None


def send_to_forks(rt: Runtime, destination_id: str, message: Any, topic: str | None) -> list[str]:
    """Deliver ``message`` to ``destination_id`` and its unfinished forks (see the module)."""
    ctx = workflow_or_none()
    if ctx is None:
        return send_to_forks_plain(rt.store, destination_id, message, topic, api=SEND_TO_FORKS)
    dest, top, data = _checked_send(destination_id, message, topic, SEND_TO_FORKS)
    slot = next_slot(ctx, SEND_TO_FORKS)
    if slot.recorded is not None:
        return list(slot_value(slot.recorded))
    ctx.check_cancelled()
    try:
        with fenced(ctx, SEND_TO_FORKS):
            recorded = rt.store.message_send_forks_step(
                slot_row(ctx, slot, SEND_TO_FORKS, None),
                executor_id=rt.executor_id,
                destination_id=dest,
                topic=top,
                message=data,
                now=now_ms(),
                output=_encode_ids,
            )
    except NotFound:
        raise unknown_destination(dest, SEND_TO_FORKS) from None
    return list(slot_value(recorded))


async def send_to_forks_async(rt: Runtime, destination_id: str, message: Any, topic: str | None) -> list[str]:
    context = contextvars.copy_context()  # the workflow position is taken in the caller's context
    return await rt.aio(context.run, send_to_forks, rt, destination_id, message, topic)
