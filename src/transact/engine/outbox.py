"""The transactional outbox: enqueue a workflow or send a message inside the caller's own database
transaction on the system database (storage/outbox.py writes the rows through that connection).

The row is built exactly like any other start (``starts.new_row`` via ``starts.plan`` or
``admin.enqueue_row``) and serialized the same way; only the connection differs. It becomes
visible, and wakes workers, when the caller commits; a rollback leaves nothing. The write is
idempotent by workflow id (reusing an id returns the existing workflow), so a retried business
transaction never runs a workflow twice. Must not import the facade.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from transact._options import current_enqueue_options
from transact.engine import admin, serialization, starts
from transact.engine.clock import now_ms
from transact.engine.comms import checked_text
from transact.engine.context import current_step, current_workflow
from transact.engine.registry import WorkflowInfo
from transact.engine.runs import check_same_workflow
from transact.errors import ConfigError, QueueDeduplicatedError, WorkflowConflictError, WorkflowNotFoundError
from transact.storage import Conflict, NotFound, Store
from transact.storage.outbox import BadConnection
from transact.storage.rows import WorkflowRow

if TYPE_CHECKING:
    from transact.engine.runtime import Runtime


def insert(store: Store, conn: Any, row: WorkflowRow, *, what: str) -> WorkflowRow:
    """Write ``row`` through ``conn``; the stored row (an existing one when its id is taken by the
    same workflow). Errors are those of ``starts.insert``, plus ConfigError for a bad connection."""
    try:
        stored, inserted = store.outbox_workflow_insert(conn, row, what=what)
    except BadConnection as exc:
        raise ConfigError(str(exc)) from None
    except Conflict:
        raise QueueDeduplicatedError(row.workflow_id, row.queue_name or "", row.deduplication_id or "") from None
    if not inserted:
        check_same_workflow(row.workflow_id, stored.name, row.name)
        opts = current_enqueue_options()
        if opts is not None and opts.workflow_id_reuse_policy == "reject":
            raise WorkflowConflictError(
                f"cannot enqueue workflow {row.workflow_id!r}: that id is already taken (status {stored.status}) "
                "and SetEnqueueOptions(workflow_id_reuse_policy='reject') refuses to return it; use a new id",
                row.workflow_id,
            )
    return stored


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
    if current_workflow.get() is not None and current_step.get() is None:
        raise ConfigError(
            f"{what} cannot be called in a workflow's body (its database transaction is not a checkpoint); "
            "call it in a step (@DBOS.step()) or outside workflows, or use DBOS.enqueue_workflow in the workflow"
        )
    plan = starts.plan(rt, info, args, kwargs, queue=queue)
    return insert(rt.store, conn, plan.row, what=what).workflow_id


def enqueue_by_name(
    store: Store, conn: Any, options: Mapping[str, Any], args: Sequence[Any], kwargs: Mapping[str, Any], *, what: str
) -> str:
    """A client's enqueue (``options`` as for ``DBOSClient.enqueue``) in the caller's transaction.
    The queue must be registered (every launched application registers the queues it declares)."""
    row = admin.enqueue_row(options, args, kwargs)
    queue_name = row.queue_name or ""
    if store.queue_get(queue_name=queue_name) is None:
        raise ConfigError(
            f"{what}: no queue {queue_name!r} is registered: launch an application that declares it, or register "
            f"it with register_queue({queue_name!r}, ...) first"
        )
    return insert(store, conn, row, what=what).workflow_id


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
    dest = checked_text(destination_id, what, "destination_id")
    top = checked_text(topic, what, "topic", optional=True)
    key = None if idempotency_key is None else checked_text(idempotency_key, what, "idempotency_key")
    data = serialization.dumps(message, what=f"the message sent to workflow {dest!r}")
    try:
        store.outbox_message_send(
            conn, destination_id=dest, topic=top, message=data, idempotency_key=key, now=now_ms(), what=what
        )
    except BadConnection as exc:
        raise ConfigError(str(exc)) from None
    except NotFound:
        raise WorkflowNotFoundError(dest) from None
