"""DBOS facade: scheduled workflows (``@DBOS.scheduled``) and schedules created at run time
(create, apply, list, pause, resume, delete, backfill, trigger; each with an ``_async`` form).

Delegates to ``engine/sch.py``. Must not import transact._dbos.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from transact._facade._base import FacadeBase
from transact._handles import WorkflowHandle, WorkflowHandleAsync
from transact.engine import schedules as sch
from transact.engine.runtime import Runtime
from transact.storage.rows import ScheduleRow

F = TypeVar("F", bound=Callable[..., Any])


class ScheduleFacade(FacadeBase):
    @classmethod
    def scheduled(cls, cron: str, *, timezone: str | None = None, backfill: bool = False) -> Callable[[F], F]:
        """Run the decorated workflow once per cron tick, exactly once across all processes.

        Stack it above ``@DBOS.workflow()``; the workflow takes ``(scheduled_time, actual_time)``.
        ``cron`` has 5 fields, or 6 with seconds first; it is read in UTC unless ``timezone`` (an
        IANA name) is given. Ticks missed while no process ran are skipped, unless ``backfill``."""
        sch.check(cron, timezone, backfill)  # bad arguments fail here, at decoration

        def decorate(fn: F) -> F:
            sch.declare(fn, cron, timezone, backfill, cls._rt_or_none())
            return fn

        return decorate

    @classmethod
    def create_schedule(
        cls,
        schedule_name: str,
        workflow_fn: Callable[..., Any] | str,
        schedule: str,
        *,
        context: Any = None,
        automatic_backfill: bool | None = None,
        cron_timezone: str | None = None,
        queue_name: str | None = None,
        timezone: str | None = None,
        backfill: bool | None = None,
    ) -> None:
        """Create a schedule at run time, stored in the system database: every process registering
        the workflow fires it, each tick once. Fails if the name is taken (see apply_schedules).

        ``workflow_fn`` (a workflow, or a registered workflow's name) takes ``(scheduled_time,
        context)``. ``cron_timezone``: IANA zone the cron is read in (UTC by default).
        ``automatic_backfill``: after downtime, run the ticks missed since the last one fired.
        ``queue_name``: enqueue each run on that queue instead of starting it. ``timezone`` and
        ``backfill`` are accepted as other names of ``cron_timezone`` and ``automatic_backfill``."""
        rt = cls._rt()
        sch.create(rt.store, _definition(rt, locals()), rt)

    @classmethod
    async def create_schedule_async(
        cls,
        schedule_name: str,
        workflow_fn: Callable[..., Any] | str,
        schedule: str,
        *,
        context: Any = None,
        automatic_backfill: bool | None = None,
        cron_timezone: str | None = None,
        queue_name: str | None = None,
        timezone: str | None = None,
        backfill: bool | None = None,
    ) -> None:
        rt = cls._rt()
        await rt.aio(sch.create, rt.store, _definition(rt, locals()), rt)

    @classmethod
    def apply_schedules(cls, schedules: list[dict[str, Any]]) -> None:
        """Create or update every listed schedule in one transaction (dicts with the keys of
        create_schedule); a listed schedule already stored with the same definition is left as it
        is, a changed one is redefined (its pause state kept). Schedules not listed are untouched.
        Safe to call from every process at start: they all end with the same sch."""
        rt = cls._rt()
        sch.apply(rt.store, sch.definitions(rt.registry, schedules), rt)

    @classmethod
    async def apply_schedules_async(cls, schedules: list[dict[str, Any]]) -> None:
        rt = cls._rt()
        await rt.aio(sch.apply, rt.store, sch.definitions(rt.registry, schedules), rt)

    @classmethod
    def backfill_schedule(cls, schedule_name: str, start: datetime, end: datetime) -> list[WorkflowHandle[Any]]:
        """Run the schedule's ticks from ``start`` (included) to ``end`` (excluded) whose workflow
        has not run yet; ticks that already ran are not run again. Returns a handle per tick."""
        rt = cls._rt()
        return [
            WorkflowHandle(rt, wid, rt.runs.future(wid))
            for wid in sch.backfill(rt.store, schedule_name, start, end, rt)
        ]

    @classmethod
    async def backfill_schedule_async(
        cls, schedule_name: str, start: datetime, end: datetime
    ) -> list[WorkflowHandleAsync[Any]]:
        rt = cls._rt()
        ids = await rt.aio(sch.backfill, rt.store, schedule_name, start, end, rt)
        return [WorkflowHandleAsync(rt, wid) for wid in ids]

    @classmethod
    def trigger_schedule(cls, schedule_name: str) -> WorkflowHandle[Any]:
        """Run the schedule's workflow once now (scheduled time: now), outside its cron ticks."""
        rt = cls._rt()
        wid = sch.trigger(rt.store, schedule_name, rt)
        return WorkflowHandle(rt, wid, rt.runs.future(wid))

    @classmethod
    async def trigger_schedule_async(cls, schedule_name: str) -> WorkflowHandleAsync[Any]:
        rt = cls._rt()
        return WorkflowHandleAsync(rt, await rt.aio(sch.trigger, rt.store, schedule_name, rt))

    @classmethod
    def list_schedules(
        cls,
        *,
        status: str | None = None,
        workflow_name: str | None = None,
        schedule_name_prefix: str | None = None,
    ) -> list[dict[str, Any]]:
        """Every schedule (declared in code and created at run time), by name; ``status`` is
        ACTIVE or PAUSED."""
        return sch.list_all(
            cls._rt().store, status=status, workflow_name=workflow_name, schedule_name_prefix=schedule_name_prefix
        )

    @classmethod
    async def list_schedules_async(
        cls,
        *,
        status: str | None = None,
        workflow_name: str | None = None,
        schedule_name_prefix: str | None = None,
    ) -> list[dict[str, Any]]:
        rt = cls._rt()
        return await rt.aio(
            lambda: sch.list_all(
                rt.store, status=status, workflow_name=workflow_name, schedule_name_prefix=schedule_name_prefix
            )
        )

    @classmethod
    def get_schedule(cls, schedule_name: str) -> dict[str, Any] | None:
        return sch.get(cls._rt().store, schedule_name)

    @classmethod
    async def get_schedule_async(cls, schedule_name: str) -> dict[str, Any] | None:
        rt = cls._rt()
        return await rt.aio(sch.get, rt.store, schedule_name)

    @classmethod
    def pause_schedule(cls, schedule_name: str) -> None:
        """Stop firing a schedule (in every process) until it is resumed."""
        rt = cls._rt()
        sch.set_state(rt.store, schedule_name, sch.PAUSED, rt)

    @classmethod
    async def pause_schedule_async(cls, schedule_name: str) -> None:
        rt = cls._rt()
        await rt.aio(sch.set_state, rt.store, schedule_name, sch.PAUSED, rt)

    @classmethod
    def resume_schedule(cls, schedule_name: str) -> None:
        """Fire a paused schedule again from its next tick; ticks that fell while paused are skipped."""
        rt = cls._rt()
        sch.set_state(rt.store, schedule_name, sch.ACTIVE, rt)

    @classmethod
    async def resume_schedule_async(cls, schedule_name: str) -> None:
        rt = cls._rt()
        await rt.aio(sch.set_state, rt.store, schedule_name, sch.ACTIVE, rt)

    @classmethod
    def delete_schedule(cls, schedule_name: str) -> None:
        """Delete a schedule created at run time. Workflows already started are kept."""
        rt = cls._rt()
        sch.delete(rt.store, schedule_name, rt)

    @classmethod
    async def delete_schedule_async(cls, schedule_name: str) -> None:
        rt = cls._rt()
        await rt.aio(sch.delete, rt.store, schedule_name, rt)


def _definition(rt: Runtime, args: dict[str, Any]) -> ScheduleRow:
    """create_schedule's arguments (its ``locals()``), checked, with the earlier keyword names folded in."""
    return sch.definition(
        rt.registry,
        args["schedule_name"],
        args["workflow_fn"],
        args["schedule"],
        context=args["context"],
        automatic_backfill=sch.pick(
            "automatic_backfill", args["automatic_backfill"], "backfill", args["backfill"], False
        ),
        cron_timezone=sch.pick("cron_timezone", args["cron_timezone"], "timezone", args["timezone"], None),
        queue_name=args["queue_name"],
    )
