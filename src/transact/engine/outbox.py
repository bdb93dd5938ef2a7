"""The transactional outbox: enqueue a workflow or send a message inside the caller's own database
transaction on the system database (storage/outbox.py writes the rows through that connection).

The row is built exactly like any other start (``starts.new_row`` via ``starts.plan`` or
``by_name.enqueue_row``) and serialized the same way; only the connection differs. It becomes
visible, and wakes workers, when the caller commits; a rollback leaves nothing. The write is
idempotent by workflow id (reusing an id returns the existing workflow), so a retried business
transaction never runs a workflow twice. Must not import the facade.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from transact._options import EnqueueOptions, current_enqueue_options
from transact.engine import by_name, serialization, starts
from transact.engine.clock import now_ms
from transact.engine.comms import checked_text
from transact.engine.context import current_step, current_workflow
from transact.engine.registry import WorkflowInfo
from transact.engine.runs import check_same_workflow
from transact.errors import ConfigError, QueueDeduplicatedError, WorkflowConflictError, WorkflowNotFoundError
from transact.storage import Conflict, NotFound, Store
from transact.storage.outbox import BadConnection, DedupConflict, on_caller_async
from transact.storage.rows import WorkflowRow

if TYPE_CHECKING:
    from transact.engine.runtime import Runtime

T = TypeVar("T")


def insert(store: Store, conn: Any, row: WorkflowRow, *, what: str, opts: EnqueueOptions | None) -> str:
    """Write ``row`` through ``conn``; the workflow id (an existing one's when its id is taken by
    the same workflow, or the holder of its deduplication id under ``duplication_policy=
    'return_existing'``). Errors are those of ``starts.insert``, plus ConfigError for a bad
    connection. ``opts``: the caller's ``SetEnqueueOptions``, read before any thread hop."""
    try:
        stored, inserted = store.outbox_workflow_insert(conn, row, what=what)
    except BadConnection as exc:
        raise ConfigError(str(exc)) from None
    except Conflict as exc:
        holder = exc.holder if isinstance(exc, DedupConflict) else None
        if holder is not None and opts is not None and opts.duplication_policy == "return_existing":
            return holder
        raise QueueDeduplicatedError(row.workflow_id, row.queue_name or "", row.deduplication_id or "") from None
    if not inserted:
        check_same_workflow(row.workflow_id, stored.name, row.name)
        if opts is not None and opts.workflow_id_reuse_policy == "reject":
            raise WorkflowConflictError(
                f"cannot enqueue workflow {row.workflow_id!r}: that id is already taken (status {stored.status}) "
                "and SetEnqueueOptions(workflow_id_reuse_policy='reject') refuses to return it; use a new id",
                row.workflow_id,
            )
    return stored.workflow_id


def _plan(
    rt: Runtime, info: WorkflowInfo, args: tuple[Any, ...], kwargs: dict[str, Any], queue: starts.QueueSpec, what: str
) -> WorkflowRow:
    if current_workflow.get() is not None and current_step.get() is None:
        raise ConfigError(
            f"{what} cannot be called in a workflow's body (its database transaction is not a checkpoint); "
            "call it in a step (@DBOS.step()) or outside workflows, or use DBOS.enqueue_workflow in the workflow"
        )
    return starts.plan(rt, info, args, kwargs, queue=queue).row


def enqueue(
    rt: Runtime,
    conn: Any,
    info: WorkflowInfo,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    queue: starts.QueueSpec,
    *,
    what: str,
) -> str:
    """Enqueue ``info`` on ``queue`` in the caller's transaction; returns the workflow id.

    Refused in a workflow's body: the caller's transaction is not a checkpoint, so a replay would
    enqueue again under a new id. In a step, or outside workflows, it is an ordinary enqueue
    (``SetWorkflowID`` and ``SetWorkflowTimeout`` apply)."""
    row = _plan(rt, info, args, kwargs, queue, what)
    return insert(rt.store, conn, row, what=what, opts=current_enqueue_options())


