"""Durable waits on other workflows: the first of many to finish (``wait_first``) and the
``asyncio.wait``-shaped partition into finished and unfinished (``asyncio_wait``).

In a workflow the answer is an operation at the next step position (the winner's id, or the ids
that had finished), so a replay returns what the first run saw, at once, without reading or waiting.
Waiting is pushed: register for every watched workflow's 'done' hint (and the caller's own
cancellation), read the statuses in one query, then wait; a backing-off re-read is the safety net
for a lost hint. Async forms wait on the event loop and reach the store through ``aio``.

The first to finish is the terminal workflow with the earliest ``updated_at`` (its finish time),
ties going to the earlier position in the list, so the answer does not depend on when the caller
looked. Must not import the facade.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from transact._lib import checks
from transact._lib.backoff import Backoff
from transact._lib.states import Hint, Status
from transact.engine import clock, serialization, step
from transact.engine.clock import now_ms
from transact.engine.context import WorkflowContext, current_step, current_workflow
from transact.engine.replay import recorded_outcome
from transact.engine.runtime import Runtime
from transact.engine.waiters import Key, Waiters
from transact.errors import ConfigError, TransactError, WorkflowNotFoundError
from transact.storage import Store
from transact.storage.rows import ListQuery, StepRow, WorkflowRow

WAIT_FIRST = "DBOS.wait_first"
ASYNCIO_WAIT = "DBOS.asyncio_wait"
ASYNCIO_WAIT_DEADLINE = "DBOS.asyncio_wait.deadline"

FIRST_COMPLETED = asyncio.FIRST_COMPLETED
FIRST_EXCEPTION = asyncio.FIRST_EXCEPTION
ALL_COMPLETED = asyncio.ALL_COMPLETED
RETURN_WHEN = (FIRST_COMPLETED, FIRST_EXCEPTION, ALL_COMPLETED)
FIRST_POLL_S = 0.05  # the safety-net re-read starts here and backs off to the caller's interval

T = TypeVar("T")
Aio = Callable[..., Awaitable[Any]]


# -- validation -----------------------------------------------------------------------------------
def checked_ids(ids: Sequence[str], api: str) -> list[str]:
    if not ids:
        raise ConfigError(f"{api}: handles must be a non-empty list of workflow handles, got an empty list")
    return [checks.text(i, f"{api}: handles[{n}] workflow id", bounded=True) or "" for n, i in enumerate(ids)]


def checked_poll(value: Any, api: str) -> float:
    return checks.seconds(value, f"{api}: polling_interval_sec", positive=True)


def checked_timeout_ms(value: Any, api: str) -> int | None:
    if value is None:
        return None
    return round(checks.seconds(value, f"{api}: timeout") * 1000)


def checked_return_when(value: Any, api: str) -> str:
    if value not in RETURN_WHEN:
        raise checks.fail(f"{api}: return_when", "asyncio.FIRST_COMPLETED, FIRST_EXCEPTION or ALL_COMPLETED", value)
    return str(value)


# -- reading --------------------------------------------------------------------------------------
def finished_rows(store: Store, ids: Sequence[str]) -> list[WorkflowRow]:
    """The terminal workflows among ``ids``, first finished first (one query).

    Raises WorkflowNotFoundError for an id with no workflow: it would never finish."""
    unique = list(dict.fromkeys(ids))
    rows = store.workflows_list(ListQuery(workflow_ids=unique, load_input=False, load_output=False))
    found = {row.workflow_id: row for row in rows}
    for ident in unique:
        if ident not in found:
            raise WorkflowNotFoundError(ident)
    position = {ident: n for n, ident in enumerate(unique)}
    done = [row for row in rows if row.is_terminal]
    return sorted(done, key=lambda row: (row.updated_at, position[row.workflow_id]))


def winner(store: Store, ids: Sequence[str]) -> str | None:
    """The id of the first of ``ids`` to have finished, or None while none has."""
    done = finished_rows(store, ids)
    return done[0].workflow_id if done else None


def satisfied(ids: Sequence[str], done: Sequence[WorkflowRow], return_when: str) -> bool:
    """Pure: whether ``asyncio_wait`` may return, given the finished rows."""
    if return_when == FIRST_COMPLETED:
        return bool(done)
    if return_when == FIRST_EXCEPTION and any(row.status != Status.SUCCESS for row in done):
        return True
    return len({row.workflow_id for row in done}) == len(set(ids))


def _partition(store: Store, ids: Sequence[str], return_when: str, *, final: bool) -> list[str] | None:
    """The finished ids (in list order) once ``return_when`` holds (or when ``final``), else None."""
    done = finished_rows(store, ids)
    if not final and not satisfied(ids, done, return_when):
        return None
    finished = {row.workflow_id for row in done}
    return [ident for ident in dict.fromkeys(ids) if ident in finished]


# -- the wait loops (no recording): DBOS outside workflows and DBOSClient use these directly ---------
def _keys(ids: Sequence[str], also: Sequence[Key]) -> tuple[Key, list[Key]]:
    keys: list[Key] = [(Hint.DONE, ident, "") for ident in dict.fromkeys(ids)]
    return keys[0], [*keys[1:], *also]


def _next_wait(pace: Backoff, deadline: int | None) -> float:
    wait = pace.next_delay()
    return wait if deadline is None else clock.left_s(deadline, wait)


def until(
    waiters: Waiters,
    ids: Sequence[str],
    read: Callable[[], T | None],
    poll_s: float,
    *,
    deadline: int | None = None,
    also: Sequence[Key] = (),
    check: Callable[[], None] | None = None,
) -> T | None:
    """Re-read until ``read()`` gives a value, woken when any of ``ids`` finishes; None at
    ``deadline`` (epoch ms). ``check`` runs after every wake-up (it raises to stop the wait)."""
    first, rest = _keys(ids, also)
    pace = Backoff(initial=min(FIRST_POLL_S, poll_s), cap=poll_s, jitter=0)
    with waiters.watch(*first, also=rest) as waiter:
        while True:
            value = read()
            if value is not None or (deadline is not None and now_ms() >= deadline):
                return value
            waiter.wait(_next_wait(pace, deadline))
            if check is not None:
                check()


async def until_async(
    waiters: Waiters,
    ids: Sequence[str],
    read: Callable[[], Awaitable[T | None]],
    poll_s: float,
    *,
    deadline: int | None = None,
    also: Sequence[Key] = (),
    check: Callable[[], None] | None = None,
) -> T | None:
    """``until`` on the event loop: the same wake-ups, holding no thread while it waits."""
    first, rest = _keys(ids, also)
    pace = Backoff(initial=min(FIRST_POLL_S, poll_s), cap=poll_s, jitter=0)
    with waiters.watch(*first, also=rest, asynchronous=True) as waiter:
        while True:
            value = await read()
            if value is not None or (deadline is not None and now_ms() >= deadline):
                return value
            await waiter.wait_async(_next_wait(pace, deadline))
            if check is not None:
                check()


def first_finished(store: Store, waiters: Waiters, ids: Sequence[str], poll_s: float) -> str:
    found = until(waiters, ids, lambda: winner(store, ids), poll_s)
    assert found is not None  # no deadline: only a value ends the wait
    return found


async def first_finished_async(store: Store, waiters: Waiters, ids: Sequence[str], poll_s: float, aio: Aio) -> str:
    async def read() -> str | None:
        found: str | None = await aio(winner, store, ids)
        return found

    found = await until_async(waiters, ids, read, poll_s)
    assert found is not None
    return found


# -- in a workflow: the answer is recorded at a step position ---------------------------------------
@dataclass(frozen=True)
class _Plan:
    ids: list[str]
    poll_s: float
    ctx: WorkflowContext | None
    function_id: int = 0
    recorded: StepRow | None = None
    deadline_slot: tuple[int, StepRow | None] | None = None

    @property
    def also(self) -> list[Key]:
        if self.ctx is None:
            return []
        wid = self.ctx.workflow_id  # this run's cancellation, here or (terminal status) elsewhere
        return [(Hint.CANCEL, wid, ""), (Hint.DONE, wid, "")]

    def check(self) -> None:
        if self.ctx is not None:
            self.ctx.check_cancelled()


def _slot(ctx: WorkflowContext, name: str) -> tuple[int, StepRow | None]:
    fid = ctx.next_function_id()
    return fid, recorded_outcome(ctx.recorded, workflow_id=ctx.workflow_id, function_id=fid, name=name)


def _plan(ids: Sequence[str], poll_s: Any, api: str, name: str, *, timeout_ms: int | None = None) -> _Plan:
    """Check the arguments, then take the step positions (before any I/O, so concurrent async
    callers take them in a deterministic order). Inside a step the call is plain code."""
    checked, poll = checked_ids(ids, api), checked_poll(poll_s, api)
    ctx = current_workflow.get()
    if ctx is None or current_step.get() is not None:
        return _Plan(checked, poll, None)
    deadline_slot = _slot(ctx, ASYNCIO_WAIT_DEADLINE) if timeout_ms is not None else None
    fid, recorded = _slot(ctx, name)
    if recorded is None:
        ctx.check_cancelled()
    return _Plan(checked, poll, ctx, fid, recorded, deadline_slot)


def _record(plan: _Plan, name: str, value: Any) -> Any:
    """Record ``value`` at the plan's position; the value that counts (a racing run may have won)."""
    assert plan.ctx is not None
    now = now_ms()
    row = StepRow(
        plan.ctx.workflow_id, plan.function_id, name, serialization.dumps(value, what=name), None, None, now, now
    )
    return serialization.loads(step.record(plan.ctx, row).output)


