"""The console's JSON API: one function per route over a system store and the admin functions the
``transact`` command and DBOSClient use.

Handlers take a ``Backend`` and the request's parts and return a JSON-ready object; refusals raise
``ApiError`` (status + message). Expected failures of the layers below map to statuses in
``error_status``: unknown workflow 404, bad argument 400, id taken 409, database down 503.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import Any
from urllib.parse import parse_qs

from transact._lib.states import Status
from transact.console import render
from transact.engine import admin
from transact.engine.clock import now_ms
from transact.engine.recovery import stranded_workflows
from transact.engine.runtime import Runtime
from transact.errors import (
    ConfigError,
    DatabaseUnavailableError,
    WorkflowConflictError,
    WorkflowNotFoundError,
)
from transact.storage import Store, Unavailable
from transact.storage.rows import ListQuery

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
MAX_STEPS = 2000  # steps returned with one workflow (the rest are counted, not shown)
MAX_TREE = 200  # descendants shown in one workflow's tree
COUNT_CAP = 10000  # delayed work is counted up to this ("10000+" beyond)
STREAM_PAGE = 100

# Query parameters of GET /api/workflows, named like list_workflows' keyword filters.
_LIST_PARAMS = (
    "status",
    "name",
    "queue_name",
    "workflow_id_prefix",
    "workflow_ids",
    "app_version",
    "executor_id",
    "parent_workflow_id",
    "forked_from",
    "user",
)
_TIME_PARAMS = ("start_time", "end_time", "updated_after", "updated_before", "completed_after", "completed_before")
_FLAG_PARAMS = ("sort_desc", "has_parent", "was_forked_from", "queues_only")
_COUNT_PARAMS = ("limit", "offset")


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def error_status(exc: BaseException) -> int | None:
    """The HTTP status of an expected failure (None: unexpected, a 500)."""
    if isinstance(exc, ApiError):
        return exc.status
    if isinstance(exc, WorkflowNotFoundError):
        return 404
    if isinstance(exc, WorkflowConflictError):
        return 409
    if isinstance(exc, ConfigError | ValueError):
        return 400
    if isinstance(exc, Unavailable | DatabaseUnavailableError):
        return 503
    return None


@dataclass
class Backend:
    """What the handlers work on: the store, and the runtime when the console runs inside a
    launched app (then resumed and forked work starts in this process at once)."""

    store: Store
    rt: Runtime | None = None
    read_only: bool = False
    token_required: bool = False
    lease_seconds: float = 30.0


# -- parameters ---------------------------------------------------------------------------------
def query_params(query: str) -> dict[str, list[str]]:
    return parse_qs(query, keep_blank_values=False, strict_parsing=False)


def _flag(name: str, text: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "true", "yes"):
        return True
    if lowered in ("0", "false", "no"):
        return False
    raise ApiError(400, f"query parameter {name!r} must be true or false, got {text!r}")


def _int(name: str, text: str, *, minimum: int = 0, maximum: int | None = None) -> int:
    try:
        number = int(text)
    except ValueError:
        raise ApiError(400, f"query parameter {name!r} must be a whole number, got {text!r}") from None
    if number < minimum or (maximum is not None and number > maximum):
        top = f" and at most {maximum}" if maximum is not None else ""
        raise ApiError(400, f"query parameter {name!r} must be at least {minimum}{top}, got {number}")
    return number


def _one(params: Mapping[str, list[str]], name: str) -> str:
    values = params[name]
    if len(values) > 1:
        raise ApiError(400, f"query parameter {name!r} is given {len(values)} times; give it once")
    return values[0]


def list_filters(params: Mapping[str, list[str]]) -> tuple[admin.ListFilters, int, int]:
    """``list_workflows`` keyword filters from query parameters (newest first unless
    ``sort_desc=false``), and the page's limit and offset."""
    known = {*_LIST_PARAMS, *_TIME_PARAMS, *_FLAG_PARAMS, *_COUNT_PARAMS}
    for name in params:
        if name not in known:
            raise ApiError(400, f"unknown query parameter {name!r}; known: {', '.join(sorted(known))}")
    f: dict[str, Any] = {"sort_desc": True, "load_input": False, "load_output": False}
    for name in _LIST_PARAMS:
        if name in params:
            values = [v for text in params[name] for v in text.split(",")] if name == "status" else params[name]
            f[name] = [v.strip() for v in values if v.strip()]
    for name in _TIME_PARAMS:
        if name in params:
            f[name] = _one(params, name)
    for name in _FLAG_PARAMS:
        if name in params:
            f[name] = _flag(name, _one(params, name))
    limit = _int("limit", _one(params, "limit"), minimum=1, maximum=MAX_LIMIT) if "limit" in params else DEFAULT_LIMIT
    offset = _int("offset", _one(params, "offset")) if "offset" in params else 0
    return f, limit, offset  # type: ignore[return-value]


