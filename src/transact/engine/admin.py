"""Operating workflows: list, steps, cancel, resume, fork, delete and client enqueues.

Shared by ``DBOS`` (which passes its Runtime, so resumed and forked work starts here at once) and
``DBOSClient`` (store only: resumed and forked work is left unowned and a live process adopts it).
Argument checks happen before any write. Must not import the facade.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any, TypedDict

from transact._lib import checks
from transact._lib.compat import Unpack
from transact._lib.states import QUEUED, Status
from transact._options import attribute_json, attributes_text, check_attributes, check_enqueue_options
from transact.engine import serialization, step
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
from transact.models import StepInfo, WorkflowStatus
from transact.storage import Conflict, Store
from transact.storage.admin import ListQuery
from transact.storage.rows import WorkflowRow

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
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
UPDATE_ATTRIBUTES = "DBOS.updateWorkflowAttributes"  # the step name the update is recorded under
_ONCE = step.StepPolicy()  # one attempt: a refusal (unknown workflow) is recorded as it is


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
    return (moment - _EPOCH) // timedelta(milliseconds=1)  # exact: no float rounding


def _opt_str(value: Any, *, what: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise checks.fail(what, "a string", value)
    return value


class QueuedFilters(TypedDict, total=False):
    """Keyword filters of ``list_queued_workflows`` (DBOS and DBOSClient). Where a filter takes a
    list, any of its values matches; each given filter must match."""

    queue_name: str | Sequence[str] | None
    status: str | Sequence[str] | None
    name: str | Sequence[str] | None
    start_time: str | datetime | None  # ISO-8601; naive times are UTC; bounds created_at, inclusive
    end_time: str | datetime | None
    executor_id: str | Sequence[str] | None
    limit: int | None
    offset: int | None
    sort_desc: bool  # default False: oldest first
    load_input: bool  # default True
    attributes: Mapping[str, Any] | None  # each key must hold exactly that value


class ListFilters(QueuedFilters, total=False):
    """Keyword filters of ``list_workflows`` (DBOS and DBOSClient)."""

    workflow_ids: Sequence[str] | None
    workflow_id_prefix: str | Sequence[str] | None
    load_output: bool  # default True
    app_version: str | Sequence[str] | None
    parent_workflow_id: str | Sequence[str] | None
    forked_from: str | Sequence[str] | None
    user: str | Sequence[str] | None  # the authenticated user who started it
    has_parent: bool | None  # True: child workflows only; False: top-level ones only
    was_forked_from: bool | None  # True: forks only; False: no forks
    queues_only: bool  # True: only workflows started on a queue
    updated_after: str | datetime | None  # bounds updated_at, inclusive
    updated_before: str | datetime | None
    completed_after: str | datetime | None  # finished (a final status) in this range, inclusive
    completed_before: str | datetime | None


_LIST_KEYS = frozenset(ListFilters.__annotations__) | frozenset(QueuedFilters.__annotations__)
_QUEUED_KEYS = frozenset(QueuedFilters.__annotations__)


def _opt_flag(value: Any, *, what: str) -> bool | None:
    if value is not None and not isinstance(value, bool):
        raise checks.fail(what, "True, False or None", value)
    return value


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
        updated_from=epoch_ms(f.get("updated_after"), what="updated_after"),
        updated_to=epoch_ms(f.get("updated_before"), what="updated_before"),
        completed_from=epoch_ms(f.get("completed_after"), what="completed_after"),
        completed_to=epoch_ms(f.get("completed_before"), what="completed_before"),
        queued_only=queued_only or checks.flag(f.get("queues_only", False), "queues_only"),
        has_parent=_opt_flag(f.get("has_parent"), what="has_parent"),
        was_forked=_opt_flag(f.get("was_forked_from"), what="was_forked_from"),
        limit=checks.optional_count(f.get("limit"), "limit"),
        offset=checks.optional_count(f.get("offset"), "offset"),
        newest_first=checks.flag(f.get("sort_desc", False), "sort_desc"),
        load_input=checks.flag(f.get("load_input", True), "load_input"),
        load_output=checks.flag(f.get("load_output", True), "load_output") and not queued_only,
        queue_name=checks.strings(f.get("queue_name"), "queue_name"),
        id_prefix=checks.strings(f.get("workflow_id_prefix"), "workflow_id_prefix"),
        app_version=checks.strings(f.get("app_version"), "app_version"),
        executor_id=checks.strings(f.get("executor_id"), "executor_id"),
        parent_workflow_id=checks.strings(f.get("parent_workflow_id"), "parent_workflow_id"),
        forked_from=checks.strings(f.get("forked_from"), "forked_from"),
        user=checks.strings(f.get("user"), "user"),
        attributes=_attribute_pairs(f.get("attributes"), api),
    )


def _attribute_pairs(value: Any, api: str) -> list[tuple[str, str]] | None:
    attributes = check_attributes(value, f"{api} attributes", optional=True)
    if not attributes:
        return None
    return [(k, attribute_json(v)) for k, v in attributes.items()]


def _checked_update(workflow_id: Any, attributes: Any, merge: Any) -> str | None:
    checks.text(workflow_id, "update_workflow_attributes workflow_id")
    checks.flag(merge, "update_workflow_attributes merge")
    return attributes_text(check_attributes(attributes, "update_workflow_attributes", optional=not merge))


def update_attributes(store: Store, workflow_id: Any, attributes: Any, *, merge: Any = True) -> None:
    """Set a workflow's attributes: with ``merge`` add them to its own (a given key replaces its
    value), else replace them all (None clears them). Raises WorkflowNotFoundError for an unknown id."""
    text = _checked_update(workflow_id, attributes, merge)
    if not store.workflow_set_attributes(workflow_id, text, merge=bool(merge)):
        raise WorkflowNotFoundError(workflow_id)


def update_attributes_recorded(store: Store, workflow_id: Any, attributes: Any, *, merge: Any = True) -> None:
    """``update_attributes``; inside a workflow it is a step, so a replay returns (or raises) what
    the first run recorded instead of applying it again. Arguments are checked before anything."""
    _checked_update(workflow_id, attributes, merge)
    step.run_step(UPDATE_ATTRIBUTES, update_attributes, _ONCE, (store, workflow_id, attributes), {"merge": merge})


async def update_attributes_recorded_async(
    rt: Runtime, workflow_id: Any, attributes: Any, *, merge: Any = True
) -> None:
    _checked_update(workflow_id, attributes, merge)

    async def apply() -> None:
        await rt.aio(update_attributes, rt.store, workflow_id, attributes, merge=merge)

    await step.run_step_async(UPDATE_ATTRIBUTES, apply, _ONCE, (), {})


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


def list_steps(
    store: Store,
    workflow_id: str,
    *,
    load_output: bool = True,
    limit: int | None = None,
    offset: int | None = None,
) -> list[StepInfo]:
    """Recorded steps in execution order (``offset`` skips the first ones, ``limit`` caps how many);
    ``load_output=False`` leaves outputs and errors undecoded (None). Raises WorkflowNotFoundError
    for an unknown id."""
    checks.flag(load_output, "load_output")
    first = checks.optional_count(offset, "offset") or 0
    most = checks.optional_count(limit, "limit")
    steps = store.steps_list(workflow_id)
    if not steps:
        get_row(store, workflow_id)
    chosen = steps[first:] if most is None else steps[first : first + most]
    return [
        StepInfo(
            function_id=s.function_id,
            function_name=s.function_name,
            output=_decode(s.output) if load_output else None,
            error=_decode(s.error, error=True) if load_output else None,
            child_workflow_id=s.child_workflow_id,
            started_at_epoch_ms=s.started_at,
            completed_at_epoch_ms=s.completed_at,
        )
        for s in chosen
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
    queue_name: str | None = None,
    queue_partition_key: str | None = None,
    timeout_seconds: float | None = None,
    application_name: str | None = None,
) -> str:
    """Start a new workflow with the same inputs that reuses the outcomes of steps before
    ``start_step`` (1 re-runs everything) and runs the rest. Returns the new workflow id.
    ``queue_name``: the fork waits in that queue instead of starting at once. ``timeout_seconds``:
    its timeout (default: the original's). The fork belongs to ``application_name``, else to the
    forking application (``rt``), else (a client that names none) to the original's owner."""
    checks.count(start_step, "start_step (1 re-runs every step)", minimum=1)
    _opt_str(app_version, what="application_version")
    checks.text(queue_name, "queue_name", optional=True)
    if queue_partition_key is not None and queue_name is None:
        raise ConfigError("fork_workflow: queue_partition_key needs queue_name (the queue the fork waits in)")
    check_enqueue_options("fork_workflow", queue_partition_key=queue_partition_key)
    timeout_ms = None
    if timeout_seconds is not None:
        timeout_ms = int(checks.seconds(timeout_seconds, "timeout_seconds", positive=True) * 1000)
    source = get_row(store, workflow_id)
    if timeout_ms is None:
        timeout_ms = source.timeout_ms
    now = now_ms()
    new_id = new_workflow_id or random_workflow_id()
    queue = QueueSpec(queue_name=queue_name, partition_key=queue_partition_key) if queue_name else None
    row = new_row(
        workflow_id=new_id,
        name=source.name,
        class_name=source.class_name,
        config_name=source.config_name,
        inputs=source.inputs,
        now=now,
        queue=queue,
        app_version=app_version or (rt.app_version if rt is not None else None) or source.app_version,
        forked_from=workflow_id,
        timeout_ms=timeout_ms,
        deadline_at=now + timeout_ms if timeout_ms is not None else None,
        application_name=application_name or (rt.settings.name if rt is not None else None) or source.application_name,
    )
    # A fork replays the original's history, so it runs as the original's user, not the forker.
    row = replace(
        row,
        authenticated_user=source.authenticated_user,
        assumed_role=source.assumed_role,
        authenticated_roles=source.authenticated_roles,
        attributes=source.attributes,
    )
    here = queue is None and rt is not None and rt.launched and wf.can_run(rt, row)
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
    elif queue is None:
        store.admin_wake_adopters()
    return new_id


def delete(store: Store, workflow_id: str, *, delete_children: bool = False) -> list[str]:
    """Delete a workflow with its steps, messages, events and streams (and its descendants when
    ``delete_children``). A running workflow stops at its next step. Returns the deleted ids."""
    deleted = store.workflow_delete(workflow_id, with_children=bool(delete_children))
    if not deleted:
        raise WorkflowNotFoundError(workflow_id)
    return deleted


# -- bulk ---------------------------------------------------------------------------------------
def checked_ids(workflow_ids: Any, api: str) -> list[str]:
    """A list of workflow ids, each one known; checked (one read) before anything is changed."""
    if isinstance(workflow_ids, str):
        raise ConfigError(
            f"{api}: workflow_ids must be a list of workflow ids, got the string {workflow_ids!r}; "
            f"pass [{workflow_ids!r}]"
        )
    ids = checks.strings(workflow_ids, "workflow_ids")
    if ids is None:
        raise checks.fail("workflow_ids", "a list of workflow ids", workflow_ids)
    return list(dict.fromkeys(ids))


def _known(store: Store, ids: list[str]) -> None:
    found = {
        r.workflow_id for r in store.workflows_list(ListQuery(workflow_ids=ids, load_input=False, load_output=False))
    }
    for ident in ids:
        if ident not in found:
            raise WorkflowNotFoundError(ident)


def cancel_many(store: Store, workflow_ids: Any, rt: Runtime | None = None) -> None:
    """Cancel every listed workflow (with its unfinished descendants); unknown ids are refused
    before any is cancelled."""
    ids = checked_ids(workflow_ids, "cancel_workflows")
    _known(store, ids)
    for ident in ids:
        cancel(store, ident, rt)


def resume_many(store: Store, workflow_ids: Any, rt: Runtime | None = None) -> list[str]:
    """Resume every listed workflow (see ``resume``); unknown ids are refused before any is
    resumed. Returns the ids, in the order given."""
    ids = checked_ids(workflow_ids, "resume_workflows")
    _known(store, ids)
    for ident in ids:
        resume(store, ident, rt)
    return ids


def delete_many(store: Store, workflow_ids: Any, *, delete_children: bool = False) -> None:
    """Delete every listed workflow (and its descendants when ``delete_children``); unknown ids are
    refused before any is deleted. A descendant deleted with an earlier id is no error."""
    ids = checked_ids(workflow_ids, "delete_workflows")
    checks.flag(delete_children, "delete_children")
    _known(store, ids)
    gone: set[str] = set()
    for ident in ids:
        if ident not in gone:
            gone.update(store.workflow_delete(ident, with_children=delete_children))


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