def _replayed_winner(plan: _Plan, row: StepRow) -> str:
    assert plan.ctx is not None
    won = str(serialization.loads(row.output))
    if won not in plan.ids:
        raise TransactError(
            f"workflow {plan.ctx.workflow_id!r} is not deterministic: at step {plan.function_id} "
            f"{WAIT_FIRST} recorded workflow {won!r} as the first to finish, but the handles passed now "
            f"are {plan.ids!r}. Restore the previous code to finish it, or fork it before this step."
        )
    return won


def wait_first(rt: Runtime, ids: Sequence[str], polling_interval_sec: float = 1.0) -> str:
    """The id of the first of ``ids`` to finish; in a workflow, recorded (replays return it at once)."""
    plan = _plan(ids, polling_interval_sec, "DBOS.wait_first", WAIT_FIRST)
    if plan.recorded is not None:
        return _replayed_winner(plan, plan.recorded)
    found = until(
        rt.waiters, plan.ids, lambda: winner(rt.store, plan.ids), plan.poll_s, also=plan.also, check=plan.check
    )
    assert found is not None
    return found if plan.ctx is None else str(_record(plan, WAIT_FIRST, found))


async def wait_first_async(rt: Runtime, ids: Sequence[str], polling_interval_sec: float = 1.0) -> str:
    plan = _plan(ids, polling_interval_sec, "DBOS.wait_first_async", WAIT_FIRST)
    if plan.recorded is not None:
        return _replayed_winner(plan, plan.recorded)

    async def read() -> str | None:
        return await rt.aio(winner, rt.store, plan.ids)

    found = await until_async(rt.waiters, plan.ids, read, plan.poll_s, also=plan.also, check=plan.check)
    assert found is not None
    return found if plan.ctx is None else str(await rt.aio(_record, plan, WAIT_FIRST, found))


