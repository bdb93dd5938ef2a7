"""Workflow lifecycle: idempotent start (direct call, background, enqueue), run, finish, resume.

One insert round trip to start, one fenced update to finish. Sync and async shells share
``plan_start``/``_finish_row``. Must not import the facade.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from transact._options import current_timeout, take_workflow_id
from transact.engine import serialization, status
from transact.engine.clock import now_ms
from transact.engine.context import ShutdownInterrupt, WorkflowContext, current_step, current_workflow
from transact.engine.ids import new_workflow_id
from transact.engine.registry import WorkflowInfo
from transact.engine.replay import recorded_outcome
from transact.engine.runtime import NotLocal, Runtime
from transact.errors import (
    DeterminismError,
    MaxRecoveryAttemptsExceededError,
    NotLaunchedError,
    QueueDeduplicatedError,
    WorkflowCancelledError,
    WorkflowConflictError,
)
from transact.storage import Conflict, OwnershipLost, WorkflowNotPending
from transact.storage.rows import StepRow, WorkflowRow

log = logging.getLogger("transact")


@dataclass
class StartPlan:
    row: WorkflowRow
    parent: WorkflowContext | None = None
    function_id: int | None = None
    recorded_child: str | None = None


@dataclass(frozen=True)
class QueueSpec:
    queue_name: str
    deduplication_id: str | None = None
    priority: int = 0
    partition_key: str | None = None
    delay_seconds: float | None = None
    app_version: str | None = None


def plan_start(
    rt: Runtime,
    info: WorkflowInfo,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    queue: QueueSpec | None = None,
    workflow_id: str | None = None,
) -> StartPlan:
    """Validate and serialize everything before the database is touched (nothing half-written)."""
    if not rt.launched:
        raise NotLaunchedError(f"call DBOS.launch() before starting workflow {info.name!r}")
    parent = current_workflow.get()
    if current_step.get() is not None:
        parent = None  # a workflow started from inside a step is not a child checkpoint
    explicit = workflow_id or take_workflow_id()
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
    inputs = serialization.dumps_inputs(info.func, args, kwargs, workflow=info.name)
    now = now_ms()
    timeout = current_timeout()
    timeout_ms = int(timeout * 1000) if timeout is not None else None
    deadline = None
    if queue is None:
        deadline = now + timeout_ms if timeout_ms is not None else None
        if parent is not None and parent.deadline_at is not None and timeout is None:
            deadline = parent.deadline_at  # children inherit the parent's deadline
    status = "PENDING"
    available_at = None
    if queue is not None:
        status = "ENQUEUED"
        if queue.delay_seconds:
            status = "DELAYED"
            available_at = now + int(queue.delay_seconds * 1000)
    row = WorkflowRow(
        workflow_id=wid,
        status=status,
        name=info.name,
        queue_name=queue.queue_name if queue else None,
        queue_partition_key=queue.partition_key if queue else None,
        deduplication_id=queue.deduplication_id if queue else None,
        priority=queue.priority if queue else 0,
        inputs=inputs,
        executor_id=rt.executor_id if queue is None else None,
        app_version=(queue.app_version if queue and queue.app_version else rt.app_version),
        recovery_attempts=0,
        parent_workflow_id=parent.workflow_id if parent is not None else None,
        created_at=now,
        updated_at=now,
        available_at=available_at,
        started_at=now if queue is None else None,
        timeout_ms=timeout_ms,
        deadline_at=deadline,
    )
    return StartPlan(row=row, parent=parent, function_id=function_id)


def insert(rt: Runtime, plan: StartPlan) -> tuple[WorkflowRow, bool]:
    row = plan.row
    try:
        if plan.parent is not None and plan.function_id is not None:
            stored, inserted = rt.store.child_insert(
                row,
                parent_id=plan.parent.workflow_id,
                function_id=plan.function_id,
                executor_id=rt.executor_id,
                now=row.created_at,
            )
        else:
            stored, inserted = rt.store.workflow_insert(row)
    except Conflict as exc:
        if row.deduplication_id is not None:
            raise QueueDeduplicatedError(row.workflow_id, row.queue_name or "", row.deduplication_id) from exc
        raise
    except WorkflowNotPending as exc:
        raise WorkflowCancelledError(exc.workflow_id) from None
    if not inserted and stored.name != row.name:
        raise WorkflowConflictError(
            f"workflow id {row.workflow_id!r} already belongs to workflow {stored.name!r}; "
            f"it cannot be reused for {row.name!r}. Choose another id."
        )
    return stored, inserted


def new_context(rt: Runtime, row: WorkflowRow, recorded: dict[int, Any] | None = None) -> WorkflowContext:
    return WorkflowContext(
        workflow_id=row.workflow_id,
        name=row.name,
        runtime=rt,
        recorded=recorded or {},
        deadline_at=row.deadline_at,
        resumed=row.recovery_attempts > 0 or bool(recorded),
    )


# -- running a body -----------------------------------------------------------------------------
def _finish_row(rt: Runtime, ctx: WorkflowContext, value: Any, error: BaseException | None) -> Any:
    """Write the final outcome and return the value the caller should see (or raise)."""
    output = err = None
    status = "SUCCESS"
    if error is None:
        try:
            output = serialization.dumps(value, what=f"the result of workflow {ctx.name!r}")
        except Exception as exc:
            error = exc
    if error is not None:
        status = "ERROR"
        err = serialization.dumps_error(error)
        if isinstance(error, DeterminismError):  # the code changed under a recovered workflow
            log.error("%s", error)
    try:
        rt.store.workflow_finish(
            workflow_id=ctx.workflow_id,
            executor_id=rt.executor_id,
            status=status,
            output=output,
            error=err,
            now=now_ms(),
        )
    except WorkflowNotPending as exc:
        raise WorkflowCancelledError(ctx.workflow_id, f"is {exc.status}") from None
    if error is not None:
        raise error
    return value


def _hand_back(rt: Runtime, ctx: WorkflowContext) -> bool:
    """After an interrupted run: if the row is still PENDING and ours (the cancel was stale, e.g. a
    late notification after a resume), release it so recovery runs it again instead of stranding it."""
    if rt.stopping.is_set():
        return False  # shutdown releases everything anyway
    if not rt.store.workflows_release(executor_id=rt.executor_id, now=now_ms(), workflow_id=ctx.workflow_id):
        return False
    log.warning("workflow %s was interrupted but is still pending; handing it back to recovery", ctx.workflow_id)
    rt.store.hint("executor", rt.executor_id)  # wake this process's recovery pass now
    return True


def execute(rt: Runtime, ctx: WorkflowContext, info: WorkflowInfo, args: Any, kwargs: Any) -> Any:
    """Run the body and record its outcome. Raises NotLocal when the result will come from
    elsewhere (adopted by another executor, or handed back after a stale interruption)."""
    rt.register_context(ctx)
    token = current_workflow.set(ctx)
    try:
        try:
            value = info.func(*args, **kwargs)
        except ShutdownInterrupt:
            raise
        except OwnershipLost as exc:
            log.warning("workflow %s was adopted by another executor (%s)", ctx.workflow_id, exc)
            raise NotLocal() from exc
        except WorkflowCancelledError:
            if _hand_back(rt, ctx):
                raise NotLocal() from None
            raise
        except Exception as exc:
            return _finish_row(rt, ctx, None, exc)
        return _finish_row(rt, ctx, value, None)
    except OwnershipLost as exc:
        raise NotLocal() from exc
    finally:
        current_workflow.reset(token)


async def execute_async(rt: Runtime, ctx: WorkflowContext, info: WorkflowInfo, args: Any, kwargs: Any) -> Any:
    rt.register_context(ctx)
    token = current_workflow.set(ctx)
    try:
        try:
            value = await info.func(*args, **kwargs)
        except ShutdownInterrupt:
            raise
        except OwnershipLost as exc:
            log.warning("workflow %s was adopted by another executor (%s)", ctx.workflow_id, exc)
            raise NotLocal() from exc
        except WorkflowCancelledError:
            if await rt.aio(_hand_back, rt, ctx):
                raise NotLocal() from None
            raise
        except Exception as exc:
            return await rt.aio(_finish_row, rt, ctx, None, exc)
        return await rt.aio(_finish_row, rt, ctx, value, None)
    except OwnershipLost as exc:
        raise NotLocal() from exc
    finally:
        current_workflow.reset(token)


def _settle(fut: concurrent.futures.Future[Any], value: Any = None, error: BaseException | None = None) -> None:
    if fut.done():
        return
    if error is not None:
        fut.set_exception(error)
    else:
        fut.set_result(value)


def _done(
    rt: Runtime, wid: str, fut: concurrent.futures.Future[Any], value: Any = None, error: BaseException | None = None
) -> None:
    """Free the local slot first (a resume or adoption may claim the id at once), then publish."""
    rt.release_local(wid, fut)
    _settle(fut, value, error)


# -- direct calls -------------------------------------------------------------------------------
def invoke(rt: Runtime, info: WorkflowInfo, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``my_workflow(...)``: run durably in the caller's thread and return its result."""
    plan = plan_start(rt, info, args, kwargs)
    if plan.recorded_child is not None:
        return rt.await_result(plan.recorded_child)
    wid = plan.row.workflow_id
    fut, owner = rt.claim_local(wid)
    if not owner:
        return rt.await_result(wid)
    try:
        stored, inserted = insert(rt, plan)
        if inserted:
            try:
                value = execute(rt, new_context(rt, stored), info, args, kwargs)
            except NotLocal:
                _done(rt, wid, fut, error=NotLocal())
                return rt.await_result(wid, local=False)
        elif stored.is_terminal:
            value = status.outcome(stored)
        else:
            _done(rt, wid, fut, error=NotLocal())  # runs elsewhere: never hold the slot while waiting
            return rt.await_result(wid, local=False)
    except BaseException as exc:
        _done(rt, wid, fut, error=exc)
        raise
    _done(rt, wid, fut, value)
    return value


