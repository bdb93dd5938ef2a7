"""Replay checker: re-execute recorded workflows against the current code, reading only.

Every step, transaction and communication call is answered from the record and never run. The
replay runtime's store refuses every write, and its workflow context stops the body at the first
position that has nothing recorded (before a step would run): for a finished run that is a
divergence ("the code calls X where the run had ended"); for an in-flight one the code is
compatible up to its last recorded step. A different name at a recorded position is the engine's
DeterminismError. No DBOS is launched: no recovery, no dispatcher, no background services.
"""

from __future__ import annotations

import asyncio
import contextvars
import importlib
import os
import re
import sys
import threading
import types
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, cast

from transact._config import load_settings
from transact._facade._base import FacadeBase
from transact._lib import urls
from transact._lib.states import Status
from transact.engine import auth, serialization, status
from transact.engine.clock import now_ms
from transact.engine.comms import SLEEP
from transact.engine.context import WorkflowContext, current_workflow
from transact.engine.registry import REGISTRY
from transact.engine.runtime import Runtime
from transact.errors import PATCH_MARKER_PREFIX, ConfigError, DeterminismError
from transact.storage import Store
from transact.storage.rows import ListQuery, StepRow, WorkflowRow

ENDED = frozenset({Status.SUCCESS, Status.ERROR})  # runs whose record is complete
WORKFLOW_TIMEOUT_S = 30.0  # a body that blocks longer than this on something unrecorded is reported
_READS = frozenset(
    {
        "workflow_get",
        "steps_load",
        "steps_load_many",
        "steps_list",
        "workflows_list",
        "workflows_cancelled",
        "event_get",
        "events_get_all",
        "stream_read",
        "schema_version",
        "migration_scripts",
        "queue_get",
        "queue_list",
        "schedule_get",
        "schedule_list",
        "executor_list",
        "set_hint_handler",
        "close",
    }
)
_SINCE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PLAN_APIS = {
    "_sleep_plan": "DBOS.sleep",
    "_send_plan": "DBOS.send",
    "_recv_plan": "DBOS.recv",
    "_set_event_plan": "DBOS.set_event",
    "_get_event_plan": "DBOS.get_event",
    "get_all_events": "DBOS.get_all_events",
}
_lock = threading.Lock()  # one replay at a time: it swaps the process's current DBOS instance


@dataclass(frozen=True)
class WorkflowReplay:
    """One workflow's verdict. ``position`` is the first step position where the code diverges;
    ``recorded`` is what the run recorded there (None: the run had ended), ``called`` what the code
    calls there now (None: the code ends there); ``patchable`` says whether a ``DBOS.patch`` at that
    position covers the change (the run has an ordinary step there)."""

    workflow_id: str
    name: str
    status: str
    compatible: bool
    position: int | None = None
    recorded: str | None = None
    called: str | None = None
    patchable: bool = False
    detail: str = ""

    def describe(self) -> str:
        verdict = "compatible" if self.compatible else "DIVERGES"
        line = f"{self.workflow_id} ({self.name}, {self.status}): {verdict}"
        return f"{line}: {self.detail}" if self.detail else line


@dataclass
class ReplayReport:
    """The verdicts, in the order the workflows were read (newest first)."""

    results: list[WorkflowReplay] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(r.compatible for r in self.results)

    @property
    def divergent(self) -> list[WorkflowReplay]:
        return [r for r in self.results if not r.compatible]

    def render(self) -> str:
        lines = [r.describe() for r in self.results]
        bad = len(self.divergent)
        lines.append(f"{len(self.results)} workflow(s) replayed, {len(self.results) - bad} compatible, {bad} diverge")
        return "\n".join(lines)


# -- stopping the body at the edge of the record ----------------------------------------------------
class _Stop(BaseException):
    """Ends a replayed body. A BaseException, so the user's ``except Exception`` lets it through."""

    def __init__(self, position: int, called: str) -> None:
        super().__init__(position, called)
        self.position = position
        self.called = called


class _Unrecorded(_Stop):
    """The code reached a position with nothing recorded; it would run or record something new."""


class _Waiting(_Stop):
    """The run is waiting at this recorded position (a sleep not yet over, a child still running)."""


class _Write(_Stop):
    """The code tried to write to the system database."""


def _called_name(frame: types.FrameType | None) -> str:
    """What the engine function that is about to run something unrecorded was called for."""
    if frame is None:
        return "an unrecorded operation"
    local = frame.f_locals
    for key in ("name", "marker"):
        value = local.get(key)
        if isinstance(value, str):
            return value
    info_name = getattr(local.get("info"), "name", None)
    if isinstance(info_name, str):
        return info_name
    return _PLAN_APIS.get(frame.f_code.co_name, frame.f_code.co_name)


