"""``transact replay``: check recorded workflows against the current code, reading only.

Exit code 0 when every replayed workflow is compatible, 1 when one diverges (or on an error).
"""

from __future__ import annotations

from typing import Annotated

import typer

from transact.cli import _render as out
from transact.cli.app import ConfigPath, Db, Json, app, resolve_url


@app.command("replay")
def replay_command(
    app_module: Annotated[
        str,
        typer.Option("--app", help="Module that declares the workflows (imported; the current directory is searched)."),
    ],
    name: Annotated[str | None, typer.Option("--name", "-n", help="Only workflows of this name.")] = None,
    since: Annotated[
        str | None,
        typer.Option("--since", help="Only workflows created this long ago or later: 45s, 30m, 12h, 7d, 2w."),
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", "-l", help="At most this many workflows, newest first.")
    ] = None,
    db: Db = None,
    config: ConfigPath = None,
    json: Json = False,
) -> None:
    """Replay recorded workflows (finished and in flight) against the code in --app, with every step
    answered from the record and never run; report the first step where the code diverges."""
    from transact.testing._replay import replay  # imported on use: the package also holds pytest fixtures

    url = resolve_url(db, config)
    report = replay(url, app=app_module, name=name, since=since, limit=limit)
    if json:
        out.print_json(
            {
                "ok": report.ok,
                "workflows": [
                    {
                        "workflow_id": r.workflow_id,
                        "name": r.name,
                        "status": r.status,
                        "compatible": r.compatible,
                        "position": r.position,
                        "recorded": r.recorded,
                        "called": r.called,
                        "patchable": r.patchable,
                        "detail": r.detail,
                    }
                    for r in report.results
                ],
            }
        )
    else:
        typer.echo(report.render())  # one line per workflow, never wrapped (scripts grep it)
    if not report.ok:
        raise typer.Exit(1)