async def enqueue_async(
    rt: Runtime,
    conn: Any,
    info: WorkflowInfo,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    queue: starts.QueueSpec,
    *,
    what: str,
) -> str:
    """``enqueue`` through an async connection (see ``storage.outbox.on_caller_async``)."""
    row = _plan(rt, info, args, kwargs, queue, what)
    opts = current_enqueue_options()
    return await _on_caller(conn, lambda c: insert(rt.store, c, row, what=what, opts=opts), what)


async def _on_caller(conn: Any, fn: Callable[[Any], T], what: str) -> T:
    try:
        return await on_caller_async(conn, fn, what)
    except BadConnection as exc:
        raise ConfigError(str(exc)) from None


def enqueue_by_name(
    store: Store, conn: Any, options: Mapping[str, Any], args: Sequence[Any], kwargs: Mapping[str, Any], *, what: str
) -> str:
    """A client's enqueue (``options`` as for ``DBOSClient.enqueue``, plus ``duplication_policy``)
    in the caller's transaction. The queue must be registered (every launched application
    registers the queues it declares)."""
    row, opts = _client_row(options, args, kwargs)
    _check_registered(store, row, what)
    return insert(store, conn, row, what=what, opts=opts)


async def enqueue_by_name_async(
    store: Store, conn: Any, options: Mapping[str, Any], args: Sequence[Any], kwargs: Mapping[str, Any], *, what: str
) -> str:
    """``enqueue_by_name`` through an async connection (the registry check runs off the loop)."""
    row, opts = _client_row(options, args, kwargs)
    await asyncio.to_thread(_check_registered, store, row, what)
    return await _on_caller(conn, lambda c: insert(store, c, row, what=what, opts=opts), what)


def _client_row(
    options: Mapping[str, Any], args: Sequence[Any], kwargs: Mapping[str, Any]
) -> tuple[WorkflowRow, EnqueueOptions | None]:
    row = by_name.enqueue_row(options, args, kwargs)
    return row, EnqueueOptions(duplication_policy=by_name.duplication_policy(options))


def _check_registered(store: Store, row: WorkflowRow, what: str) -> None:
    queue_name = row.queue_name or ""
    if store.queue_get(queue_name=queue_name) is None:
        raise ConfigError(
            f"{what}: no queue {queue_name!r} is registered: launch an application that declares it, or register "
            f"it with register_queue({queue_name!r}, ...) first"
        )


def _send_args(
    destination_id: Any, message: Any, topic: Any, idempotency_key: Any, what: str
) -> tuple[str, str, bytes, str | None]:
    dest = checked_text(destination_id, what, "destination_id")
    top = checked_text(topic, what, "topic", optional=True)
    key = None if idempotency_key is None else checked_text(idempotency_key, what, "idempotency_key")
    return dest, top, serialization.dumps(message, what=f"the message sent to workflow {dest!r}"), key


def _send_on(store: Store, conn: Any, dest: str, top: str, data: bytes, key: str | None, what: str) -> None:
    try:
        store.outbox_message_send(
            conn, destination_id=dest, topic=top, message=data, idempotency_key=key, now=now_ms(), what=what
        )
    except BadConnection as exc:
        raise ConfigError(str(exc)) from None
    except NotFound:
        raise WorkflowNotFoundError(dest) from None


def send(
    store: Store,
    conn: Any,
    destination_id: Any,
    message: Any,
    topic: Any,
    idempotency_key: Any,
    *,
    what: str,
) -> None:
    """Deliver a message in the caller's transaction: received once if the caller commits, never
    if it rolls back. The destination may be a workflow enqueued earlier in the same transaction."""
    _send_on(store, conn, *_send_args(destination_id, message, topic, idempotency_key, what), what)


async def send_async(
    store: Store,
    conn: Any,
    destination_id: Any,
    message: Any,
    topic: Any,
    idempotency_key: Any,
    *,
    what: str,
) -> None:
    """``send`` through an async connection (see ``storage.outbox.on_caller_async``)."""
    args = _send_args(destination_id, message, topic, idempotency_key, what)
    await _on_caller(conn, lambda c: _send_on(store, c, *args, what), what)
