"""Cron schedules: one thread per process fires every schedule's ticks as workflows.

Exactly once per tick across processes: each tick's workflow id is derived from the schedule
name and the tick instant, and the workflow insert is idempotent, so every process may try every
tick and only one insert wins. Missed ticks (process down) are skipped unless the schedule opts
into backfill, which resumes from ``schedules.last_tick_at``. A run of a schedule declared with
``@DBOS.scheduled`` gets ``(scheduled_time, actual_time)``; one of a schedule created at run time
gets ``(scheduled_time, context)`` and is enqueued on the schedule's queue when it names one.
Must not import the facade.
"""

from __future__ import annotations

import inspect
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadCronError, CroniterBadDateError, CroniterNotAlphaError, croniter

from transact._lib.states import Hint
from transact.engine import clock, serialization
from transact.engine import workflow as wf
from transact.engine.clock import now_ms
from transact.engine.loop import LoopService
from transact.engine.registry import Registry, WorkflowInfo
from transact.engine.runtime import Runtime
from transact.engine.starts import QueueSpec
from transact.errors import ConfigError, WorkflowNotRegisteredError
from transact.storage import Conflict, Unavailable
from transact.storage.rows import ScheduleRow

log = logging.getLogger("transact")

# A running process that fell behind (a long database outage, a stopped VM) fires late ticks
# only this late; older ones are skipped as if the process had been down, unless backfilling.
LATE_GRACE_MS = 60_000
# Other processes' schedule changes arrive as hints: a Postgres trigger NOTIFYs, and on SQLite any
# commit by another connection shows up as "*" (re-read then, but at most once per HINTED_GAP_S).
# The poll is only a safety net, so an idle app costs next to nothing.
POLL_S = 30.0
HINTED_GAP_S = 1.0

_CRON_HELP = (
    "use 5 fields 'minute hour day-of-month month day-of-week' (e.g. '0 * * * *' for hourly), "
    "6 fields with seconds first (e.g. '*/10 * * * * *' for every 10 seconds), or an alias like '@daily'"
)
_FULL_NAMES = re.compile(
    r"\b(january|february|march|april|june|july|august|september|october|november|december"
    r"|monday|tuesday|wednesday|thursday|friday|saturday|sunday)\b",
    re.IGNORECASE,
)


# -- cron expressions ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Cron:
    """A validated cron expression and the time zone its fields are read in (None: UTC)."""

    expr: str
    tz: str | None = None

    @property
    def zone(self) -> tzinfo:
        return ZoneInfo(self.tz) if self.tz else timezone.utc

    def ticks_after(self, after_ms: int) -> Iterator[datetime]:
        """The ticks strictly after ``after_ms`` (epoch ms), as aware datetimes in the zone."""
        start = datetime.fromtimestamp(after_ms / 1000, self.zone)
        it = croniter(self.expr, start, second_at_beginning=True)
        while True:
            yield it.get_next(datetime)


def parse_cron(expr: object, tz: object = None) -> Cron:
    """Validate a cron string (and optional IANA time zone) or raise ConfigError showing it."""
    if not isinstance(expr, str) or not expr.strip():
        raise ConfigError(f"invalid cron schedule {expr!r}: {_CRON_HELP}")
    if tz is not None:
        if not isinstance(tz, str) or not tz:
            raise ConfigError(f"invalid timezone {tz!r}: use an IANA name such as 'Europe/Paris', or None for UTC")
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ConfigError(
                f"unknown timezone {tz!r} for cron schedule {expr!r}: use an IANA name such as 'Europe/Paris'"
            ) from exc
    # croniter knows three-letter month and day names only; accept the full ones too.
    text = _FULL_NAMES.sub(lambda m: m.group(0)[:3], " ".join(expr.split()))
    fields = len(text.split(" "))
    if not text.startswith("@") and fields not in (5, 6):
        raise ConfigError(f"invalid cron schedule {expr!r}: it has {fields} fields; {_CRON_HELP}")
    cron = Cron(text, tz)
    try:
        next(cron.ticks_after(now_ms()))  # also rejects dates that never occur, like '0 0 30 2 *'
    except (CroniterBadCronError, CroniterBadDateError, CroniterNotAlphaError, ValueError, KeyError) as exc:
        raise ConfigError(f"invalid cron schedule {expr!r} ({exc}); {_CRON_HELP}") from exc
    return cron