def _body_int(body: Mapping[str, Any], name: str, default: int | None = None) -> int:
    raw = body.get(name, default)
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise ApiError(400, f"body field {name!r} must be a whole number, got {raw!r}")
    return raw


def _body_str(body: Mapping[str, Any], name: str) -> str | None:
    raw = body.get(name)
    if raw is not None and not isinstance(raw, str):
        raise ApiError(400, f"body field {name!r} must be a string, got {raw!r}")
    return raw or None


# -- reads --------------------------------------------------------------------------------------
def config(b: Backend) -> dict[str, Any]:
    return {
        "read_only": b.read_only,
        "token_required": b.token_required,
        "version": _version(),
        "database": b.store.dialect,
        "lease_seconds": b.lease_seconds,
    }


def _version() -> str | None:
    # From the installed metadata: importing the package root here would make an import cycle
    # (the facade starts the in-process console).
    try:
        return metadata.version("transact")
    except metadata.PackageNotFoundError:
        return None


def healthz(b: Backend) -> dict[str, Any]:
    b.store.schema_version()  # Unavailable -> 503
    return {"status": "ok"}


def list_workflows(b: Backend, params: Mapping[str, list[str]]) -> dict[str, Any]:
    filters, limit, offset = list_filters(params)
    filters["limit"] = limit + 1  # one more tells whether a next page exists, without a count
    filters["offset"] = offset
    rows = b.store.workflows_list(admin.list_query(**filters))
    return {
        "workflows": [render.workflow(r) for r in rows[:limit]],
        "limit": limit,
        "offset": offset,
        "has_more": len(rows) > limit,
    }


def get_workflow(b: Backend, workflow_id: str) -> dict[str, Any]:
    row = admin.get_row(b.store, workflow_id)
    steps = b.store.steps_list(workflow_id)
    events = b.store.events_get_all(workflow_id)
    return {
        "workflow": render.workflow_detail(row),
        "steps": [render.step(s) for s in steps[:MAX_STEPS]],
        "steps_total": len(steps),
        "children": _children_tree(b.store, workflow_id),
        "events": {key: render.value(data) for key, data in sorted(events.items())},
        "actions": _actions(b, row.status),
    }


def _actions(b: Backend, status: str) -> list[str]:
    if b.read_only:
        return []
    actions = ["fork", "delete"]
    if status not in (Status.SUCCESS, Status.ERROR, Status.CANCELLED, Status.MAX_RECOVERY_ATTEMPTS_EXCEEDED):
        actions.insert(0, "cancel")
    if status in admin.RESUMABLE:
        actions.insert(0, "resume")
    return actions


def _children_tree(store: Store, workflow_id: str) -> list[dict[str, Any]]:
    """Descendants, breadth first, each with its own ``children`` (at most MAX_TREE in all)."""
    root: list[dict[str, Any]] = []
    frontier: list[tuple[str, list[dict[str, Any]]]] = [(workflow_id, root)]
    seen = 0
    while frontier and seen < MAX_TREE:
        ids = [ident for ident, _ in frontier]
        slots = dict(frontier)
        rows = store.workflows_list(
            ListQuery(
                parent_workflow_id=ids, load_input=False, load_output=False, limit=MAX_TREE - seen, newest_first=False
            )
        )
        frontier = []
        for row in rows:
            node = render.workflow(row)
            node["children"] = []
            slots[row.parent_workflow_id or ""].append(node)
            frontier.append((row.workflow_id, node["children"]))
        seen += len(rows)
    return root


