"""Managing schedules: declare (``@DBOS.scheduled``), create, list, read, pause, resume, delete.

Schedules are rows in the system database, so every process fires the same ones; a change made
here is applied to this process's scheduler before returning, others see it by hint or poll.
Must not import the facade.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from transact.engine import scheduler as sched
from transact.engine.clock import now_ms
from transact.engine.registry import REGISTRY
from transact.engine.runtime import Runtime
from transact.errors import ConfigError, ScheduleNotFoundError
from transact.storage.rows import ScheduleRow

ACTIVE = "ACTIVE"
PAUSED = "PAUSED"


def declare(fn: Callable[..., Any], cron: str, timezone: str | None, backfill: bool, rt: Runtime | None) -> None:
    """``@DBOS.scheduled``: check everything at decoration, record the declaration, and start firing
    at once when this process is already running."""
    parsed = check(cron, timezone, backfill)
    if not callable(fn):
        raise ConfigError(f"@DBOS.scheduled({cron!r}) must decorate a workflow function, got {fn!r}")
    if getattr(fn, "__transact_schedule__", None) is not None:
        raise ConfigError(f"{fn.__qualname__!r} is already scheduled; use DBOS.create_schedule() for another schedule")
    spec = sched.ScheduleSpec(fn, parsed, backfill)
    info = spec.resolve(REGISTRY)
    if info is not None:
        sched.check_signature(info)
    sched.declare(REGISTRY, spec)
    fn.__transact_schedule__ = spec  # type: ignore[attr-defined]
    if rt is not None and rt.launched and info is not None:
        _refresh(rt)  # decorated after launch(): start firing now


def check(cron: str, timezone: str | None, backfill: object) -> sched.Cron:
    """``@DBOS.scheduled``'s arguments, checked where the decorator is written."""
    parsed = sched.parse_cron(cron, timezone)
    if not isinstance(backfill, bool):
        raise ConfigError(f"@DBOS.scheduled backfill must be True or False, got {backfill!r}")
    return parsed


def create(
    rt: Runtime,
    schedule_name: str,
    workflow_fn: Callable[..., Any] | str,
    schedule: str,
    *,
    timezone: str | None = None,
    backfill: bool = False,
) -> None:
    if not isinstance(schedule_name, str) or not schedule_name.strip():
        raise ConfigError(f"schedule_name must be a non-empty string, got {schedule_name!r}")
    cron = sched.parse_cron(schedule, timezone)
    if not isinstance(backfill, bool):
        raise ConfigError(f"backfill must be True or False, got {backfill!r}")
    info = sched.workflow_of(workflow_fn, rt.registry)
    sched.check_signature(info)
    now = now_ms()
    row = ScheduleRow(schedule_name, info.name, cron.expr, cron.tz, ACTIVE, backfill, True, now, now, now)
    if not rt.store.schedule_create(row):
        raise ConfigError(f"a schedule named {schedule_name!r} already exists; delete it first or choose another name")
    _refresh(rt)


def list_all(
    rt: Runtime, *, status: str | None, workflow_name: str | None, schedule_name_prefix: str | None
) -> list[dict[str, Any]]:
    if status is not None and status not in (ACTIVE, PAUSED):
        raise ConfigError(f"status must be 'ACTIVE' or 'PAUSED', got {status!r}")
    rows = rt.store.schedule_list(state=status, workflow_name=workflow_name, name_prefix=schedule_name_prefix)
    return [as_dict(row) for row in rows]


def get(rt: Runtime, schedule_name: str) -> dict[str, Any] | None:
    row = rt.store.schedule_get(schedule_name)
    return as_dict(row) if row is not None else None


def set_state(rt: Runtime, schedule_name: str, state: str) -> None:
    if rt.store.schedule_set_state(schedule_name, state, now_ms()) is None:
        raise ScheduleNotFoundError(schedule_name)
    _refresh(rt)


def delete(rt: Runtime, schedule_name: str) -> None:
    if schedule_name in _declared_here(rt):
        raise ConfigError(
            f"schedule {schedule_name!r} is declared in code with @DBOS.scheduled; remove the decorator "
            "to delete it, or pause it with DBOS.pause_schedule()"
        )
    if not rt.store.schedule_delete(schedule_name):
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
    if rt.scheduler is not None:
        rt.scheduler.refresh()


def as_dict(row: ScheduleRow) -> dict[str, Any]:
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
