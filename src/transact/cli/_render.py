"""Output for the ``transact`` CLI: Rich tables for people, JSON for scripts.

Must not import the engine's runtime; only public models.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from transact._lib.states import Status
from transact.models import WorkflowStatus

_STATUS_STYLE: dict[str, str] = {
    Status.SUCCESS: "green",
    Status.ERROR: "red",
    Status.CANCELLED: "yellow",
    Status.MAX_RECOVERY_ATTEMPTS_EXCEEDED: "red",
    Status.PENDING: "cyan",
    Status.ENQUEUED: "blue",
    Status.DELAYED: "blue",
}


def console() -> Console:
    # Piped output keeps whole ids on one line instead of wrapping at 80 columns.
    width = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 200
    return Console(width=width)


def when(ms: int | None) -> str:
    if ms is None:
        return ""
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"


def short(value: Any, width: int = 60) -> str:
    text = (
        ""
        if value is None
        else (f"{type(value).__name__}: {value}" if isinstance(value, BaseException) else repr(value))
    )
    return text if len(text) <= width else text[: width - 1] + "…"


def _jsonable(value: Any) -> Any:
    if isinstance(value, BaseException):
        return f"{type(value).__name__}: {value}"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)
    return repr(value)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, default=_jsonable, indent=2) + "\n")


def status_dict(status: WorkflowStatus) -> dict[str, Any]:
    return dataclasses.asdict(status)


def _status_cell(status: str) -> str:
    style = _STATUS_STYLE.get(status)
    return f"[{style}]{status}[/]" if style else status


def workflows_table(rows: list[WorkflowStatus], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("Workflow ID", no_wrap=True)
    table.add_column("Name")
    table.add_column("Status", no_wrap=True)
    table.add_column("Queue")
    table.add_column("Created (UTC)", no_wrap=True)
    table.add_column("Updated (UTC)", no_wrap=True)
    table.add_column("Executor")
    table.add_column("Version")
    for w in rows:
        table.add_row(
            escape(w.workflow_id),
            escape(w.name),
            _status_cell(w.status),
            escape(w.queue_name or ""),
            when(w.created_at),
            when(w.updated_at),
            escape(w.executor_id or ""),
            escape(w.app_version or ""),
        )
    return table


def workflow_table(w: WorkflowStatus) -> Table:
    table = Table(show_header=False, title=f"Workflow {w.workflow_id}", title_justify="left")
    table.add_column("Field", style="bold")
    table.add_column("Value", overflow="fold")
    for key, value in status_dict(w).items():
        if key == "status":
            text = _status_cell(str(value))
        elif key.endswith("_at") and isinstance(value, int):
            text = f"{when(value)} ({value})"
        elif key in ("input", "output", "error"):
            text = short(getattr(w, key), 400)
        else:
            text = "" if value is None else str(value)
        table.add_row(key, text if key == "status" else escape(text))
    return table


def steps_table(workflow_id: str, steps: Sequence[Mapping[str, Any]]) -> Table:
    table = Table(title=f"Steps of {workflow_id}", title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("Name")
    table.add_column("Output / error", overflow="fold")
    table.add_column("Child workflow", no_wrap=True)
    table.add_column("Started (UTC)", no_wrap=True)
    table.add_column("ms", justify="right")
    for s in steps:
        started, completed = s["started_at_epoch_ms"], s["completed_at_epoch_ms"]
        outcome = f"[red]{escape(short(s['error']))}[/]" if s["error"] is not None else escape(short(s["output"]))
        table.add_row(
            str(s["function_id"]),
            escape(s["function_name"]),
            outcome,
            escape(s["child_workflow_id"] or ""),
            when(started),
            str(completed - started) if started is not None and completed is not None else "",
        )
    return table