def read_stream(b: Backend, workflow_id: str, key: str, params: Mapping[str, list[str]]) -> dict[str, Any]:
    offset = _int("offset", _one(params, "offset")) if "offset" in params else 0
    status, items = b.store.stream_read(workflow_id, key, offset, STREAM_PAGE)
    if status is None:
        raise WorkflowNotFoundError(workflow_id)
    values = [{"offset": seq, "value": render.value(data)} for seq, data, closed in items if not closed]
    closed = any(closed for _, _, closed in items)
    return {"workflow_id": workflow_id, "key": key, "values": values, "closed": closed, "writer_status": status}


def _count(store: Store, queue: str, statuses: Sequence[str]) -> int:
    rows = store.workflows_list(
        ListQuery(
            queue_name=queue,
            statuses=statuses,
            queued_only=True,
            load_input=False,
            load_output=False,
            limit=COUNT_CAP + 1,
        )
    )
    return len(rows)


def list_queues(b: Backend) -> dict[str, Any]:
    """Registered queues with their limits, and every queue holding work (registered or not)."""
    registered = {q.queue_name: q for q in b.store.queue_list()}
    depths = {d.queue_name: d for d in b.store.stats_queue_depths()}
    queues = []
    for name in sorted(set(registered) | set(depths)):
        q, d = registered.get(name), depths.get(name)
        queues.append(
            {
                "queue_name": name,
                "registered": q is not None,
                "enqueued": d.enqueued if d else 0,
                "running": d.running if d else 0,
                "oldest_enqueued_at": d.oldest_enqueued_at if d else None,
                "delayed": _count(b.store, name, (Status.DELAYED,)),
                "capped_at": COUNT_CAP,
                "concurrency": q.concurrency if q else None,
                "worker_concurrency": q.worker_concurrency if q else None,
                "rate_limit": q.rate_limit if q else None,
                "rate_period_ms": q.rate_period_ms if q else None,
                "priority_enabled": q.priority_enabled if q else False,
                "partitioned": q.partitioned if q else False,
                "partitions": b.store.queue_partitions(queue_name=name) if q and q.partitioned else [],
                "app_version": q.app_version if q else None,
            }
        )
    return {"queues": queues}


def list_schedules(b: Backend) -> dict[str, Any]:
    return {"schedules": [render.schedule(r) for r in b.store.schedule_list()]}


def list_executors(b: Backend) -> dict[str, Any]:
    now, lease_ms = now_ms(), int(b.lease_seconds * 1000)
    return {"executors": [render.executor(r, now=now, lease_ms=lease_ms) for r in b.store.executor_list()]}


def list_stranded(b: Backend, params: Mapping[str, list[str]]) -> dict[str, Any]:
    limit = _int("limit", _one(params, "limit"), minimum=1, maximum=MAX_LIMIT) if "limit" in params else MAX_LIMIT
    rows = stranded_workflows(b.store, lease_seconds=b.lease_seconds, hostname=socket.gethostname(), limit=limit)
    return {"workflows": [render.workflow(r) for r in rows]}


# -- actions ------------------------------------------------------------------------------------
def _status_of(b: Backend, workflow_id: str) -> str:
    return admin.get_row(b.store, workflow_id).status


def cancel(b: Backend, workflow_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
    admin.cancel(b.store, workflow_id, b.rt)
    return {"workflow_id": workflow_id, "status": _status_of(b, workflow_id)}


def resume(b: Backend, workflow_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
    resumed = admin.resume(b.store, workflow_id, b.rt)
    return {"workflow_id": workflow_id, "resumed": resumed, "status": _status_of(b, workflow_id)}


def fork(b: Backend, workflow_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
    start_step = _body_int(body, "start_step", 1)
    new_id = admin.fork(
        b.store,
        workflow_id,
        start_step,
        rt=b.rt,
        app_version=_body_str(body, "application_version"),
        new_workflow_id=_body_str(body, "new_workflow_id"),
    )
    return {"workflow_id": new_id, "forked_from": workflow_id, "start_step": start_step}


def delete(b: Backend, workflow_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
    children = body.get("delete_children", False)
    if not isinstance(children, bool):
        raise ApiError(400, f"body field 'delete_children' must be true or false, got {children!r}")
    deleted = admin.delete(b.store, workflow_id, delete_children=children)
    return {"workflow_id": workflow_id, "deleted": deleted}


ACTIONS = {"cancel": cancel, "resume": resume, "fork": fork, "delete": delete}