async def invoke_async(rt: Runtime, info: WorkflowInfo, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    plan = plan_start(rt, info, args, kwargs)
    if plan.recorded_child is not None:
        return await rt.await_result_async(plan.recorded_child)
    wid = plan.row.workflow_id
    fut, owner = rt.claim_local(wid)
    if not owner:
        return await rt.await_result_async(wid)
    try:
        stored, inserted = await rt.aio(insert, rt, plan)
        if inserted:
            try:
                value = await execute_async(rt, new_context(rt, stored), info, args, kwargs)
            except NotLocal:
                _done(rt, wid, fut, error=NotLocal())
                return await rt.await_result_async(wid, local=False)
        elif stored.is_terminal:
            value = status.outcome(stored)
        else:
            _done(rt, wid, fut, error=NotLocal())
            return await rt.await_result_async(wid, local=False)
    except BaseException as exc:
        _done(rt, wid, fut, error=exc)
        raise
    _done(rt, wid, fut, value)
    return value


# -- background starts --------------------------------------------------------------------------
def start(
    rt: Runtime,
    info: WorkflowInfo,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    queue: QueueSpec | None = None,
    workflow_id: str | None = None,
) -> str:
    """Insert the workflow now (errors surface here) and run it in the background. Returns its id."""
    plan = plan_start(rt, info, args, kwargs, queue=queue, workflow_id=workflow_id)
    if plan.recorded_child is not None:
        return plan.recorded_child
    if queue is not None:
        insert(rt, plan)
        return plan.row.workflow_id
    wid = plan.row.workflow_id
    fut, owner = rt.claim_local(wid)
    if not owner:
        return wid
    try:
        stored, inserted = insert(rt, plan)
    except BaseException as exc:
        _done(rt, wid, fut, error=exc)
        raise
    if not inserted:
        _done(rt, wid, fut, error=NotLocal())
        return wid
    launch_execution(rt, new_context(rt, stored), info, args, kwargs, fut)
    return wid


def launch_execution(
    rt: Runtime,
    ctx: WorkflowContext,
    info: WorkflowInfo,
    args: Any,
    kwargs: Any,
    fut: concurrent.futures.Future[Any],
) -> None:
    """Run a claimed workflow in a worker thread (sync) or on an event loop (async)."""
    wid = ctx.workflow_id
    if info.is_async:

        async def body() -> None:
            try:
                value = await execute_async(rt, ctx, info, args, kwargs)
            except (ShutdownInterrupt, NotLocal):
                _done(rt, wid, fut, error=NotLocal())
            except BaseException as exc:
                _done(rt, wid, fut, error=exc)
            else:
                _done(rt, wid, fut, value)

        rt.run_coroutine(body())
        return

    def run() -> None:
        try:
            value = execute(rt, ctx, info, args, kwargs)
        except (ShutdownInterrupt, NotLocal):
            _done(rt, wid, fut, error=NotLocal())
        except BaseException as exc:
            _done(rt, wid, fut, error=exc)
        else:
            _done(rt, wid, fut, value)

    fresh = contextvars.Context()
    try:
        rt.workflow_pool.submit(fresh.run, run)
    except RuntimeError:  # pool shut down: the workflow stays PENDING and is recovered later
        _done(rt, wid, fut, error=NotLaunchedError("Transact is shutting down"))


def can_run(rt: Runtime, row: WorkflowRow) -> bool:
    """Whether this process may run the workflow: registered here, and of this process's
    version when ``pin_app_version`` is set."""
    if rt.registry.workflow(row.name) is None:
        return False
    return not (rt.settings.pin_app_version and row.app_version != rt.app_version)


def resume_many(rt: Runtime, rows: Sequence[WorkflowRow], *, max_attempts_checked: bool = False) -> int:
    """``resume`` for a batch this executor now owns: their steps in one read, then each run, in
    the order given. Returns how many started."""
    steps = rt.store.steps_load_many([row.workflow_id for row in rows])
    return sum(
        resume(rt, row, max_attempts_checked=max_attempts_checked, recorded=steps[row.workflow_id]) for row in rows
    )


def in_order(rows: Sequence[WorkflowRow], ids: Sequence[str]) -> list[WorkflowRow]:
    """``rows`` (a RETURNING set, in no particular order) in the order of ``ids``."""
    position = {wid: n for n, wid in enumerate(ids)}
    return sorted(rows, key=lambda row: position[row.workflow_id])


def resume(
    rt: Runtime, row: WorkflowRow, *, max_attempts_checked: bool = False, recorded: dict[int, StepRow] | None = None
) -> bool:
    """Run a PENDING workflow this executor owns (recovery, adoption, dequeue). False if not runnable.

    ``recorded``: its step outcomes when the caller already loaded them (a dequeued batch)."""
    info = rt.registry.workflow(row.name)
    if info is None:
        log.warning("workflow %s (%s) is not registered in this process; leaving it", row.workflow_id, row.name)
        return False
    if not max_attempts_checked and row.recovery_attempts > info.max_recovery_attempts:
        rt.store.workflow_set_status(row.workflow_id, "MAX_RECOVERY_ATTEMPTS_EXCEEDED", now_ms())
        log.error("%s", MaxRecoveryAttemptsExceededError(row.workflow_id, row.recovery_attempts))
        return False
    fut, owner = rt.claim_local(row.workflow_id)
    if not owner:
        return True  # already running here
    try:
        args, kwargs = serialization.loads(row.inputs) if row.inputs else ((), {})
        if recorded is None:
            recorded = rt.store.steps_load(row.workflow_id)
    except BaseException as exc:
        _done(rt, row.workflow_id, fut, error=exc)
        raise
    launch_execution(rt, new_context(rt, row, recorded), info, args, kwargs, fut)
    return True
