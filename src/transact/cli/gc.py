"""``transact workflow gc``: delete finished workflows older than a duration or beyond a count."""

from __future__ import annotations

import re
from typing import Annotated

import typer

from transact.cli import _render as out
from transact.cli.app import ConfigPath, Db, Json, connect, fail, workflow_app
from transact.engine.clock import now_ms

_UNITS_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")


def duration_ms(text: str) -> int:
    """``30d``, ``12h``, ``90m``, ``45s``, ``2w`` as milliseconds."""
    match = _DURATION.match(text)
    if match is None:
        fail(f"--older-than must be a duration like 30d, 12h, 90m, 45s or 2w, got {text!r}")
    return int(float(match.group(1)) * _UNITS_MS[match.group(2)])


@workflow_app.command("gc")
def workflow_gc(
    older_than: Annotated[
        str | None,
        typer.Option("--older-than", help="Delete workflows that finished longer ago than this: 30d, 12h, 90m."),
    ] = None,
    keep: Annotated[
        int | None,
        typer.Option("--keep", min=0, help="Keep only this many finished workflows, the most recently finished."),
    ] = None,
    db: Db = None,
    config: ConfigPath = None,
    json: Json = False,
) -> None:
    """Delete finished workflows (SUCCESS, ERROR, CANCELLED, MAX_RECOVERY_ATTEMPTS_EXCEEDED) with
    their steps, messages, events and streams. Running, enqueued and delayed work is never deleted,
    nor a finished parent whose child still runs."""
    if older_than is None and keep is None:
        fail("pass --older-than DURATION, --keep N, or both")
    cutoff = max(now_ms() - duration_ms(older_than), 0) if older_than is not None else None
    with connect(db, config) as client:
        deleted = client.garbage_collect(cutoff, keep)
    if json:
        out.print_json({"deleted": deleted, "cutoff_epoch_ms": cutoff, "keep": keep})
    else:
        out.console().print(f"deleted {deleted} finished workflow{'' if deleted == 1 else 's'}", markup=False)
