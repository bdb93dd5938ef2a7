"""Step execution: replay or run, retries with back-off, one fenced checkpoint write.

Sync and async shells share the pure pieces (``replay``, ``_row``, ``result``). Must not import
the facade.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import inspect
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from transact._lib import checks
from transact._lib.backoff import Backoff
from transact._lib.states import Status
from transact.engine import metrics, serialization, tracing
from transact.engine.clock import now_ms
from transact.engine.context import WorkflowContext, current_step, current_workflow
from transact.engine.replay import recorded_outcome
from transact.errors import DBOSWorkflowCancelledError, StepRetriesExceededError, StepTimeoutError
from transact.storage import WorkflowNotPending
from transact.storage.rows import StepRow

ShouldRetry = Callable[[BaseException], "bool | Awaitable[bool]"]

PREEMPT_RECHECK_S = 0.5  # a preemptible step re-reads its cancellation flag at least this often

# (0-based attempt, attempts allowed) while a retrying step runs; unset on the one-attempt path.
current_attempt: contextvars.ContextVar[tuple[int, int] | None] = contextvars.ContextVar(
    "transact_step_attempt", default=None
)


@dataclass(frozen=True)
class StepPolicy:
    """How a step runs: retries, the pause between attempts, which errors are retried, and a
    per-attempt time limit."""

    retries_allowed: bool = False
    interval_seconds: float = 1.0
    max_attempts: int = 3
    backoff_rate: float = 2.0
    should_retry: ShouldRetry | None = None
    timeout_seconds: float | None = None
    preemptible: bool = False  # async only: a cancellation of the workflow interrupts the attempt
    # One attempt, no time limit: the per-step hot path (no retry loop, no thread). Computed once.
    plain: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "plain", not self.retries_allowed and self.timeout_seconds is None and not self.preemptible
        )
        checks.flag(self.retries_allowed, "@DBOS.step retries_allowed")
        checks.flag(self.preemptible, "@DBOS.step preemptible")
        checks.count(self.max_attempts, "@DBOS.step max_attempts", minimum=1)
        checks.seconds(self.interval_seconds, "@DBOS.step interval_seconds")
        if self.should_retry is not None and not callable(self.should_retry):
            raise checks.fail("@DBOS.step should_retry", "a function taking the exception", self.should_retry)
        if self.timeout_seconds is not None:
            checks.seconds(self.timeout_seconds, "@DBOS.step timeout_seconds", positive=True)
        if (
            isinstance(self.backoff_rate, bool)
            or not isinstance(self.backoff_rate, int | float)
            or self.backoff_rate < 1
        ):
            raise checks.fail("@DBOS.step backoff_rate", "a number >= 1", self.backoff_rate)

    @property
    def attempts(self) -> int:
        return self.max_attempts if self.retries_allowed else 1

    def pacing(self) -> Backoff:
        """The waits between attempts: ``interval_seconds * backoff_rate**n``, no jitter, uncapped."""
        return Backoff(initial=float(self.interval_seconds), cap=float("inf"), factor=self.backoff_rate, jitter=0)


def _row(
    ctx: WorkflowContext,
    function_id: int,
    name: str,
    value: Any,
    error: BaseException | None,
    started: int,
    child: str | None = None,
) -> StepRow:
    output = None
    if error is None:
        try:
            output = serialization.dumps_fast(value)
        except Exception as exc:
            error = serialization.unpicklable(exc, what=f"the output of step {name!r}")
    # Positional: keyword construction of the 8-field row is measurably slower on the per-step path.
    return StepRow(
        ctx.workflow_id,
        function_id,
        name,
        output,
        serialization.dumps_error(error) if error is not None else None,
        child,
        started,
        now_ms(),
    )


def result(row: StepRow) -> Any:
    if row.error is not None:
        raise serialization.loads_error(row.error)
    return serialization.loads(row.output)


def _outcome(stored: StepRow, mine: StepRow, value: Any, error: BaseException | None) -> Any:
    """The step's result: our own value when our row was recorded (no need to unpickle what we
    just pickled), else the outcome recorded first by a concurrent runner."""
    if stored is not mine or (mine.error is not None and error is None):
        return result(stored)  # someone else's outcome, or our value failed to serialize
    if error is not None:
        raise error
    return value


def not_pending(ctx: WorkflowContext, exc: WorkflowNotPending, what: str) -> DBOSWorkflowCancelledError:
    """A refused checkpoint means the workflow was cancelled (or ended) elsewhere: stop this run."""
    ctx.cancelled.set()
    return DBOSWorkflowCancelledError.of(ctx.workflow_id, f"is {exc.status}; {what} was not recorded")


def record(ctx: WorkflowContext, row: StepRow) -> StepRow:
    """Write a checkpoint; returns the row that counts (ours, or one recorded first elsewhere)."""
    store = ctx.runtime.store
    try:
        existing = store.step_record(row, executor_id=ctx.runtime.executor_id)
    except WorkflowNotPending as exc:
        if exc.status == Status.CANCELLED:
            # The step ran to completion: keep its outcome, so a resume replays it instead of running
            # it again (the fence refuses only this run's later steps).
            store.step_record_cancelled(row, executor_id=ctx.runtime.executor_id)
        raise not_pending(ctx, exc, f"step {row.function_name!r}") from None
    if metrics.steps is not None:
        metrics.step_recorded(row)
    return existing or row


async def record_async(ctx: WorkflowContext, row: StepRow) -> StepRow:
    return await ctx.runtime.aio(record, ctx, row)


def begin(name: str) -> tuple[WorkflowContext, int, StepRow | None] | None:
    """Take the next step position (None outside a workflow or inside a step): its recorded
    outcome on replay, the cancel check before a first run. A traced step or transaction opens
    its span after this, labelled with ``position(begun)``."""
    ctx = current_workflow.get()
    if ctx is None or current_step.get() is not None:
        return None  # outside a workflow, or a step called from a step: run as plain code
    function_id = ctx.next_function_id()
    recorded = None
    if ctx.recorded:  # (empty on a first run: the per-step hot path skips the replay lookup)
        recorded = recorded_outcome(ctx.recorded, workflow_id=ctx.workflow_id, function_id=function_id, name=name)
    if recorded is None:
        ctx.check_cancelled()
    return ctx, function_id, recorded


def position(begun: tuple[WorkflowContext, int, StepRow | None] | None) -> tuple[WorkflowContext, int, bool] | None:
    return (begun[0], begun[1], begun[2] is not None) if begun is not None else None


def run_step(name: str, fn: Callable[..., Any], opts: StepPolicy, args: Any, kwargs: Any) -> Any:
    begun = begin(name)
    if tracing.on:
        with tracing.operation_at("step", name, position(begun)):
            return _run_step(name, fn, opts, args, kwargs, begun)
    return _run_step(name, fn, opts, args, kwargs, begun)


def _run_step(
    name: str,
    fn: Callable[..., Any],
    opts: StepPolicy,
    args: Any,
    kwargs: Any,
    begun: tuple[WorkflowContext, int, StepRow | None] | None,
) -> Any:
    if begun is None:
        value, error = _attempt_sync(name, fn, opts, args, kwargs, None)
        if error is not None:
            raise error
        return value
    ctx, function_id, recorded = begun
    if recorded is not None:
        return result(recorded)
    started = now_ms()
    token = current_step.set(function_id)
    try:
        if not opts.plain:
            value, error = _attempt_sync(name, fn, opts, args, kwargs, ctx)
        else:  # one attempt, no time limit: no retry loop to set up (the per-step hot path)
            try:
                value, error = fn(*args, **kwargs), None
            except Exception as exc:
                value, error = None, exc
    finally:
        current_step.reset(token)
    mine = _row(ctx, function_id, name, value, error, started)
    return _outcome(record(ctx, mine), mine, value, error)


async def run_step_async(name: str, fn: Callable[..., Awaitable[Any]], opts: StepPolicy, args: Any, kwargs: Any) -> Any:
    begun = begin(name)
    if tracing.on:
        with tracing.operation_at("step", name, position(begun)):
            return await _run_step_async(name, fn, opts, args, kwargs, begun)
    return await _run_step_async(name, fn, opts, args, kwargs, begun)


async def _run_step_async(
    name: str,
    fn: Callable[..., Awaitable[Any]],
    opts: StepPolicy,
    args: Any,
    kwargs: Any,
    begun: tuple[WorkflowContext, int, StepRow | None] | None,
) -> Any:
    if begun is None:
        value, error = await _attempt_async(name, fn, opts, args, kwargs, None)
        if error is not None:
            raise error
        return value
    ctx, function_id, recorded = begun
    if recorded is not None:
        return result(recorded)
    started = now_ms()
    token = current_step.set(function_id)
    try:
        value, error = await _attempt_async(name, fn, opts, args, kwargs, ctx)
    finally:
        current_step.reset(token)
    mine = _row(ctx, function_id, name, value, error, started)
    return _outcome(await record_async(ctx, mine), mine, value, error)


def _attempt_sync(
    name: str, fn: Callable[..., Any], opts: StepPolicy, args: Any, kwargs: Any, ctx: WorkflowContext | None
) -> tuple[Any, BaseException | None]:
    errors: list[BaseException] = []
    pacing = opts.pacing()
    pacing.cancel = ctx.cancelled if ctx is not None else None
    attempts = opts.attempts
    for attempt in range(attempts):
        token = current_attempt.set((attempt, attempts)) if opts.retries_allowed else None
        try:
            if opts.timeout_seconds is None:
                return fn(*args, **kwargs), None
            return _within(name, fn, args, kwargs, opts.timeout_seconds), None
        except Exception as exc:
            errors.append(exc)
            if opts.should_retry is not None and not _retry_wanted(opts.should_retry, exc):
                return None, exc  # not retryable: the step fails with the original error
            if attempt + 1 < attempts and not pacing.wait() and ctx is not None:
                raise DBOSWorkflowCancelledError.of(ctx.workflow_id) from exc
        finally:
            if token is not None:
                current_attempt.reset(token)
    return None, _final_error(name, opts, errors)


def _within(name: str, fn: Callable[..., Any], args: Any, kwargs: Any, timeout_s: float) -> Any:
    """Run one attempt in its own thread and wait at most ``timeout_s``. Python cannot stop a
    thread: an attempt past its limit is abandoned (it runs on in the background, and whatever it
    returns is discarded) and the step fails with StepTimeoutError, retried like any failure."""
    done: concurrent.futures.Future[Any] = concurrent.futures.Future()

    def attempt() -> None:
        try:
            done.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            done.set_exception(exc)

    context = contextvars.copy_context()  # the step's workflow and position, as in the caller
    threading.Thread(target=context.run, args=(attempt,), name=f"transact-step-{name}", daemon=True).start()
    try:
        return done.result(timeout_s)
    except concurrent.futures.TimeoutError:
        raise StepTimeoutError(name, timeout_s) from None


def _retry_wanted(should_retry: ShouldRetry, exc: BaseException) -> bool:
    answer = should_retry(exc)
    if inspect.isawaitable(answer):
        answer = asyncio.run(_awaited(answer))
    return bool(answer)


async def _awaited(answer: Awaitable[bool]) -> bool:
    return await answer


async def _attempt_async(
    name: str,
    fn: Callable[..., Awaitable[Any]],
    opts: StepPolicy,
    args: Any,
    kwargs: Any,
    ctx: WorkflowContext | None,
) -> tuple[Any, BaseException | None]:
    errors: list[BaseException] = []
    pacing = opts.pacing()
    attempts = opts.attempts
    for attempt in range(attempts):
        token = current_attempt.set((attempt, attempts)) if opts.retries_allowed else None
        try:
            attempt_run = fn(*args, **kwargs)
            if opts.preemptible and ctx is not None:
                attempt_run = _preemptible(name, attempt_run, ctx)
            if opts.timeout_seconds is None:
                return await attempt_run, None
            try:
                return await asyncio.wait_for(attempt_run, opts.timeout_seconds), None
            except asyncio.TimeoutError:
                raise StepTimeoutError(name, opts.timeout_seconds) from None  # the attempt was cancelled
        except Exception as exc:
            errors.append(exc)
            if opts.should_retry is not None:
                answer = opts.should_retry(exc)
                if not (await answer if inspect.isawaitable(answer) else answer):
                    return None, exc
            if attempt + 1 < attempts:
                delay = pacing.next_delay()
                if ctx is None:
                    await asyncio.sleep(delay)
                    continue
                with ctx.cancel_watch(asynchronous=True) as waiter:  # woken by a cancel, as the sync twin is
                    if not ctx.cancelled.is_set():
                        await waiter.wait_async(delay)
                if ctx.cancelled.is_set():
                    raise DBOSWorkflowCancelledError.of(ctx.workflow_id) from exc
        finally:
            if token is not None:
                current_attempt.reset(token)
    return None, _final_error(name, opts, errors)


async def _preemptible(name: str, attempt: Awaitable[Any], ctx: WorkflowContext) -> Any:
    """Await one attempt as a task, cancelling it as soon as the workflow is cancelled (here or, by
    its wake-ups, in another process); the interrupted attempt records nothing."""
    task = asyncio.ensure_future(attempt)
    try:
        with ctx.cancel_watch(asynchronous=True) as waiter:
            while not task.done():
                if ctx.cancelled.is_set():
                    task.cancel()
                    await asyncio.wait({task})
                    raise DBOSWorkflowCancelledError.of(
                        ctx.workflow_id, f"was cancelled during its preemptible step {name!r} (not recorded)"
                    )
                woken = asyncio.ensure_future(waiter.wait_async(PREEMPT_RECHECK_S))
                await asyncio.wait({task, woken}, return_when=asyncio.FIRST_COMPLETED)
                woken.cancel()
        return task.result()
    finally:
        if not task.done():  # the caller itself was cancelled (a step timeout, or the user's own)
            task.cancel()


def _final_error(name: str, opts: StepPolicy, errors: list[BaseException]) -> BaseException:
    if opts.retries_allowed:
        return StepRetriesExceededError(name, errors)
    return errors[-1]
