"""``transact stats``: workflow counts by status and name, queue depths and executors, the same
numbers ``/metrics`` reports (engine/metrics.py), as Rich tables or JSON."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from transact.cli import _render as out
from transact.cli.app import ConfigPath, Db, Json, app, connect
from transact.engine.metrics import DEFAULT_LEASE_SECONDS, Stats, read_stats


@app.command("stats")
def stats_command(
    lease: Annotated[
        float, typer.Option("--lease", help="Seconds of silence after which an executor counts as dead.")
    ] = DEFAULT_LEASE_SECONDS,
    db: Db = None,
    config: ConfigPath = None,
    json: Json = False,
) -> None:
    """Count workflows by status and name, queued work per queue, and executors alive or dead."""
    with connect(db, config) as client:
        stats = read_stats(client.store, lease_seconds=lease)
    if json:
        out.print_json(stats.to_json())
        return
    for table in tables(stats):
        out.console().print(table)


def tables(stats: Stats) -> list[Table]:
    total = sum(n for _, _, n in stats.workflows)
    workflows = Table(title=f"{total} workflow(s)", title_justify="left")
    workflows.add_column("status")
    workflows.add_column("name")
    workflows.add_column("count", justify="right")
    for status, name, n in stats.workflows:
        workflows.add_row(status, name, str(n))
    queues = Table(title=f"{len(stats.queues)} queue(s)", title_justify="left")
    for column in ("queue", "enqueued", "running", "oldest waiting (s)"):
        queues.add_column(column, justify="left" if column == "queue" else "right")
    for q in stats.queues:
        queues.add_row(q.queue_name, str(q.enqueued), str(q.running), f"{stats.oldest_age_s(q):.1f}")
    executors = Table(title="executors", title_justify="left")
    executors.add_column("alive", justify="right")
    executors.add_column("dead", justify="right")
    executors.add_row(str(stats.executors_alive), str(stats.executors_dead))
    return [workflows, queues, executors]
