"""Async transactions (``AsyncSQLAlchemyDatasource``): the rules of engine/transaction.py on an
asyncio application database.

Inside a workflow the transaction is a step: its outcome row commits with the user's writes, then
the step is checkpointed in the system database; a replay reads the checkpoint, then the outcome
row, and runs the function only when neither exists. Outside a workflow it is a plain transaction.
Must not import the facade.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeAlias

from transact.engine import serialization, tracing
from transact.engine import step as step_mod
from transact.engine.clock import now_ms
from transact.engine.context import WorkflowContext, current_step
from transact.engine.transaction import AlreadyRecorded, Pause, checked, settle, step_row
from transact.errors import DBOSWorkflowCancelledError, DeterminismError

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

    from transact.storage.app_outcomes import AppOutcome
    from transact.storage.app_outcomes_async import AsyncAppDatabase

AsyncSessionVar: TypeAlias = "contextvars.ContextVar[AsyncSession | None]"
AsyncFn = Callable[..., Awaitable[Any]]


async def run_in(
    app: AsyncAppDatabase,
    session_var: AsyncSessionVar,
    name: str,
    fn: AsyncFn,
    isolation_level: str,
    args: Any,
    kwargs: Any,
) -> Any:
    """Run ``fn`` as one transaction of ``app`` with its session in ``session_var``. A call made
    while ``session_var`` holds a session joins that transaction."""
    if session_var.get() is not None:
        return await fn(*args, **kwargs)
    begun = step_mod.begin(name)
    with tracing.operation_if_on("transaction", name, step_mod.position(begun)):
        if begun is None:
            return await _plain(app, session_var, name, fn, isolation_level, args, kwargs)
        ctx, function_id, recorded = begun
        if recorded is not None:
            return step_mod.result(recorded)
        started = now_ms()
        token = current_step.set(function_id)
        try:
            outcome, raised = await _durable(
                app, session_var, ctx, function_id, name, fn, isolation_level, args, kwargs
            )
        finally:
            current_step.reset(token)
        row = step_row(ctx, function_id, name, outcome, started)
        return settle(await step_mod.record_async(ctx, row), row, raised)


async def _call(conn: AsyncConnection, session_var: AsyncSessionVar, fn: AsyncFn, args: Any, kwargs: Any) -> Any:
    from sqlalchemy.ext.asyncio import AsyncSession

    # Bound to our connection inside our transaction, the session only joins it: a commit in user
    # code cannot commit early, so the outcome row always commits with the writes.
    session = AsyncSession(bind=conn, expire_on_commit=False)
    token = session_var.set(session)
    try:
        value = await fn(*args, **kwargs)
        await session.flush()
        return value
    finally:
        session_var.reset(token)
        await session.close()


async def _plain(
    app: AsyncAppDatabase, session_var: AsyncSessionVar, name: str, fn: AsyncFn, level: str, args: Any, kwargs: Any
) -> Any:
    """Outside a workflow: one transaction, run again after a conflict or after an outage before
    COMMIT was sent; an outage during COMMIT is raised (it may have committed)."""
    from transact.storage.app_outcomes import classify

    backoff = Pause(name)
    while True:
        committing = False
        try:
            async with app.transaction(level) as conn:
                value = await _call(conn, session_var, fn, args, kwargs)
                committing = True
            return value
        except Exception as exc:
            kind = classify(exc)
            if kind is None or (kind == "outage" and committing):
                raise
            await _pause(backoff, None, exc)


async def _durable(
    app: AsyncAppDatabase,
    session_var: AsyncSessionVar,
    ctx: WorkflowContext,
    function_id: int,
    name: str,
    fn: AsyncFn,
    level: str,
    args: Any,
    kwargs: Any,
) -> tuple[AppOutcome, BaseException | None]:
    """Run until an outcome is committed (or found); see engine/transaction.py's ``_durable``."""
    from transact.storage.app_outcomes import AppOutcome, classify

    wid = ctx.workflow_id
    check_first = ctx.resumed and function_id == max(ctx.recorded, default=0) + 1
    backoff = Pause(name)
    while True:
        try:
            async with app.transaction(level) as conn:
                if check_first:
                    found = await app.outcome_get(conn, workflow_id=wid, function_id=function_id)
                    if found is not None:
                        return checked(found, ctx, function_id, name), None
                value = await _call(conn, session_var, fn, args, kwargs)
                output = serialization.dumps(value, what=f"the output of transaction {name!r}")
                if not await app.outcome_insert(
                    conn,
                    workflow_id=wid,
                    function_id=function_id,
                    function_name=name,
                    output=output,
                    error=None,
                    now=now_ms(),
                ):
                    raise AlreadyRecorded
            return AppOutcome(name, output, None), None
        except AlreadyRecorded:
            check_first = True
            continue
        except DeterminismError:
            raise
        except Exception as exc:
            kind = classify(exc)
            if kind is None:
                return await _record_error(app, ctx, function_id, name, exc)
            if kind == "outage":
                check_first = True
            await _pause(backoff, ctx, exc)


async def _record_error(
    app: AsyncAppDatabase, ctx: WorkflowContext, function_id: int, name: str, error: BaseException
) -> tuple[AppOutcome, BaseException | None]:
    """Pin the user's error so every replay raises it; an outcome recorded earlier wins."""
    from transact.storage.app_outcomes import AppOutcome, classify

    data = serialization.dumps_error(error)
    backoff = Pause(name)
    while True:
        try:
            found = await app.outcome_record(
                workflow_id=ctx.workflow_id, function_id=function_id, function_name=name, error=data, now=now_ms()
            )
        except Exception as exc:
            if classify(exc) is None:
                raise
            await _pause(backoff, ctx, exc)
            continue
        if found is None:
            return AppOutcome(name, None, data), error
        return checked(found, ctx, function_id, name), None


async def _pause(backoff: Pause, ctx: WorkflowContext | None, exc: BaseException) -> None:
    """The sync pause's rules without blocking the event loop: log, wait, stop on cancellation."""
    backoff.note(exc)
    await asyncio.sleep(backoff.pacing.next_delay())
    if ctx is not None:
        if ctx.cancelled.is_set():
            raise DBOSWorkflowCancelledError.of(ctx.workflow_id) from exc
        ctx.check_cancelled()
