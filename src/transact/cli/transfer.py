"""``transact workflow export`` / ``transact workflow import`` and ``transact copy``.

Export writes JSON to stdout (or ``--output``); import reads a file (``-``: stdin) into the
database given, creating its tables if needed. Copy moves a whole system database, drawing one
progress bar per table on stderr, and prints what it copied (``--json``: as JSON on stdout).
"""

from __future__ import annotations

import json as json_lib
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from transact._client import DBOSClient
from transact._lib.urls import redact
from transact.cli import _render as out
from transact.cli.app import (
    CONNECT_S,
    RETRY_S,
    ConfigPath,
    Db,
    Json,
    WorkflowId,
    app,
    connect,
    fail,
    resolve_url,
    schema_for,
    workflow_app,
)
from transact.engine import transfer
from transact.errors import DatabaseUnavailableError
from transact.storage import Store, Unavailable, open_store


@workflow_app.command("export")
def workflow_export(
    workflow_id: WorkflowId,
    children: Annotated[bool, typer.Option("--children", help="Export its child workflows too (recursively).")] = False,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to this file (default: stdout).")] = None,
    db: Db = None,
    config: ConfigPath = None,
) -> None:
    """Write a workflow (status, steps, events, streams, messages) as JSON, to debug it elsewhere."""
    with connect(db, config) as client:
        data = client.export_workflow(workflow_id, children=children)
    text = json_lib.dumps(data, indent=1)
    if output is None:
        sys.stdout.write(text + "\n")
    else:
        output.write_text(text + "\n", encoding="utf-8")


@workflow_app.command("import")
def workflow_import(
    file: Annotated[str, typer.Argument(help="A file written by `transact workflow export` (-: stdin).")],
    replace: Annotated[bool, typer.Option("--replace", help="Replace workflows that exist already.")] = False,
    db: Db = None,
    config: ConfigPath = None,
    json: Json = False,
) -> None:
    """Import an exported workflow. Imported PENDING work waits until `transact workflow resume`."""
    try:
        text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
    except OSError as exc:
        fail(f"cannot read {file!r}: {exc.strerror or exc}")
    try:
        data = json_lib.loads(text)
    except ValueError as exc:
        fail(f"{file!r} is not JSON ({exc}); give a file written by `transact workflow export`")
    url = resolve_url(db, config)
    with DBOSClient(
        url, migrate=True, retry_timeout_s=RETRY_S, connect_timeout_s=CONNECT_S, dbos_system_schema=schema_for(url)
    ) as client:
        workflow_id = client.import_workflow(data, replace=replace)
        status = client.retrieve_workflow(workflow_id).get_status().status
    if json:
        out.print_json({"workflow_id": workflow_id, "status": status, "replaced": replace})
    else:
        out.console().print(f"imported {workflow_id}: status {status}", markup=False)


class _Bars:
    """One Rich progress bar per table (``transfer.CopyProgress``)."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._tasks: dict[str, TaskID] = {}

    def table(self, name: str, total: int) -> None:
        # An empty table shows as a full bar of one, not an empty bar of none.
        self._tasks[name] = self._progress.add_task(name, total=max(total, 1), completed=0 if total else 1)

    def advance(self, name: str, rows: int) -> None:
        self._progress.advance(self._tasks[name], rows)


def _open(url: str, what: str) -> Store:
    # --schema names the Postgres side's schema; a SQLite side has none (and needs no warning).
    schema = None if url.startswith("sqlite:") else schema_for(url)
    store = open_store(url, retry_timeout_s=RETRY_S, connect_timeout_s=CONNECT_S, schema=schema)
    try:
        store.schema_version()
    except Unavailable as exc:
        store.close()
        raise DatabaseUnavailableError(f"cannot reach the {what} database {redact(url)}: {exc}") from None
    return store


@app.command("copy")
def copy(
    source: Annotated[str, typer.Option("--from", help="The system database to copy (e.g. sqlite:///app.sqlite).")],
    target: Annotated[str, typer.Option("--to", help="The system database to fill (e.g. postgresql://...).")],
    batch: Annotated[int, typer.Option("--batch", help="Rows per transaction.")] = 500,
    force: Annotated[bool, typer.Option("--force", help="Copy even while an executor of the source is alive.")] = False,
    resume: Annotated[
        bool, typer.Option("--resume", help="Complete an interrupted copy: keep the target's rows, add the missing.")
    ] = False,
    lease: Annotated[float, typer.Option("--lease", help="Seconds of silence after which an executor is dead.")] = 30.0,
    json: Json = False,
) -> None:
    """Copy a whole system database, in-flight workflows included: stop the application, copy,
    restart it on the new URL and it resumes where it was. Refuses while the source has a live
    executor; verifies the row count of every table."""
    if source.startswith("sqlite:///") and not Path(source[len("sqlite:///") :]).expanduser().is_file():
        fail(f"no SQLite database at {source[len('sqlite:///') :]!r}")
    src = _open(source, "source")
    try:
        dst = _open(target, "target")
        try:
            counts = _run_copy(src, dst, batch=batch, force=force, resume=resume, lease=lease)
        finally:
            dst.close()
    finally:
        src.close()
    if json:
        out.print_json({"copied": counts})
    else:
        summary = ", ".join(f"{n} {table}" for table, n in counts.items())
        out.console().print(f"copied {redact(source)} to {redact(target)}: {summary} (counts verified)", markup=False)


def _run_copy(src: Store, dst: Store, **options: Any) -> dict[str, int]:
    columns = (TextColumn("{task.description:<18}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=False) as progress:
        try:
            return transfer.copy_database(
                src,
                dst,
                batch=options["batch"],
                force=options["force"],
                resume=options["resume"],
                lease_seconds=options["lease"],
                progress=_Bars(progress),
            )
        except Unavailable as exc:
            raise DatabaseUnavailableError(f"copy: a database became unreachable: {exc}") from None