def tick_workflow_id(schedule_name: str, tick: datetime) -> str:
    """The one workflow id of a schedule's tick: the same in every process, whatever its zone."""
    return f"sched-{schedule_name}-{tick.astimezone(timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')}"


def check_signature(info: WorkflowInfo, *, second: str = "actual_time: datetime") -> None:
    """A scheduled workflow is called with (scheduled_time, ``second``): the actual time for
    ``@DBOS.scheduled``, the schedule's context for schedules created at run time."""
    try:
        signature = inspect.signature(info.func)
    except (TypeError, ValueError):
        return  # builtins and the like: nothing to check
    now = datetime.now(timezone.utc)
    try:
        signature.bind(now, now)
    except TypeError as exc:
        raise ConfigError(
            f"scheduled workflow {info.name!r} must accept two arguments (scheduled_time: datetime, "
            f"{second}), but its signature is {info.name}{signature} ({exc})"
        ) from None


def run_args(dynamic: bool, context: bytes | None, tick: datetime) -> tuple[datetime, Any]:
    """A tick's workflow arguments: (scheduled time, context) for a schedule created at run time,
    (scheduled time, actual time) for one declared with ``@DBOS.scheduled``."""
    if dynamic:
        return tick, serialization.loads(context)
    return tick, datetime.fromtimestamp(now_ms() / 1000, tick.tzinfo)


def workflow_of(fn_or_name: object, registry: Registry) -> WorkflowInfo:
    """The registered workflow for a decorated function or a workflow name, or a clear error."""
    if isinstance(fn_or_name, str):
        info = registry.workflow(fn_or_name)
        if info is None:
            raise WorkflowNotRegisteredError(
                f"no workflow named {fn_or_name!r} is registered in this process; "
                "decorate it with @DBOS.workflow() before scheduling it"
            )
        return info
    info = getattr(fn_or_name, "__transact_workflow__", None)
    if not isinstance(info, WorkflowInfo):
        raise WorkflowNotRegisteredError(
            f"{getattr(fn_or_name, '__qualname__', fn_or_name)!r} is not a workflow; "
            "decorate it with @DBOS.workflow() before scheduling it"
        )
    return info


# -- schedules declared in code ---------------------------------------------------------------
@dataclass
class ScheduleSpec:
    """``@DBOS.scheduled(cron)``. ``target`` is the workflow wrapper, or the plain function when
    the decorators are stacked the other way round (then it resolves once @workflow has run)."""

    target: Callable[..., Any]
    cron: Cron
    backfill: bool = False

    def resolve(self, registry: Registry) -> WorkflowInfo | None:
        info = getattr(self.target, "__transact_workflow__", None)
        if isinstance(info, WorkflowInfo):
            return info
        for candidate in list(registry.workflows.values()):
            if candidate.func is self.target:
                return candidate
        return None

    def describe(self) -> str:
        return f"{getattr(self.target, '__module__', '?')}.{getattr(self.target, '__qualname__', self.target)}"


def declare(registry: Registry, spec: ScheduleSpec) -> None:
    """Remember a declared schedule; a function of the same module and name replaces it (a
    re-imported module, a test defining it again), as the workflow registry does."""
    with registry.lock:
        registry.schedules[:] = [
            s for s in registry.schedules if not (isinstance(s, ScheduleSpec) and s.describe() == spec.describe())
        ]
        registry.schedules.append(spec)


def unresolved(registry: Registry) -> list[ScheduleSpec]:
    return [s for s in list(registry.schedules) if isinstance(s, ScheduleSpec) and s.resolve(registry) is None]


# -- the service --------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Definition:
    """What a process fires for one schedule; a change of any field restarts its ticks."""

    info: WorkflowInfo = field(compare=False)
    workflow_name: str
    cron: Cron
    backfill: bool
    dynamic: bool = False
    context: bytes | None = None  # pickled; passed to runs of schedules created at run time
    queue_name: str | None = None  # runs are enqueued here instead of started