# -- asyncio_wait: the (done, pending) partition -----------------------------------------------------
def _deadline(plan: _Plan, timeout_ms: int | None) -> int | None:
    """The absolute deadline (epoch ms); in a workflow recorded once, so a restart keeps it."""
    if timeout_ms is None:
        return None
    if plan.ctx is None or plan.deadline_slot is None:
        return now_ms() + timeout_ms
    fid, recorded = plan.deadline_slot
    if recorded is not None:
        return int(serialization.loads(recorded.output))
    now = now_ms()
    data = serialization.dumps(now + timeout_ms, what=ASYNCIO_WAIT_DEADLINE)
    row = StepRow(plan.ctx.workflow_id, fid, ASYNCIO_WAIT_DEADLINE, data, None, None, now, now)
    return int(serialization.loads(step.record(plan.ctx, row).output))


def _replayed_done(plan: _Plan, row: StepRow) -> list[str]:
    assert plan.ctx is not None
    done = [str(ident) for ident in serialization.loads(row.output)]
    missing = [ident for ident in done if ident not in plan.ids]
    if missing:
        raise TransactError(
            f"workflow {plan.ctx.workflow_id!r} is not deterministic: at step {plan.function_id} "
            f"{ASYNCIO_WAIT} recorded {missing!r} as finished, but the handles passed now are {plan.ids!r}. "
            "Restore the previous code to finish it, or fork it before this step."
        )
    return done


async def asyncio_wait(
    rt: Runtime,
    ids: Sequence[str],
    *,
    timeout: float | None = None,
    return_when: str = ALL_COMPLETED,
    polling_interval_sec: float = 1.0,
) -> list[str]:
    """The ids (in list order) that had finished when ``return_when`` held or ``timeout`` seconds
    passed; in a workflow the deadline and the answer are recorded, so a replay sees the same split."""
    api = "DBOS.asyncio_wait"
    when = checked_return_when(return_when, api)
    timeout_ms = checked_timeout_ms(timeout, api)
    plan = _plan(ids, polling_interval_sec, api, ASYNCIO_WAIT, timeout_ms=timeout_ms)
    if plan.recorded is not None:
        return _replayed_done(plan, plan.recorded)

    async def read() -> list[str] | None:
        partition: list[str] | None = await rt.aio(_partition, rt.store, plan.ids, when, final=False)
        return partition

    deadline = await rt.aio(_deadline, plan, timeout_ms)
    done = await until_async(
        rt.waiters, plan.ids, read, plan.poll_s, deadline=deadline, also=plan.also, check=plan.check
    )
    if done is None:  # the deadline passed first: whatever had finished by then
        done = await rt.aio(_partition, rt.store, plan.ids, when, final=True)
        assert done is not None
    if plan.ctx is None:
        return done
    return [str(ident) for ident in await rt.aio(_record, plan, ASYNCIO_WAIT, done)]
