"""Starting a workflow: one path for every way in.

A direct call, a child, ``start_workflow``, an enqueue (sync or async), a client's enqueue by name
and a fork all build their row with ``new_row``, serialize inputs with
``serialization.dumps_inputs`` and insert through ``insert``, which translates every conflict the
same way. Validate -> serialize -> write: nothing touches the database until the row is whole.
Must not import the facade.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from transact._lib.states import Status
from transact._options import current_enqueue_options, current_timeout, take_workflow_attributes, take_workflow_id
from transact.engine import auth, serialization, tracing
from transact.engine.clock import now_ms
from transact.engine.context import WorkflowContext, current_step, current_workflow
from transact.engine.ids import new_workflow_id
from transact.engine.registry import ConfiguredInstance, WorkflowInfo
from transact.engine.replay import recorded_outcome
from transact.engine.runs import check_same_workflow
from transact.errors import DBOSWorkflowCancelledError, NotLaunchedError, QueueDeduplicatedError, WorkflowConflictError
from transact.storage import Conflict, Store, WorkflowNotPending
from transact.storage.rows import WorkflowRow

if TYPE_CHECKING:
    from transact.engine.runtime import Runtime


@dataclass(frozen=True)
class QueueSpec:
    """Where and how an enqueued workflow waits: checked by the queue (or client) before use."""

    queue_name: str
    deduplication_id: str | None = None
    priority: int = 0
    partition_key: str | None = None
    delay_seconds: float | None = None
    app_version: str | None = None
    # The application that dequeues and runs it; None: the enqueuing application.
    application_name: str | None = None


@dataclass
class StartPlan:
    """A row ready to insert, with the parent position it is recorded at (children), or the child
    id a replay already recorded there (then nothing is inserted)."""

    row: WorkflowRow
    parent: WorkflowContext | None = None
    function_id: int | None = None
    recorded_child: str | None = None


def new_row(
    *,
    workflow_id: str,
    name: str,
    inputs: bytes | None,
    now: int,
    queue: QueueSpec | None = None,
    executor_id: str | None = None,
    app_version: str | None = None,
    timeout_ms: int | None = None,
    deadline_at: int | None = None,
    parent_id: str | None = None,
    forked_from: str | None = None,
    class_name: str | None = None,
    config_name: str | None = None,
    attributes: str | None = None,
    application_name: str | None = None,
    caller: auth.Auth | None = None,
) -> WorkflowRow:
    """The one shape of a new workflow row. Queued rows wait ENQUEUED (DELAYED with a delay),
    unowned and without a deadline: their timeout starts when a worker dequeues them.
    ``application_name`` owns it (the queue's ``application_name`` when it names one).
    ``caller``: who starts it when the start names it (a client's enqueue options); else the
    caller's auth context."""
    status = Status.PENDING
    if queue is not None:
        status = Status.DELAYED if queue.delay_seconds else Status.ENQUEUED
        app_version = queue.app_version or app_version
        application_name = queue.application_name or application_name
    if caller is None:
        user, assumed_role, roles = auth.row_fields(name)  # who starts it (a child: its parent's user)
    else:
        user, assumed_role, roles = auth.fields_of(caller)
    return WorkflowRow(
        workflow_id=workflow_id,
        status=status,
        name=name,
        class_name=class_name,
        config_name=config_name,
        queue_name=queue.queue_name if queue else None,
        queue_partition_key=queue.partition_key if queue else None,
        deduplication_id=queue.deduplication_id if queue else None,
        priority=queue.priority if queue else 0,
        inputs=inputs,
        executor_id=executor_id if queue is None else None,
        app_version=app_version,
        recovery_attempts=0,
        parent_workflow_id=parent_id,
        forked_from=forked_from,
        created_at=now,
        updated_at=now,
        available_at=now + int((queue.delay_seconds or 0) * 1000) if status == Status.DELAYED and queue else None,
        started_at=now if queue is None else None,
        timeout_ms=timeout_ms,
        deadline_at=deadline_at if queue is None else None,
        authenticated_user=user,
        assumed_role=assumed_role,
        authenticated_roles=roles,
        trace_context=tracing.carrier(),  # the caller's trace: the run continues it
        attributes=attributes,
        application_name=application_name,
    )


def plan(
    rt: Runtime,
    info: WorkflowInfo,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    queue: QueueSpec | None = None,
    workflow_id: str | None = None,
) -> StartPlan:
    """Plan a start from the caller's context (``SetWorkflowID``, ``SetWorkflowTimeout``, the
    parent workflow): validated and serialized, nothing written yet."""
    if not rt.launched:
        raise NotLaunchedError(f"call DBOS.launch() before starting workflow {info.name!r}")
    parent = current_workflow.get()
    if current_step.get() is not None:
        parent = None  # a workflow started from inside a step is not a child checkpoint
    explicit = workflow_id or take_workflow_id()
    attributes = take_workflow_attributes(queue is not None)
    function_id = None
    if parent is not None:
        function_id = parent.next_function_id()
        recorded = recorded_outcome(
            parent.recorded, workflow_id=parent.workflow_id, function_id=function_id, name=info.name
        )
        if recorded is not None:
            return StartPlan(
                row=WorkflowRow(workflow_id=recorded.child_workflow_id or "", status="", name=info.name),
                parent=parent,
                function_id=function_id,
                recorded_child=recorded.child_workflow_id,
            )
        parent.check_cancelled()
    wid = explicit or (f"{parent.workflow_id}-{function_id}" if parent is not None else new_workflow_id())
    class_name, config_name, stored_args = _target(rt, info, args)
    portable = info.portable
    if queue is not None and not portable:
        opts = current_enqueue_options()
        portable = opts is not None and opts.portable
    inputs = serialization.dumps_inputs(info.func, stored_args, kwargs, workflow=info.name, portable=portable)
    now = now_ms()
    timeout = current_timeout()
    timeout_ms = int(timeout * 1000) if timeout is not None else None
    deadline = None
    if queue is None:
        deadline = now + timeout_ms if timeout_ms is not None else None
        if parent is not None and parent.deadline_at is not None and timeout is None:
            deadline = parent.deadline_at  # children inherit the parent's deadline
    row = new_row(
        workflow_id=wid,
        name=info.name,
        inputs=inputs,
        now=now,
        queue=queue,
        executor_id=rt.executor_id if queue is None else None,
        app_version=rt.app_version,
        timeout_ms=timeout_ms,
        deadline_at=deadline,
        parent_id=parent.workflow_id if parent is not None else None,
        class_name=class_name,
        config_name=config_name,
        attributes=attributes,
        application_name=rt.settings.name,  # children and scheduled runs too: this application runs them
    )
    return StartPlan(row=row, parent=parent, function_id=function_id)


def _target(rt: Runtime, info: WorkflowInfo, args: tuple[Any, ...]) -> tuple[str | None, str | None, tuple[Any, ...]]:
    """A method's instance or class is recorded by name, not pickled: (class name, config name,
    the arguments to store). Recovery finds the registered instance or class again by that name."""
    if not info.takes_target or not args:
        return None, None, args
    target = args[0]
    if isinstance(target, ConfiguredInstance):
        return rt.registry.class_name(type(target)), target.config_name, args[1:]
    if isinstance(target, type):
        name = rt.registry.class_name(target)
        rt.registry.classes.setdefault(name, target)
        return name, None, args[1:]
    return None, None, args  # an ordinary object: stored with the arguments (it must pickle)


def insert_plan(rt: Runtime, plan: StartPlan) -> tuple[WorkflowRow, bool]:
    """Insert a planned start (a child together with its parent's checkpoint)."""
    if plan.parent is not None and plan.function_id is not None:
        return insert(
            rt.store,
            plan.row,
            parent_id=plan.parent.workflow_id,
            function_id=plan.function_id,
            executor_id=rt.executor_id,
        )
    return insert(rt.store, plan.row)


def insert(
    store: Store,
    row: WorkflowRow,
    *,
    parent_id: str | None = None,
    function_id: int | None = None,
    executor_id: str | None = None,
) -> tuple[WorkflowRow, bool]:
    """Insert ``row`` idempotently: ``(stored, True)`` when written, ``(existing, False)`` when the
    id is already taken by the same workflow. Every start's conflicts are translated here."""
    try:
        if parent_id is not None and function_id is not None:
            stored, inserted = store.child_insert(
                row, parent_id=parent_id, function_id=function_id, executor_id=executor_id or "", now=row.created_at
            )
        else:
            stored, inserted = store.workflow_insert(row)
    except Conflict as exc:
        if row.deduplication_id is not None:
            raise QueueDeduplicatedError(row.workflow_id, row.queue_name or "", row.deduplication_id) from exc
        raise
    except WorkflowNotPending as exc:
        raise DBOSWorkflowCancelledError.of(exc.workflow_id, f"is {exc.status}; its child was not started") from None
    if not inserted:
        check_same_workflow(row.workflow_id, stored.name, row.name)
        opts = current_enqueue_options() if row.queue_name is not None else None
        if opts is not None and opts.workflow_id_reuse_policy == "reject":
            raise WorkflowConflictError(
                f"cannot enqueue workflow {row.workflow_id!r}: that id is already taken (status {stored.status}) "
                "and SetEnqueueOptions(workflow_id_reuse_policy='reject') refuses to return it; use a new id",
                row.workflow_id,
            )
    return stored, inserted