@dataclass(eq=False)
class _ReplayContext(WorkflowContext):
    """A run whose cancellation check, asked only before something unrecorded runs (or while a
    recorded sleep waits), stops the body instead."""

    def check_cancelled(self) -> None:
        frame = sys._getframe(1)
        position = self.function_id
        if frame.f_code.co_name == "_decide" and frame.f_globals.get("__name__") == "transact.engine.patching":
            position += 1  # a patch checks before it takes its position
        row = self.recorded.get(position)
        if row is None:
            raise _Unrecorded(position, _called_name(frame))
        if row.function_name == SLEEP and int(serialization.loads(row.output)) > now_ms():
            raise _Waiting(position, SLEEP)


class _ReadOnlyStore:
    """The system store with every write refused (raises ``_Write`` at the caller's position)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._store, name)
        if not callable(value) or name in _READS:
            return value

        def refused(*args: Any, **kwargs: Any) -> Any:
            ctx = current_workflow.get()
            raise _Write(ctx.function_id if ctx is not None else 0, f"a database write ({name})")

        return refused


class _ReplayRuntime(Runtime):
    """A runtime that is never launched: a read-only store, and results of child workflows read
    from their rows (a child still running means the parent is waiting there)."""

    def await_result(self, workflow_id: str, timeout: float | None = None, *, local: bool = True) -> Any:
        row = self.store.workflow_get(workflow_id)
        if row is None or not row.is_terminal:
            ctx = current_workflow.get()
            raise _Waiting(ctx.function_id if ctx is not None else 0, f"the result of workflow {workflow_id!r}")
        return status.outcome(row)

    async def await_result_async(self, workflow_id: str, timeout: float | None = None, *, local: bool = True) -> Any:
        return self.await_result(workflow_id, timeout, local=local)


class _Host(FacadeBase):
    """Stands in for the DBOS instance while a replay runs, so facade calls reach the replay runtime."""

    def __init__(self, rt: Runtime) -> None:
        self._runtime = rt
        self._config = {}


@contextmanager
def _replay_runtime(db_url: str) -> Iterator[Runtime]:
    if urls.kind_of(db_url) == "sqlite" and not os.path.isfile(urls.sqlite_path(db_url)):
        raise ConfigError(f"replay: the SQLite system database {urls.sqlite_path(db_url)!r} does not exist")
    rt = _ReplayRuntime(load_settings({"name": "transact-replay", "system_database_url": db_url}))
    real = rt.store
    try:
        if real.schema_version() == 0:
            raise ConfigError(f"replay: {urls.redact(db_url)} has no Transact tables (nothing was recorded there)")
        rt.store = cast(Store, _ReadOnlyStore(real))
        rt.launched = True  # facade calls pass their launch check; nothing is started
        with _lock:
            previous = FacadeBase._current
            FacadeBase._set_current(_Host(rt))
            try:
                yield rt
            finally:
                FacadeBase._set_current(previous)
    finally:
        rt.launched = False
        rt.workflow_pool.shutdown(wait=False, cancel_futures=True)
        rt.io_pool.shutdown(wait=False, cancel_futures=True)
        real.close()


# -- one workflow ----------------------------------------------------------------------------------
def _patchable(row: StepRow | None) -> bool:
    return row is not None and not row.function_name.startswith(PATCH_MARKER_PREFIX)


def _diverged(row: WorkflowRow, position: int, recorded: StepRow | None, called: str | None) -> WorkflowReplay:
    was = repr(recorded.function_name) if recorded is not None else "nothing (the run had ended)"
    now = repr(called) if called is not None else "nothing (the code ends there)"
    patchable = _patchable(recorded)
    hint = "a DBOS.patch here would cover it" if patchable else "a DBOS.patch would not cover it"
    return WorkflowReplay(
        row.workflow_id,
        row.name,
        str(row.status),
        False,
        position,
        recorded.function_name if recorded is not None else None,
        called,
        patchable,
        f"at step {position} the run recorded {was}, the code now calls {now}; {hint}",
    )


def _failed(row: WorkflowRow, why: str) -> WorkflowReplay:
    return WorkflowReplay(row.workflow_id, row.name, str(row.status), False, detail=why)


def _run_body(ctx: WorkflowContext, func: Any, args: Any, kwargs: Any, is_async: bool) -> BaseException | None:
    """The body's end: None when it returned, else what it raised."""
    token = current_workflow.set(ctx)
    try:
        if is_async:
            asyncio.run(func(*args, **kwargs))
        else:
            func(*args, **kwargs)
    except BaseException as exc:
        return exc
    finally:
        current_workflow.reset(token)
    return None


def _replay_one(rt: Runtime, row: WorkflowRow, recorded: dict[int, StepRow], timeout_s: float) -> WorkflowReplay:
    info = REGISTRY.for_row(row.name, row.class_name)
    if info is None:
        return _failed(row, f"the code declares no workflow named {row.name!r}")
    try:
        args, kwargs = serialization.loads_inputs(row.inputs)
        if row.class_name is not None and info.takes_target:
            args = (REGISTRY.target(row.class_name, row.config_name), *args)
    except Exception as exc:
        return _failed(row, f"cannot load its inputs: {exc}")
    ctx = _ReplayContext(
        workflow_id=row.workflow_id,
        name=row.name,
        runtime=rt,
        recorded=recorded,
        deadline_at=None,
        resumed=True,
        row=row,
    )
    auth.attach(row)
    outcome: list[BaseException | None] = []
    thread = threading.Thread(
        target=contextvars.Context().run,
        args=(lambda: outcome.append(_run_body(ctx, info.func, args, kwargs, info.is_async)),),
        name=f"transact-replay-{row.workflow_id}",
        daemon=True,
    )
    thread.start()
    thread.join(timeout_s)
    if not outcome:
        return _failed(row, f"the replay did not finish within {timeout_s:g} s (the code blocks on something)")
    return _verdict(row, ctx, recorded, outcome[0])


def _verdict(
    row: WorkflowRow, ctx: WorkflowContext, recorded: dict[int, StepRow], end: BaseException | None
) -> WorkflowReplay:
    ended = row.status in ENDED
    if isinstance(end, DeterminismError):
        return _diverged(row, end.function_id, recorded.get(end.function_id), end.called)
    if isinstance(end, _Waiting):
        return WorkflowReplay(row.workflow_id, row.name, str(row.status), True, detail=f"waits in {end.called}")
    if isinstance(end, _Stop):
        if ended:
            return _diverged(row, end.position, None, end.called)
        return WorkflowReplay(
            row.workflow_id,
            row.name,
            str(row.status),
            True,
            detail=f"in flight; matches its record, next it calls {end.called!r} at step {end.position}",
        )
    later = sorted(fid for fid in recorded if fid > ctx.function_id)
    if later:
        return _diverged(row, later[0], recorded[later[0]], None)
    return WorkflowReplay(row.workflow_id, row.name, str(row.status), True)


# -- the entry point -------------------------------------------------------------------------------
def since_ms(since: str | timedelta | datetime | None) -> int | None:
    """``since`` as epoch ms: a duration ago (``7d``, ``12h``, ``30m``, ``45s``, ``2w``, or a
    timedelta) or a point in time (a datetime; naive means UTC)."""
    if since is None:
        return None
    if isinstance(since, datetime):
        moment = since if since.tzinfo is not None else since.replace(tzinfo=timezone.utc)
        return int(moment.timestamp() * 1000)
    if isinstance(since, timedelta):
        return now_ms() - int(since.total_seconds() * 1000)
    match = _SINCE_RE.match(since) if isinstance(since, str) else None
    if match is None:
        raise ConfigError(
            f"replay since must be a duration like '7d', '12h', '30m', '45s' or '2w' (or a timedelta or datetime), "
            f"got {since!r}"
        )
    return now_ms() - int(float(match.group(1)) * _UNITS[match.group(2)] * 1000)


def import_app(app: str) -> None:
    """Import the module that declares the workflows (the current directory is searched too)."""
    if not isinstance(app, str) or not app:
        raise ConfigError(f"replay app must be a module name such as 'myapp.workflows', got {app!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        importlib.import_module(app)
    except ImportError as exc:
        raise ConfigError(f"replay: cannot import the app module {app!r}: {exc}") from exc


def replay(
    db_url: str,
    *,
    app: str | None = None,
    name: str | None = None,
    since: str | timedelta | datetime | None = None,
    limit: int | None = None,
    timeout_s: float = WORKFLOW_TIMEOUT_S,
) -> ReplayReport:
    """Replay the workflows recorded in ``db_url`` (finished and in-flight, newest first) against
    the workflows this process declares (importing module ``app`` first, when given). Filters:
    workflow ``name``, created ``since``, at most ``limit``. Reads only: nothing is written."""
    if not isinstance(db_url, str) or not db_url:
        raise ConfigError(
            f"replay db_url must be a system database URL (sqlite:///... or postgresql://...), got {db_url!r}"
        )
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ConfigError(f"replay limit must be a positive int, got {limit!r}")
    if name is not None and (not isinstance(name, str) or not name):
        raise ConfigError(f"replay name must be a workflow name, got {name!r}")
    created_from = since_ms(since)
    try:
        urls.kind_of(db_url)
    except ValueError as exc:
        raise ConfigError(f"replay db_url: {exc}") from None
    if app is not None:
        import_app(app)
    report = ReplayReport()
    with _replay_runtime(db_url) as rt:
        query = ListQuery(
            names=[name] if name is not None else None,
            created_from=created_from,
            limit=limit,
            newest_first=True,
            load_output=False,
        )
        rows = rt.store.workflows_list(query)
        steps = rt.store.steps_load_many([row.workflow_id for row in rows]) if rows else {}
        for row in rows:
            report.results.append(_replay_one(rt, row, steps.get(row.workflow_id, {}), timeout_s))
    return report
