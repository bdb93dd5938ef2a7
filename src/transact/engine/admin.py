"""Operating workflows: list, steps, cancel, resume, fork, delete and client enqueues.

Shared by ``DBOS`` (which passes its Runtime, so resumed and forked work starts here at once) and
``DBOSClient`` (store only: resumed and forked work is left unowned and a live process adopts it).
Argument checks happen before any write. Must not import the facade.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, TypedDict

from transact._lib import checks
from transact._lib.states import QUEUED, Status
from transact._options import check_enqueue_options
from transact.engine import serialization
from transact.engine import workflow as wf
from transact.engine.clock import now_ms
from transact.engine.ids import new_workflow_id as random_workflow_id
from transact.engine.runtime import Runtime
from transact.engine.starts import QueueSpec, new_row
from transact.engine.status import to_status
from transact.errors import (
    ConfigError,
    TransactError,
    WorkflowConflictError,
    WorkflowNotFoundError,
)
from transact.models import WorkflowStatus
from transact.storage import Conflict, Store
from transact.storage.admin import ListQuery
from transact.storage.rows import WorkflowRow

if TYPE_CHECKING:
    from typing_extensions import Unpack

STATUSES = tuple(s.value for s in Status)
QUEUED_STATUSES = QUEUED
# Resumable: stopped by an operator, dead-lettered after too many crashes, stuck (PENDING), or
# still waiting in a queue. SUCCESS and ERROR are final (fork to run again).
RESUMABLE = (
    Status.CANCELLED,
    Status.MAX_RECOVERY_ATTEMPTS_EXCEEDED,
    Status.PENDING,
    Status.ENQUEUED,
    Status.DELAYED,
)
LOCAL_STOP_TIMEOUT_S = 5.0
ENQUEUE_KEYS = (
    "workflow_name",
    "queue_name",
    "workflow_id",
    "deduplication_id",
    "priority",
    "delay_seconds",
    "app_version",
    "queue_partition_key",
    "workflow_timeout",
)


# -- argument checks ----------------------------------------------------------------------------
def epoch_ms(value: Any, *, what: str) -> int | None:
    """An ISO-8601 string (or datetime) as epoch milliseconds; naive times are UTC."""
    if value is None:
        return None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        text = value.strip()
        if text[-1:] in ("Z", "z"):
            text = text[:-1] + "+00:00"  # Python 3.10's fromisoformat does not read "Z"
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise ConfigError(
                f"{what} must be an ISO-8601 time such as '2025-01-31T12:00:00Z', got {value!r}"
            ) from None
    else:
        raise ConfigError(f"{what} must be an ISO-8601 string or a datetime, got {value!r}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp() * 1000)


def _opt_str(value: Any, *, what: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise checks.fail(what, "a string", value)
    return value


class QueuedFilters(TypedDict, total=False):
    """Keyword filters of ``list_queued_workflows`` (DBOS and DBOSClient)."""

    queue_name: str | None
    status: str | Sequence[str] | None
    name: str | Sequence[str] | None
    start_time: str | datetime | None  # ISO-8601; naive times are UTC; bounds created_at, inclusive
    end_time: str | datetime | None
    limit: int | None
    offset: int | None
    sort_desc: bool  # default False: oldest first
    load_input: bool  # default True


class ListFilters(QueuedFilters, total=False):
    """Keyword filters of ``list_workflows`` (DBOS and DBOSClient); each given one must match."""

    workflow_ids: Sequence[str] | None
    workflow_id_prefix: str | None
    load_output: bool  # default True
    app_version: str | None
    executor_id: str | None
    parent_workflow_id: str | None
    forked_from: str | None


_LIST_KEYS = frozenset(ListFilters.__annotations__) | frozenset(QueuedFilters.__annotations__)
_QUEUED_KEYS = frozenset(QueuedFilters.__annotations__)


def list_query(*, queued_only: bool = False, **filters: Unpack[ListFilters]) -> ListQuery:
    """Check ``list_workflows`` (or, ``queued_only``, ``list_queued_workflows``) arguments before
    anything is read."""
    api = "list_queued_workflows" if queued_only else "list_workflows"
    unknown = sorted(set(filters) - (_QUEUED_KEYS if queued_only else _LIST_KEYS))
    if unknown:
        raise TypeError(f"{api}() got an unexpected keyword argument {unknown[0]!r}")
    f: dict[str, Any] = dict(filters)
    statuses = checks.strings(f.get("status"), "status")
    for s in statuses or ():
        if s not in STATUSES:
            raise ConfigError(f"status {s!r} is not a workflow status; use one of {', '.join(STATUSES)}")
    if queued_only and statuses is None:
        statuses = list(QUEUED_STATUSES)
    return ListQuery(
        workflow_ids=checks.strings(f.get("workflow_ids"), "workflow_ids"),
        statuses=statuses,
        names=checks.strings(f.get("name"), "name"),
        created_from=epoch_ms(f.get("start_time"), what="start_time"),
        created_to=epoch_ms(f.get("end_time"), what="end_time"),
        queue_name=_opt_str(f.get("queue_name"), what="queue_name"),
        queued_only=queued_only,
        id_prefix=_opt_str(f.get("workflow_id_prefix"), what="workflow_id_prefix"),
        app_version=_opt_str(f.get("app_version"), what="app_version"),
        executor_id=_opt_str(f.get("executor_id"), what="executor_id"),
        parent_workflow_id=_opt_str(f.get("parent_workflow_id"), what="parent_workflow_id"),
        forked_from=_opt_str(f.get("forked_from"), what="forked_from"),
        limit=checks.optional_count(f.get("limit"), "limit"),
        offset=checks.optional_count(f.get("offset"), "offset"),
        newest_first=bool(f.get("sort_desc", False)),
        load_input=bool(f.get("load_input", True)),
        load_output=bool(f.get("load_output", True)) and not queued_only,
    )


# -- reads --------------------------------------------------------------------------------------
def list_workflows(store: Store, query: ListQuery) -> list[WorkflowStatus]:
    rows = store.workflows_list(query)
    return [to_status(r, load_input=query.load_input, load_output=query.load_output) for r in rows]


def get_row(store: Store, workflow_id: str) -> WorkflowRow:
    row = store.workflow_get(workflow_id)
    if row is None:
        raise WorkflowNotFoundError(workflow_id)
    return row


def _decode(data: bytes | None, error: bool = False) -> Any:
    if data is None:
        return None
    try:
        return serialization.loads_error(data) if error else serialization.loads(data)
    except Exception as exc:  # a class that no longer exists must not break listing
        return f"<undecodable: {type(exc).__name__}: {exc}>"


def list_steps(store: Store, workflow_id: str) -> list[dict[str, Any]]:
    """Recorded steps in execution order; raises WorkflowNotFoundError for an unknown id."""
    steps = store.steps_list(workflow_id)
    if not steps:
        get_row(store, workflow_id)
    return [
        {
            "function_id": s.function_id,
            "function_name": s.function_name,
            "output": _decode(s.output),
            "error": _decode(s.error, error=True),
            "child_workflow_id": s.child_workflow_id,
            "started_at_epoch_ms": s.started_at,
            "completed_at_epoch_ms": s.completed_at,
        }
        for s in steps
    ]


# -- steering -----------------------------------------------------------------------------------
def cancel(store: Store, workflow_id: str, rt: Runtime | None = None, *, cancel_children: bool = True) -> None:
    """Cancel a workflow and (by default) its unfinished descendants. Running ones stop at their
    next step (the checkpoint write is fenced on PENDING); queued ones never start. Finished: no change."""
    checks.flag(cancel_children, "cancel_children")
    if rt is not None:
        changed = rt.cancel_tree(workflow_id, with_children=cancel_children)
    else:
        changed = store.workflow_cancel(workflow_id, now_ms(), with_children=cancel_children)
    if not changed:
        get_row(store, workflow_id)


def resume(store: Store, workflow_id: str, rt: Runtime | None = None, *, queue_name: str | None = None) -> bool:
    """Restart a workflow from its checkpoints: a CANCELLED or MAX_RECOVERY_ATTEMPTS_EXCEEDED one
    (with its cancelled descendants; queued ones go back to their queue), a PENDING one whose run
    is stuck or gone (taken over at once), or one still waiting in its queue (it runs now, out of
    the queue). With ``queue_name`` it is enqueued on that queue instead. Returns False (and changes
    nothing) for a finished workflow, or one already running in this process."""
    checks.text(queue_name, "queue_name", optional=True)
    if rt is not None:
        if workflow_id in rt.runs and get_row(store, workflow_id).status == Status.PENDING:
            return False  # running here: nothing to unstick
        _wait_local_stop(rt, workflow_id)
    rows = store.workflow_resume(
        workflow_id=workflow_id, from_statuses=RESUMABLE, executor_id=None, now=now_ms(), queue_name=queue_name
    )
    if not rows:
        get_row(store, workflow_id)
        return False
    _start_unowned(store, [r for r in rows if r.status == Status.PENDING], rt)
    return True


def fork(
    store: Store,
    workflow_id: str,
    start_step: int,
    *,
    rt: Runtime | None = None,
    app_version: str | None = None,
    new_workflow_id: str | None = None,
) -> str:
    """Start a new workflow with the same inputs that reuses the outcomes of steps before
    ``start_step`` (1 re-runs everything) and runs the rest. Returns the new workflow id."""
    checks.count(start_step, "start_step (1 re-runs every step)", minimum=1)
    _opt_str(app_version, what="application_version")
    source = get_row(store, workflow_id)
    now = now_ms()
    new_id = new_workflow_id or random_workflow_id()
    row = new_row(
        workflow_id=new_id,
        name=source.name,
        class_name=source.class_name,
        config_name=source.config_name,
        inputs=source.inputs,
        now=now,
        app_version=app_version or (rt.app_version if rt is not None else None) or source.app_version,
        forked_from=workflow_id,
        timeout_ms=source.timeout_ms,
        deadline_at=now + source.timeout_ms if source.timeout_ms is not None else None,
    )
    # A fork replays the original's history, so it runs as the original's user, not the forker.
    row = replace(
        row,
        authenticated_user=source.authenticated_user,
        assumed_role=source.assumed_role,
        authenticated_roles=source.authenticated_roles,
    )
    here = rt is not None and rt.launched and wf.can_run(rt, row)
    if here and rt is not None:
        row = replace(row, executor_id=rt.executor_id)  # owned from the start: no adoption needed
    try:
        store.workflow_fork(row, source_id=workflow_id, start_step=start_step)
    except Conflict:
        raise WorkflowConflictError(
            f"cannot fork workflow {workflow_id!r} as {new_id!r}: that id is taken; choose another id"
        ) from None
    if here and rt is not None:
        wf.resume(rt, row, max_attempts_checked=True)
    else:
        store.admin_wake_adopters()
    return new_id


def delete(store: Store, workflow_id: str, *, delete_children: bool = False) -> list[str]:
    """Delete a workflow with its steps, messages, events and streams (and its descendants when
    ``delete_children``). A running workflow stops at its next step. Returns the deleted ids."""
    deleted = store.workflow_delete(workflow_id, with_children=bool(delete_children))
    if not deleted:
        raise WorkflowNotFoundError(workflow_id)
    return deleted


def _wait_local_stop(rt: Runtime, workflow_id: str) -> None:
    # A cancelled workflow may still be finishing its current step in this process; restarting it
    # before that run ends would leave two runs (or none) for one id.
    deadline = time.monotonic() + LOCAL_STOP_TIMEOUT_S
    while workflow_id in rt.runs:
        if time.monotonic() > deadline:
            raise TransactError(
                f"workflow {workflow_id!r} is still finishing its current step in this process; "
                "resume it again once that step has ended"
            )
        time.sleep(0.01)


def _start_unowned(store: Store, rows: list[WorkflowRow], rt: Runtime | None) -> None:
    """Run unowned PENDING rows here when this process can (one adopt and one step read for
    all of them), else wake the processes that can."""
    here = [row for row in rows if rt is not None and rt.launched and wf.can_run(rt, row)]
    if rt is not None and here:
        ids = [row.workflow_id for row in here]
        taken = store.workflows_adopt(workflow_ids=ids, from_executor=None, to_executor=rt.executor_id, now=now_ms())
        wf.resume_many(rt, wf.in_order(taken, ids), max_attempts_checked=True)
    if len(here) < len(rows):
        store.admin_wake_adopters()


# -- client enqueue -----------------------------------------------------------------------------
def enqueue_row(options: Mapping[str, Any], args: Sequence[Any], kwargs: Mapping[str, Any]) -> WorkflowRow:
    """The ENQUEUED (or DELAYED) row a queue worker will claim, for a workflow known by name only."""
    if not isinstance(options, Mapping):
        raise ConfigError(f"enqueue options must be a dict with 'workflow_name' and 'queue_name', got {options!r}")
    unknown = sorted(set(options) - set(ENQUEUE_KEYS))
    if unknown:
        raise ConfigError(f"unknown enqueue option {unknown[0]!r}; known options are: {', '.join(ENQUEUE_KEYS)}")
    name = options.get("workflow_name")
    queue = options.get("queue_name")
    for key, value in (("workflow_name", name), ("queue_name", queue)):
        if not isinstance(value, str) or not value:
            raise ConfigError(f"enqueue option {key!r} must be a non-empty string, got {value!r}")
    for key in ("workflow_id", "app_version"):
        _opt_str(options.get(key), what=f"enqueue option {key!r}")
    priority = options.get("priority") or 0
    delay = options.get("delay_seconds")
    check_enqueue_options(
        "enqueue option",
        deduplication_id=options.get("deduplication_id"),
        priority=priority,
        queue_partition_key=options.get("queue_partition_key"),
        delay_seconds=delay,
    )
    timeout = options.get("workflow_timeout")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout < 0):
        raise ConfigError(f"enqueue option 'workflow_timeout' must be a number of seconds >= 0, got {timeout!r}")
    spec = QueueSpec(
        queue_name=str(queue),
        deduplication_id=options.get("deduplication_id"),
        priority=priority,
        partition_key=options.get("queue_partition_key"),
        delay_seconds=delay,
        app_version=options.get("app_version"),
    )
    return new_row(
        workflow_id=options.get("workflow_id") or random_workflow_id(),
        name=str(name),
        inputs=serialization.dumps_inputs(None, args, kwargs, workflow=str(name)),
        now=now_ms(),
        queue=spec,
        timeout_ms=int(timeout * 1000) if timeout else None,
    )