class _Entry:
    __slots__ = ("definition", "name", "next_tick", "ticks")

    def __init__(self, name: str, definition: _Definition, after_ms: int) -> None:
        self.name = name
        self.definition = definition
        self.skip_to(after_ms)

    def skip_to(self, after_ms: int) -> None:
        self.ticks = self.definition.cron.ticks_after(after_ms)
        self.next_tick = next(self.ticks)

    @property
    def next_ms(self) -> int:
        return int(self.next_tick.timestamp() * 1000)


class Scheduler(LoopService):
    """Fires ticks in one thread that sleeps until the next tick of any schedule, woken early by
    stop() and by schedule changes (this process's writes, hints from others, or the poll)."""

    thread_name = "transact-scheduler"

    def __init__(self, rt: Runtime) -> None:
        super().__init__(rt)
        self.poll_s = POLL_S
        self._entries: dict[str, _Entry] = {}
        self._declared: set[str] = set()
        self._warned: set[str] = set()
        self._lock = threading.RLock()
        self._reload_at = 0.0  # time.monotonic() when the schedules are re-read next
        self._last_reload = 0.0
        clock.subscribe(self)

    # -- lifecycle ----------------------------------------------------------------------------
    def _prepare(self) -> None:
        self.refresh()  # declared schedules are in the database when launch() returns

    def on_hint(self, kind: str, ident: str, key: str) -> None:
        # No lock: called from the listener thread, which must not wait for our database calls.
        # With pushed wake-ups "*" means the listener reconnected (hints may be lost): reload now.
        if kind == Hint.SCHEDULE or (kind == Hint.ALL and self.rt.store.pushes_wakeups):
            self._reload_at = 0.0
            self._wake.set()
        elif kind == Hint.ALL:
            due = self._last_reload + HINTED_GAP_S
            if due < self._reload_at:
                self._reload_at = due
                self._wake.set()

    def on_clock_jump(self, reset: bool) -> None:
        """A test clock moved: fire the ticks it passed. One installed or removed moves time
        anywhere, so ticks start again from its time, as at launch."""
        if reset:
            with self._lock:
                self._entries.clear()
            self._reload_at = 0.0
        self._wake.set()

    def refresh(self) -> None:
        """Re-read the schedules now (in the caller's thread) and let the loop re-plan its sleep.

        After it returns this process fires nothing for a schedule paused or deleted before."""
        with self._lock:
            # Set before reading, so a hint that arrives during the read triggers another one.
            self._last_reload = time.monotonic()
            self._reload_at = self._last_reload + self.poll_s
            self._reload()
        self._wake.set()

    def next_ticks(self) -> dict[str, datetime]:
        """The next tick each active schedule will fire in this process (for tests and tools)."""
        with self._lock:
            return {name: entry.next_tick for name, entry in self._entries.items()}

    # -- the loop -----------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if time.monotonic() >= self._reload_at:
                    self.refresh()
                self._fire_due()
            except Unavailable as exc:
                if self._stop.is_set():
                    return
                log.warning("scheduler pass skipped: %s", exc)
                self._reload_at = time.monotonic() + HINTED_GAP_S  # re-read soon, not after the poll
            except Exception:
                log.exception("scheduler pass failed")
                self._reload_at = time.monotonic() + HINTED_GAP_S
            with self._lock:
                soonest = min((e.next_ms for e in self._entries.values()), default=None)
            timeout = self._reload_at - time.monotonic()
            if soonest is not None:
                timeout = min(timeout, clock.left_s(soonest, timeout))
            if timeout > 0:
                self._wake.wait(timeout)
            self._wake.clear()

    def _fire_due(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                due = [e for e in self._entries.values() if e.next_ms <= now_ms()]
            if not due:
                return
            entry = min(due, key=lambda e: e.next_ms)
            with self._lock:
                if self._entries.get(entry.name) is not entry:
                    continue  # paused, deleted or changed since it was picked
            late_ms = now_ms() - entry.next_ms
            # A test clock's jump is not a stall: it fires every tick it passed.
            if not entry.definition.backfill and late_ms > LATE_GRACE_MS and not clock.controlled():
                log.warning(
                    "schedule %r is %.0f s behind; skipping its older ticks (no backfill)", entry.name, late_ms / 1000
                )
                entry.skip_to(now_ms() - LATE_GRACE_MS)
                continue
            # Only this thread advances entries (refresh() replaces them), so the tick moves on
            # only once fired: if the database gives up (Unavailable), the next pass retries it.
            self._fire(entry, entry.next_tick)
            entry.next_tick = next(entry.ticks)

    def _fire(self, entry: _Entry, tick: datetime) -> None:
        definition = entry.definition
        wid = tick_workflow_id(entry.name, tick)
        queue = QueueSpec(definition.queue_name) if definition.queue_name else None
        try:
            args = run_args(definition.dynamic, definition.context, tick)
            # Idempotent insert: when another process already started this tick, nothing runs here.
            wf.start(self.rt, definition.info, args, {}, workflow_id=wid, queue=queue)
        except Unavailable:
            raise
        except Exception:
            log.exception("schedule %r could not start workflow %s for tick %s", entry.name, wid, tick)
        self.rt.store.schedule_advance(entry.name, int(tick.timestamp() * 1000))

    # -- planning -----------------------------------------------------------------------------
    def _reload(self) -> None:
        rt = self.rt
        now = now_ms()
        me = rt.settings.name
        # Another application's schedules fire there only; unowned ones (older rows, unnamed clients) anywhere.
        rows = {row.schedule_name: row for row in rt.store.schedule_list() if row.application_name in (None, me)}
        desired: dict[str, tuple[_Definition, ScheduleRow]] = {}
        for spec in list(rt.registry.schedules):
            if not isinstance(spec, ScheduleSpec):
                continue
            info = spec.resolve(rt.registry)
            if info is None:
                self._warn_once(spec.describe(), "is scheduled but is not a workflow; add @DBOS.workflow()")
                continue
            definition = _Definition(info, info.name, spec.cron, spec.backfill)
            row = rows.get(info.name)
            if row is None or info.name not in self._declared:
                # The code is the truth for declared schedules: (re)write the row at launch, or
                # when an operator deleted it; its pause state and progress are kept.
                declared = ScheduleRow(
                    info.name, info.name, spec.cron.expr, spec.cron.tz, "ACTIVE", spec.backfill, False, now, now, now
                )
                try:
                    row = rt.store.schedule_declare(replace(declared, application_name=me))
                except Conflict as exc:
                    raise ConfigError(f"@DBOS.scheduled on {info.name!r}: {exc}") from None
                self._declared.add(info.name)
            desired[info.name] = (definition, row)
        for row in rows.values():
            if not row.dynamic or row.schedule_name in desired:
                continue
            info = rt.registry.workflow(row.workflow_name)
            if info is None:
                self._warn_once(
                    row.schedule_name,
                    f"runs workflow {row.workflow_name!r}, not registered here; "
                    "processes that register it will fire it",
                )
                continue
            try:
                cron = parse_cron(row.cron, row.timezone)
            except ConfigError as exc:
                self._warn_once(row.schedule_name, f"is invalid and will not fire: {exc}")
                continue
            desired[row.schedule_name] = (
                _Definition(info, info.name, cron, row.backfill, True, row.context, row.queue_name),
                row,
            )
        with self._lock:
            for name in list(self._entries):
                wanted = desired.get(name)
                if wanted is None or wanted[1].state != "ACTIVE" or wanted[0] != self._entries[name].definition:
                    del self._entries[name]
            for name, (definition, row) in desired.items():
                if row.state != "ACTIVE" or name in self._entries:
                    continue
                # Backfill resumes after the last fired tick; otherwise ticks start from now, so
                # the time a process was down (or a schedule paused) is never replayed in a storm.
                start = row.last_tick_at if definition.backfill and row.last_tick_at is not None else now
                self._entries[name] = _Entry(name, definition, min(start, now))

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning("schedule %s %s", key, message)


def unresolved_error(registry: Registry) -> None:
    """Refuse to launch when ``@DBOS.scheduled`` decorates something that is not a workflow."""
    missing = unresolved(registry)
    if missing:
        names = ", ".join(s.describe() for s in missing)
        raise ConfigError(f"@DBOS.scheduled is applied to {names}, which is not a workflow; add @DBOS.workflow()")
