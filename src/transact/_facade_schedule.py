"""DBOS facade mixin. Scheduled workflows: @DBOS.scheduled and dynamic schedules (issue 6).

Classmethods here are short delegations to the engine; reach the runtime with
``transact._current.runtime()``. Must not import transact._dbos.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from transact import _current
from transact.engine import scheduler as sched
from transact.engine.clock import now_ms
from transact.engine.registry import REGISTRY
from transact.engine.runtime import Runtime
from transact.errors import ConfigError, ScheduleNotFoundError
from transact.storage.rows import ScheduleRow

F = TypeVar("F", bound=Callable[..., Any])


class _ScheduleFacade:
    @classmethod
    def scheduled(cls, cron: str, *, timezone: str | None = None, backfill: bool = False) -> Callable[[F], F]:
        """Run the decorated workflow once per cron tick, exactly once across all processes.

        Stack it above ``@DBOS.workflow()``; the workflow takes ``(scheduled_time, actual_time)``.
        ``cron`` has 5 fields, or 6 with seconds first; it is read in UTC unless ``timezone`` (an
        IANA name) is given. Ticks missed while no process ran are skipped, unless ``backfill``."""
        parsed = sched.parse_cron(cron, timezone)  # a bad cron fails here, at decoration
        if not isinstance(backfill, bool):
            raise ConfigError(f"@DBOS.scheduled backfill must be True or False, got {backfill!r}")

        def decorate(fn: F) -> F:
            if not callable(fn):
                raise ConfigError(f"@DBOS.scheduled({cron!r}) must decorate a workflow function, got {fn!r}")
            if getattr(fn, "__transact_schedule__", None) is not None:
                raise ConfigError(
                    f"{fn.__qualname__!r} is already scheduled; use DBOS.create_schedule() for another schedule"
                )
            spec = sched.ScheduleSpec(fn, parsed, backfill)
            info = spec.resolve(REGISTRY)
            if info is not None:
                sched.check_signature(info)
            sched.declare(REGISTRY, spec)
            fn.__transact_schedule__ = spec  # type: ignore[attr-defined]
            scheduler = _scheduler_if_running()
            if scheduler is not None and info is not None:
                scheduler.refresh()  # decorated after launch(): start firing now
            return fn

        return decorate

    @classmethod
    def create_schedule(
        cls,
        schedule_name: str,
        workflow_fn: Callable[..., Any] | str,
        schedule: str,
        *,
        timezone: str | None = None,
        backfill: bool = False,
    ) -> None:
        """Create a schedule at run time (persisted; every process registering the workflow fires it).

        ``workflow_fn`` is a workflow or a registered workflow name; it takes
        ``(scheduled_time, actual_time)``. Fails if the name is taken."""
        rt = _current.runtime()
        if not isinstance(schedule_name, str) or not schedule_name.strip():
            raise ConfigError(f"schedule_name must be a non-empty string, got {schedule_name!r}")
        cron = sched.parse_cron(schedule, timezone)
        if not isinstance(backfill, bool):
            raise ConfigError(f"backfill must be True or False, got {backfill!r}")
        info = sched.workflow_of(workflow_fn, rt.registry)
        sched.check_signature(info)
        now = now_ms()
        row = ScheduleRow(schedule_name, info.name, cron.expr, cron.tz, "ACTIVE", backfill, True, now, now, now)
        if not rt.store.schedule_create(row):
            raise ConfigError(
                f"a schedule named {schedule_name!r} already exists; delete it first or choose another name"
            )
        _refresh(rt)

    @classmethod
    def list_schedules(
        cls,
        *,
        status: str | None = None,
        workflow_name: str | None = None,
        schedule_name_prefix: str | None = None,
    ) -> list[dict[str, Any]]:
        """Every schedule (declared in code and dynamic), by name; ``status`` is ACTIVE or PAUSED."""
        if status is not None and status not in ("ACTIVE", "PAUSED"):
            raise ConfigError(f"status must be 'ACTIVE' or 'PAUSED', got {status!r}")
        rows = _current.runtime().store.schedule_list(
            state=status, workflow_name=workflow_name, name_prefix=schedule_name_prefix
        )
        return [_as_dict(row) for row in rows]

    @classmethod
    def get_schedule(cls, schedule_name: str) -> dict[str, Any] | None:
        row = _current.runtime().store.schedule_get(schedule_name)
        return _as_dict(row) if row is not None else None

    @classmethod
    def pause_schedule(cls, schedule_name: str) -> None:
        """Stop firing a schedule (in every process) until it is resumed."""
        _set_state(schedule_name, "PAUSED")

    @classmethod
    def resume_schedule(cls, schedule_name: str) -> None:
        """Fire a paused schedule again from its next tick; ticks that fell while paused are skipped."""
        _set_state(schedule_name, "ACTIVE")

    @classmethod
    def delete_schedule(cls, schedule_name: str) -> None:
        """Delete a schedule created with create_schedule(). Workflows already started are kept."""
        rt = _current.runtime()
        if schedule_name in _declared_here(rt):
            raise ConfigError(
                f"schedule {schedule_name!r} is declared in code with @DBOS.scheduled; remove the decorator "
                "to delete it, or pause it with DBOS.pause_schedule()"
            )
        if not rt.store.schedule_delete(schedule_name):
            raise ScheduleNotFoundError(schedule_name)
        _refresh(rt)


def _set_state(schedule_name: str, state: str) -> None:
    rt = _current.runtime()
    if rt.store.schedule_set_state(schedule_name, state, now_ms()) is None:
        raise ScheduleNotFoundError(schedule_name)
    _refresh(rt)


def _declared_here(rt: Runtime) -> set[str]:
    names: set[str] = set()
    for spec in list(rt.registry.schedules):
        info = spec.resolve(rt.registry) if isinstance(spec, sched.ScheduleSpec) else None
        if info is not None:
            names.add(info.name)
    return names


def _refresh(rt: Runtime) -> None:
    """Apply a change in this process before returning (others see it by hint or poll)."""
    scheduler = sched.scheduler_of(rt)
    if scheduler is not None:
        scheduler.refresh()


def _scheduler_if_running() -> sched.Scheduler | None:
    rt = _current.runtime_or_none()
    if rt is None or not rt.launched:
        return None
    return sched.scheduler_of(rt)


def _as_dict(row: ScheduleRow) -> dict[str, Any]:
    return {
        "schedule_name": row.schedule_name,
        "workflow_name": row.workflow_name,
        "schedule": row.cron,
        "timezone": row.timezone,
        "status": row.state,
        "backfill": row.backfill,
        "dynamic": row.dynamic,
        "last_tick_at": row.last_tick_at,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }
