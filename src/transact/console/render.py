"""Rows -> JSON for the console: summaries never unpickle; shown values are decoded defensively.

A stored value may belong to a class this process cannot import, fail to unpickle, or be huge. It
is then shown as a placeholder or cut at ``MAX_TEXT`` characters, so one bad row never breaks a
page or an API answer.
"""

from __future__ import annotations

import json
from typing import Any

from transact.engine import serialization
from transact.storage.rows import ExecutorRow, ScheduleRow, StepRow, WorkflowRow

MAX_TEXT = 4096  # characters of a value's text the console returns
MAX_DECODE = 1 << 20  # larger blobs are not unpickled at all


def value(data: bytes | None, *, error: bool = False, inputs: bool = False) -> dict[str, Any] | None:
    """A stored blob as ``{"text", "truncated", "undecodable", "bytes"}`` (None when absent).

    ``inputs``: the blob is a workflow's ``(args, kwargs)``; ``error``: an exception."""
    if data is None:
        return None
    size = len(data)
    if size > MAX_DECODE:
        return _shown(f"<{size} bytes: too large to show>", size, undecodable=True)
    try:
        decoded = serialization.loads(data)
    except Exception as exc:  # a class that no longer exists, a module that moved, bad bytes
        return _shown(f"<undecodable: {type(exc).__name__}: {exc}>", size, undecodable=True)
    if inputs and isinstance(decoded, tuple) and len(decoded) == 2:
        args, kwargs = decoded
        decoded = {"args": list(args), "kwargs": dict(kwargs)}
    if error or isinstance(decoded, BaseException):
        text = f"{type(decoded).__name__}: {decoded}" if isinstance(decoded, BaseException) else str(decoded)
        return _shown(text, size)
    return _shown(_text(decoded), size)


def _text(decoded: Any) -> str:
    try:
        return json.dumps(decoded, indent=2, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        pass
    try:
        return repr(decoded)
    except Exception as exc:
        return f"<{type(decoded).__name__}: repr failed: {type(exc).__name__}>"


def _shown(text: str, size: int, *, undecodable: bool = False) -> dict[str, Any]:
    truncated = len(text) > MAX_TEXT
    return {
        "text": text[:MAX_TEXT] + "…" if truncated else text,
        "truncated": truncated,
        "undecodable": undecodable,
        "bytes": size,
    }


def _attributes(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def workflow(row: WorkflowRow) -> dict[str, Any]:
    """A workflow's columns without its blobs (listing reads none of them)."""
    return {
        "workflow_id": row.workflow_id,
        "status": row.status,
        "name": row.name,
        "class_name": row.class_name,
        "config_name": row.config_name,
        "queue_name": row.queue_name,
        "queue_partition_key": row.queue_partition_key,
        "deduplication_id": row.deduplication_id,
        "priority": row.priority,
        "executor_id": row.executor_id,
        "app_version": row.app_version,
        "recovery_attempts": row.recovery_attempts,
        "parent_workflow_id": row.parent_workflow_id,
        "forked_from": row.forked_from,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "started_at": row.started_at,
        "available_at": row.available_at,
        "timeout_ms": row.timeout_ms,
        "deadline_at": row.deadline_at,
        "authenticated_user": row.authenticated_user,
        "assumed_role": row.assumed_role,
        "attributes": _attributes(row.attributes),
    }


def workflow_detail(row: WorkflowRow) -> dict[str, Any]:
    out = workflow(row)
    out["input"] = value(row.inputs, inputs=True)
    out["output"] = value(row.output)
    out["error"] = value(row.error, error=True)
    return out


def step(s: StepRow) -> dict[str, Any]:
    started, completed = s.started_at, s.completed_at
    return {
        "function_id": s.function_id,
        "function_name": s.function_name,
        "output": value(s.output),
        "error": value(s.error, error=True),
        "child_workflow_id": s.child_workflow_id,
        "started_at": started,
        "completed_at": completed,
        "duration_ms": completed - started if started is not None and completed is not None else None,
    }


def executor(row: ExecutorRow, *, now: int, lease_ms: int) -> dict[str, Any]:
    alive = row.state == "RUNNING" and row.last_seen_at >= now - lease_ms
    return {
        "executor_id": row.executor_id,
        "hostname": row.hostname,
        "pid": row.pid,
        "app_version": row.app_version,
        "state": row.state,
        "alive": alive,
        "started_at": row.started_at,
        "last_seen_at": row.last_seen_at,
        "lease_expires_at": row.last_seen_at + lease_ms,
        "workflow_names": [n for n in (row.workflow_names or "").split("\n") if n],
    }


def schedule(row: ScheduleRow) -> dict[str, Any]:
    return {
        "schedule_name": row.schedule_name,
        "workflow_name": row.workflow_name,
        "schedule": row.cron,
        "timezone": row.timezone,
        "status": row.state,
        "backfill": row.backfill,
        "dynamic": row.dynamic,
        "queue_name": row.queue_name,
        "last_tick_at": row.last_tick_at,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "context": value(row.context) if row.dynamic else None,
    }
