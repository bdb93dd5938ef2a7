"""Workflow lifecycle: run, finish and resume, for direct calls, background starts and enqueues.

Starts are planned and inserted by ``engine/starts.py`` (one insert round trip); a run is claimed,
registered and settled in ``rt.runs``; its outcome is one fenced update. Sync and async shells
share ``_finish_row``. Must not import the facade.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import logging
from collections.abc import Sequence
from typing import Any

from transact._lib.states import Hint, Status
from transact.engine import auth, metrics, serialization, status, tracing
from transact.engine.clock import now_ms
from transact.engine.context import ShutdownInterrupt, WorkflowContext, current_workflow
from transact.engine.registry import WorkflowInfo
from transact.engine.runs import NotLocal
from transact.engine.runtime import Runtime
from transact.engine.starts import QueueSpec, insert_plan, plan
from transact.errors import (
    DBOSWorkflowCancelledError,
    DeterminismError,
    MaxRecoveryAttemptsExceededError,
    NotLaunchedError,
    WorkflowCancelledError,
)
from transact.storage import OwnershipLost, WorkflowNotPending
from transact.storage.rows import StepRow, WorkflowRow

log = logging.getLogger("transact")


def new_context(rt: Runtime, row: WorkflowRow, recorded: dict[int, Any] | None = None) -> WorkflowContext:
    ctx = WorkflowContext(
        workflow_id=row.workflow_id,
        name=row.name,
        runtime=rt,
        recorded=recorded or {},
        deadline_at=row.deadline_at,
        resumed=row.recovery_attempts > 0 or bool(recorded),
        row=row,
    )
    auth.attach(row)  # a row that recorded auth turns the auth lookups on in this process
    return ctx


# -- running a body -----------------------------------------------------------------------------
def _finish_row(rt: Runtime, ctx: WorkflowContext, value: Any, error: BaseException | None) -> Any:
    """Write the final outcome and return the value the caller should see (or raise)."""
    output = err = None
    status = Status.SUCCESS
    portable = ctx.row is not None and serialization.is_portable(ctx.row.inputs)  # answered in kind
    if error is None:
        try:
            output = serialization.dumps(value, what=f"the result of workflow {ctx.name!r}", portable=portable)
        except Exception as exc:
            error = exc
    if error is not None:
        status = Status.ERROR
        err = serialization.dumps_error(error, portable=portable)
        if isinstance(error, DeterminismError):  # the code changed under a recovered workflow
            log.error("%s", error)
    now = now_ms()
    try:
        rt.store.workflow_finish(
            workflow_id=ctx.workflow_id,
            executor_id=rt.executor_id,
            status=status,
            output=output,
            error=err,
            now=now,
        )
    except WorkflowNotPending as exc:
        raise WorkflowCancelledError(ctx.workflow_id, f"is {exc.status}") from None
    if metrics.workflows is not None:
        metrics.workflow_finished(ctx, now)
    if error is not None:
        raise error
    return value


def _lost(rt: Runtime, ctx: WorkflowContext) -> bool:
    """After a run stopped on a cancellation: True (and logged) when it was not cancelled but
    adopted by another executor, which ended it (this process stalled past its lease)."""
    if rt.stopping.is_set():
        return False
    row = rt.store.workflow_get(ctx.workflow_id)
    if row is None or row.status == Status.CANCELLED or row.executor_id in (None, rt.executor_id):
        return False
    log.warning(
        "workflow %s: this executor lost ownership of it to executor %r (it is %s there)",
        ctx.workflow_id,
        row.executor_id,
        row.status,
    )
    return True


def _stopped(rt: Runtime, ctx: WorkflowContext) -> bool:
    """After a run stopped on a cancellation: True when its result now comes from elsewhere.

    A run that passed its deadline cancels its tree itself (the timer may not have fired yet).
    Otherwise, if the row is still PENDING and ours (the cancel was stale, e.g. a late notification
    after a resume), it is released so recovery runs it again instead of stranding it."""
    if ctx.past_deadline():
        rt.cancel_tree(ctx.workflow_id)
        return False
    if rt.stopping.is_set():
        return False  # shutdown releases everything anyway
    if not rt.store.workflows_release(executor_id=rt.executor_id, now=now_ms(), workflow_id=ctx.workflow_id):
        return False
    log.warning("workflow %s was interrupted but is still pending; handing it back to recovery", ctx.workflow_id)
    rt.store.hint(Hint.EXECUTOR, rt.executor_id)  # wake this process's recovery pass now
    return True


def execute(rt: Runtime, ctx: WorkflowContext, info: WorkflowInfo, args: Any, kwargs: Any) -> Any:
    """Run the body and record its outcome. Raises NotLocal when the result will come from
    elsewhere (adopted by another executor, or handed back after a stale interruption)."""
    if tracing.on:
        return tracing.workflow(ctx, _execute, rt, ctx, info, args, kwargs)
    return _execute(rt, ctx, info, args, kwargs)


def _execute(rt: Runtime, ctx: WorkflowContext, info: WorkflowInfo, args: Any, kwargs: Any) -> Any:
    rt.runs.register(ctx)
    token = current_workflow.set(ctx)
    try:
        try:
            value = info.func(*args, **kwargs)
        except ShutdownInterrupt:
            raise
        except OwnershipLost as exc:
            log.warning("workflow %s: this executor lost ownership of it (%s)", ctx.workflow_id, exc)
            raise NotLocal() from exc
        except DBOSWorkflowCancelledError as exc:
            if _stopped(rt, ctx) or _lost(rt, ctx):
                raise NotLocal() from None
            raise WorkflowCancelledError(ctx.workflow_id, exc.detail) from None  # what its waiters see
        except Exception as exc:
            return _finish_row(rt, ctx, None, exc)
        return _finish_row(rt, ctx, value, None)
    except OwnershipLost as exc:  # its outcome: another executor's is recorded
        log.warning("workflow %s: this executor lost ownership of it (%s)", ctx.workflow_id, exc)
        raise NotLocal() from exc
    finally:
        current_workflow.reset(token)


async def execute_async(rt: Runtime, ctx: WorkflowContext, info: WorkflowInfo, args: Any, kwargs: Any) -> Any:
    if tracing.on:
        return await tracing.workflow_async(ctx, _execute_async, rt, ctx, info, args, kwargs)
    return await _execute_async(rt, ctx, info, args, kwargs)


async def _execute_async(rt: Runtime, ctx: WorkflowContext, info: WorkflowInfo, args: Any, kwargs: Any) -> Any:
    rt.runs.register(ctx)
    token = current_workflow.set(ctx)
    try:
        try:
            value = await info.func(*args, **kwargs)
        except ShutdownInterrupt:
            raise
        except OwnershipLost as exc:
            log.warning("workflow %s: this executor lost ownership of it (%s)", ctx.workflow_id, exc)
            raise NotLocal() from exc
        except DBOSWorkflowCancelledError as exc:
            if await rt.aio(_stopped, rt, ctx) or await rt.aio(_lost, rt, ctx):
                raise NotLocal() from None
            raise WorkflowCancelledError(ctx.workflow_id, exc.detail) from None
        except Exception as exc:
            return await rt.aio(_finish_row, rt, ctx, None, exc)
        return await rt.aio(_finish_row, rt, ctx, value, None)
    except OwnershipLost as exc:
        log.warning("workflow %s: this executor lost ownership of it (%s)", ctx.workflow_id, exc)
        raise NotLocal() from exc
    finally:
        current_workflow.reset(token)


# -- direct calls -------------------------------------------------------------------------------
def invoke(rt: Runtime, info: WorkflowInfo, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``my_workflow(...)``: run durably in the caller's thread and return its result."""
    p = plan(rt, info, args, kwargs)
    if p.recorded_child is not None:
        return rt.await_result(p.recorded_child)
    wid = p.row.workflow_id
    fut, owner = rt.runs.claim(wid, info.name)
    if not owner:
        return rt.await_result(wid)
    try:
        stored, inserted = insert_plan(rt, p)
        if inserted:
            try:
                value = execute(rt, new_context(rt, stored), info, args, kwargs)
            except NotLocal:
                rt.runs.settle(wid, fut, error=NotLocal())
                return rt.await_result(wid, local=False)
        elif stored.is_terminal:
            value = status.outcome(stored)
        else:
            rt.runs.settle(wid, fut, error=NotLocal())  # runs elsewhere: never hold the slot while waiting
            return rt.await_result(wid, local=False)
    except BaseException as exc:
        rt.runs.settle(wid, fut, error=exc)
        raise
    rt.runs.settle(wid, fut, value)
    return value


