"""Managing schedules: declare (``@DBOS.scheduled``), create, apply, list, read, pause, resume,
delete, backfill and trigger.

Schedules are rows in the system database, so every process fires the same ones; a change made
here is applied to this process's scheduler before returning, others see it by hint or poll.
Every function works on a store, with the runtime when called in an application (``rt``) or
without it from a client. Must not import the facade.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

from transact.engine import scheduler as sched
from transact.engine import serialization, starts
from transact.engine import workflow as wf
from transact.engine.clock import now_ms
from transact.engine.registry import REGISTRY, Registry
from transact.engine.runtime import Runtime
from transact.engine.starts import QueueSpec
from transact.errors import ConfigError, ScheduleNotFoundError
from transact.storage import Conflict, Store
from transact.storage.rows import ScheduleRow

ACTIVE = "ACTIVE"
PAUSED = "PAUSED"
# One backfill call starts at most this many runs (a 1-second cron over a day is 86,400).
MAX_BACKFILL_TICKS = 10_000


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


def pick(name: str, value: object, old_name: str, old_value: object, default: object) -> Any:
    """One argument known by two keywords (DBOS 3.x's and the earlier one): either, or both when equal."""
    if value is None:
        return default if old_value is None else old_value
    if old_value is not None and old_value != value:
        raise ConfigError(f"{name}={value!r} and {old_name}={old_value!r} disagree; pass only {name}")
    return value


def definition(
    registry: Registry | None,
    schedule_name: object,
    workflow_fn: object,
    schedule: object,
    *,
    context: Any = None,
    automatic_backfill: object = False,
    cron_timezone: object = None,
    queue_name: object = None,
) -> ScheduleRow:
    """A schedule created at run time, checked: every bad argument is named. ``registry`` None (a
    client): the workflow is known by name only and its signature cannot be checked."""
    if not isinstance(schedule_name, str) or not schedule_name.strip():
        raise ConfigError(f"schedule_name must be a non-empty string, got {schedule_name!r}")
    cron = sched.parse_cron(schedule, cron_timezone)
    if not isinstance(automatic_backfill, bool):
        raise ConfigError(f"automatic_backfill must be True or False, got {automatic_backfill!r}")
    if queue_name is not None and (not isinstance(queue_name, str) or not queue_name):
        raise ConfigError(f"queue_name must be a non-empty string or None, got {queue_name!r}")
    if registry is None:
        if not isinstance(workflow_fn, str) or not workflow_fn:
            raise ConfigError(f"workflow_name must be a registered workflow's name, got {workflow_fn!r}")
        workflow_name = workflow_fn
    else:
        info = sched.workflow_of(workflow_fn, registry)
        sched.check_signature(info, second="context: Any")
        workflow_name = info.name
        if queue_name is not None and queue_name not in registry.queues:
            raise ConfigError(
                f"queue_name {queue_name!r} of schedule {schedule_name!r} is not a declared queue; "
                f"declare Queue({queue_name!r}) first, or leave queue_name out to start each run directly"
            )
    pickled = serialization.dumps(context, what=f"the context of schedule {schedule_name!r}")
    now = now_ms()
    return ScheduleRow(
        schedule_name=schedule_name,
        workflow_name=workflow_name,
        cron=cron.expr,
        timezone=cron.tz,
        state=ACTIVE,
        backfill=automatic_backfill,
        dynamic=True,
        last_tick_at=now,
        created_at=now,
        updated_at=now,
        context=pickled,
        queue_name=queue_name,
    )


_ITEM_KEYS = (
    "schedule_name",
    "workflow_fn",
    "schedule",
    "context",
    "automatic_backfill",
    "cron_timezone",
    "queue_name",
)


def definitions(registry: Registry | None, schedules: object) -> list[ScheduleRow]:
    """``apply_schedules``'s list, checked. A client names workflows with ``workflow_name``."""
    if isinstance(schedules, Mapping) or not isinstance(schedules, Sequence) or isinstance(schedules, str):
        raise ConfigError(f"apply_schedules takes a list of schedule dicts, got {schedules!r}")
    rows: list[ScheduleRow] = []
    for position, item in enumerate(schedules):
        if not isinstance(item, Mapping):
            raise ConfigError(f"apply_schedules item #{position} must be a dict, got {item!r}")
        entry = dict(item)
        if registry is None and "workflow_name" in entry:
            entry["workflow_fn"] = entry.pop("workflow_name")
        unknown = sorted(str(k) for k in entry if k not in _ITEM_KEYS)
        missing = [k for k in _ITEM_KEYS[:3] if k not in entry]
        if unknown or missing:
            problem = f"unknown key {unknown[0]!r}" if unknown else f"missing key {missing[0]!r}"
            raise ConfigError(
                f"apply_schedules item #{position} has {problem}; keys are: {', '.join(_ITEM_KEYS)} "
                "(schedule_name, workflow_fn and schedule are required)"
            )
        entry["automatic_backfill"] = entry.get("automatic_backfill", False)
        rows.append(definition(registry, **entry))
    names = [r.schedule_name for r in rows]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(f"apply_schedules lists schedule {twice[0]!r} more than once; give each a unique name")
    return rows


def _owned(row: ScheduleRow, rt: Runtime | None, application_name: str | None) -> ScheduleRow:
    """The row owned by the creating application (a process's config name, a client's
    ``application_name``; None: any application fires it)."""
    owner = rt.settings.name if rt is not None else application_name
    return replace(row, application_name=owner)


def create(store: Store, row: ScheduleRow, rt: Runtime | None = None, application_name: str | None = None) -> None:
    row = _owned(row, rt, application_name)
    if not store.schedule_create(row):
        found = store.schedule_get(row.schedule_name)
        owner = found.application_name if found is not None else None
        if owner is not None and owner != row.application_name:
            raise ConfigError(
                f"schedule {row.schedule_name!r} belongs to application {owner!r}, not to {row.application_name!r}: "
                "schedule names are unique across the applications sharing a system database; choose another name"
            )
        raise ConfigError(
            f"a schedule named {row.schedule_name!r} already exists; delete it first, choose another name, "
            "or use apply_schedules() to create or update it"
        )
    _refresh(rt)


def apply(
    store: Store, rows: list[ScheduleRow], rt: Runtime | None = None, application_name: str | None = None
) -> None:
    """Create or update every listed schedule at once; schedules not listed are left as they are."""
    rows = [_owned(row, rt, application_name) for row in rows]
    declared = _declared_here(rt) if rt is not None else set()
    for row in rows:
        if row.schedule_name in declared:
            raise ConfigError(_declared_error(row.schedule_name, "apply_schedules"))
    try:
        store.schedule_apply(rows)
    except Conflict as exc:
        raise ConfigError(f"apply_schedules: {exc}; use another name") from None
    _refresh(rt)


def backfill(store: Store, schedule_name: str, start: object, end: object, rt: Runtime | None = None) -> list[str]:
    """Run every tick of the schedule in ``[start, end)``; a tick whose workflow exists already
    (fired, backfilled or triggered before) is not run again. Returns every tick's workflow id."""
    row = _row(store, schedule_name)
    start_ms, end_ms = _instant(start, "start"), _instant(end, "end")
    if start_ms >= end_ms:
        raise ConfigError(f"backfill_schedule start ({start!r}) must be before end ({end!r})")
    cron = sched.parse_cron(row.cron, row.timezone)
    ticks: list[datetime] = []
    for tick in cron.ticks_after(start_ms - 1):
        if int(tick.timestamp() * 1000) >= end_ms:
            break
        if len(ticks) == MAX_BACKFILL_TICKS:
            raise ConfigError(
                f"backfill_schedule({schedule_name!r}) covers more than {MAX_BACKFILL_TICKS} ticks; "
                "backfill a shorter range at a time"
            )
        ticks.append(tick)
    return [_start(store, rt, row, tick, sched.tick_workflow_id(row.schedule_name, tick)) for tick in ticks]


def trigger(store: Store, schedule_name: str, rt: Runtime | None = None) -> str:
    """Run the schedule's workflow once now, outside its cron ticks (paused schedules too)."""
    row = _row(store, schedule_name)
    tick = datetime.fromtimestamp(now_ms() / 1000, sched.parse_cron(row.cron, row.timezone).zone)
    stamp = tick.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return _start(store, rt, row, tick, f"sched-{row.schedule_name}-trigger-{stamp}")


def _start(store: Store, rt: Runtime | None, row: ScheduleRow, tick: datetime, workflow_id: str) -> str:
    """Start (or enqueue) one tick's run: here when this process registers the workflow, else as
    an unowned row that a process registering it adopts (or its queue's workers claim)."""
    args = sched.run_args(row.dynamic, row.context, tick)
    queue = QueueSpec(row.queue_name) if row.queue_name else None
    info = rt.registry.workflow(row.workflow_name) if rt is not None and rt.launched else None
    if rt is not None and info is not None:
        return wf.start(rt, info, args, {}, workflow_id=workflow_id, queue=queue)
    inputs = serialization.dumps_inputs(None, args, {}, workflow=row.workflow_name)
    new = starts.new_row(
        workflow_id=workflow_id,
        name=row.workflow_name,
        inputs=inputs,
        now=now_ms(),
        queue=queue,
        application_name=row.application_name,  # the schedule's application runs its ticks
    )
    _, inserted = starts.insert(store, new)
    if inserted and queue is None:
        store.admin_wake_adopters()
    return workflow_id


def _row(store: Store, schedule_name: str) -> ScheduleRow:
    row = store.schedule_get(schedule_name)
    if row is None:
        raise ScheduleNotFoundError(schedule_name)
    return row


def _instant(value: object, what: str) -> int:
    """A datetime as epoch ms; a naive one is read as UTC."""
    if not isinstance(value, datetime):
        raise ConfigError(f"backfill_schedule {what} must be a datetime, got {value!r}")
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return int(value.timestamp() * 1000)


def list_all(
    store: Store,
    *,
    status: str | None = None,
    workflow_name: str | None = None,
    schedule_name_prefix: str | None = None,
) -> list[dict[str, Any]]:
    if status is not None and status not in (ACTIVE, PAUSED):
        raise ConfigError(f"status must be 'ACTIVE' or 'PAUSED', got {status!r}")
    rows = store.schedule_list(state=status, workflow_name=workflow_name, name_prefix=schedule_name_prefix)
    return [as_dict(row) for row in rows]


def get(store: Store, schedule_name: str) -> dict[str, Any] | None:
    row = store.schedule_get(schedule_name)
    return as_dict(row) if row is not None else None


def set_state(store: Store, schedule_name: str, state: str, rt: Runtime | None = None) -> None:
    if store.schedule_set_state(schedule_name, state, now_ms()) is None:
        raise ScheduleNotFoundError(schedule_name)
    _refresh(rt)


def delete(store: Store, schedule_name: str, rt: Runtime | None = None) -> None:
    if rt is not None and schedule_name in _declared_here(rt):
        raise ConfigError(_declared_error(schedule_name, "delete"))
    if not store.schedule_delete(schedule_name):
        raise ScheduleNotFoundError(schedule_name)
    _refresh(rt)


def _declared_error(schedule_name: str, action: str) -> str:
    return (
        f"schedule {schedule_name!r} is declared in code with @DBOS.scheduled, so {action} cannot change it; "
        "edit or remove the decorator, or pause it with DBOS.pause_schedule()"
    )


def _declared_here(rt: Runtime) -> set[str]:
    names: set[str] = set()
    for spec in list(rt.registry.schedules):
        info = spec.resolve(rt.registry) if isinstance(spec, sched.ScheduleSpec) else None
        if info is not None:
            names.add(info.name)
    return names


def _refresh(rt: Runtime | None) -> None:
    """Apply a change in this process before returning (others see it by hint or poll)."""
    if rt is not None and rt.scheduler is not None:
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
        "context": serialization.loads(row.context) if row.dynamic else None,
        "automatic_backfill": row.backfill,
        "cron_timezone": row.timezone,
        "queue_name": row.queue_name,
    }