async def invoke_async(rt: Runtime, info: WorkflowInfo, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    p = plan(rt, info, args, kwargs)
    if p.recorded_child is not None:
        return await rt.await_result_async(p.recorded_child)
    wid = p.row.workflow_id
    fut, owner = rt.runs.claim(wid, info.name)
    if not owner:
        return await rt.await_result_async(wid)
    try:
        stored, inserted = await rt.aio(insert_plan, rt, p)
        if inserted:
            try:
                value = await execute_async(rt, new_context(rt, stored), info, args, kwargs)
            except NotLocal:
                rt.runs.settle(wid, fut, error=NotLocal())
                return await rt.await_result_async(wid, local=False)
        elif stored.is_terminal:
            value = status.outcome(stored)
        else:
            rt.runs.settle(wid, fut, error=NotLocal())
            return await rt.await_result_async(wid, local=False)
    except BaseException as exc:
        rt.runs.settle(wid, fut, error=exc)
        raise
    rt.runs.settle(wid, fut, value)
    return value


# -- background starts and enqueues -------------------------------------------------------------
def start(
    rt: Runtime,
    info: WorkflowInfo,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    queue: QueueSpec | None = None,
    workflow_id: str | None = None,
) -> str:
    """Insert the workflow now (errors surface here) and run it in the background, or leave it in
    ``queue`` for a worker. Returns its id."""
    p = plan(rt, info, args, kwargs, queue=queue, workflow_id=workflow_id)
    if p.recorded_child is not None:
        return p.recorded_child
    if queue is not None:
        insert_plan(rt, p)
        return p.row.workflow_id
    fut, owner = rt.runs.claim(p.row.workflow_id, info.name)
    if not owner:
        return p.row.workflow_id
    try:
        stored, inserted = insert_plan(rt, p)
    except BaseException as exc:
        rt.runs.settle(p.row.workflow_id, fut, error=exc)
        raise
    _run_if_inserted(rt, stored, inserted, info, args, kwargs, fut)
    return p.row.workflow_id


async def start_async(
    rt: Runtime,
    info: WorkflowInfo,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    queue: QueueSpec | None = None,
) -> str:
    """``start`` for async callers: planned in the caller's context, inserted off the event loop;
    an async body then runs on the caller's loop."""
    p = plan(rt, info, args, kwargs, queue=queue)
    if p.recorded_child is not None:
        return p.recorded_child
    if queue is not None:
        await rt.aio(insert_plan, rt, p)
        return p.row.workflow_id
    fut, owner = rt.runs.claim(p.row.workflow_id, info.name)
    if not owner:
        return p.row.workflow_id
    try:
        stored, inserted = await rt.aio(insert_plan, rt, p)
    except BaseException as exc:
        rt.runs.settle(p.row.workflow_id, fut, error=exc)
        raise
    _run_if_inserted(rt, stored, inserted, info, args, kwargs, fut)
    return p.row.workflow_id


def _run_if_inserted(
    rt: Runtime,
    stored: WorkflowRow,
    inserted: bool,
    info: WorkflowInfo,
    args: Any,
    kwargs: Any,
    fut: concurrent.futures.Future[Any],
) -> None:
    if inserted:
        launch_execution(rt, new_context(rt, stored), info, args, kwargs, fut)
    else:
        rt.runs.settle(stored.workflow_id, fut, error=NotLocal())  # the id's first start runs it


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
                rt.runs.settle(wid, fut, error=NotLocal())
            except BaseException as exc:
                rt.runs.settle(wid, fut, error=exc)
            else:
                rt.runs.settle(wid, fut, value)

        rt.run_coroutine(body())
        return

    def run() -> None:
        try:
            value = execute(rt, ctx, info, args, kwargs)
        except (ShutdownInterrupt, NotLocal):
            rt.runs.settle(wid, fut, error=NotLocal())
        except BaseException as exc:
            rt.runs.settle(wid, fut, error=exc)
        else:
            rt.runs.settle(wid, fut, value)

    fresh = contextvars.Context()
    try:
        rt.workflow_pool.submit(fresh.run, run)
    except RuntimeError:  # pool shut down: the workflow stays PENDING and is recovered later
        rt.runs.settle(wid, fut, error=NotLaunchedError("Transact is shutting down"))


def can_run(rt: Runtime, row: WorkflowRow) -> bool:
    """Whether this process may run the workflow: registered here, owned by this application (or
    by none), and of this process's version when ``pin_app_version`` is set."""
    if rt.registry.for_row(row.name, row.class_name) is None:
        return False
    if row.application_name is not None and row.application_name != rt.settings.name:
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
    info = rt.registry.for_row(row.name, row.class_name)
    if info is None:
        log.warning("workflow %s (%s) is not registered in this process; leaving it", row.workflow_id, row.name)
        return False
    if not max_attempts_checked and row.recovery_attempts > info.max_recovery_attempts:
        rt.store.workflow_set_status(row.workflow_id, Status.MAX_RECOVERY_ATTEMPTS_EXCEEDED, now_ms())
        log.error("%s", MaxRecoveryAttemptsExceededError(row.workflow_id, row.recovery_attempts))
        return False
    fut, owner = rt.runs.claim(row.workflow_id, row.name)
    if not owner:
        return True  # already running here
    try:
        args, kwargs = serialization.loads_inputs(row.inputs)
        if row.class_name is not None and info.takes_target:
            args = (rt.registry.target(row.class_name, row.config_name), *args)
        if recorded is None:
            recorded = rt.store.steps_load(row.workflow_id)
    except BaseException as exc:
        rt.runs.settle(row.workflow_id, fut, error=exc)
        raise
    launch_execution(rt, new_context(rt, row, recorded), info, args, kwargs, fut)
    return True
