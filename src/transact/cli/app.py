"""The ``transact`` commands (Typer): workflow list|get|steps|cancel|resume|fork|delete, queue list,
migrate, reset, version. Everything goes through DBOSClient; nothing here needs a launched app.

The database comes from ``--db``, else ``TRANSACT_SYSTEM_DATABASE_URL``, else the
``system_database_url`` key of a TOML config file (``--config PATH``, default ``./transact.toml``).
On Postgres, ``transact --schema NAME ...`` (or ``TRANSACT_SYSTEM_SCHEMA``) reads the system tables
of an application configured with ``dbos_system_schema: NAME``.
"""

from __future__ import annotations

import json as json_lib
import os
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from transact import __version__
from transact._client import DBOSClient
from transact._config import ENV_SYSTEM_DB, system_schema
from transact._lib.urls import redact
from transact.cli import _render as out
from transact.engine.admin import RESUMABLE
from transact.errors import DatabaseConfigurationError, DatabaseUnavailableError
from transact.storage import Misconfigured, Unavailable, grant_app_role, open_store

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

CONFIG_FILE = "transact.toml"
RETRY_S = 2.0  # an unreachable database fails within seconds, with one line
CONNECT_S = 3.0

app = typer.Typer(
    name="transact",
    help="Inspect and steer Transact workflows in a system database.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals may hold database passwords
)
workflow_app = typer.Typer(help="List, inspect, cancel, resume and fork workflows.", no_args_is_help=True)
queue_app = typer.Typer(help="Inspect queues.", no_args_is_help=True)
app.add_typer(workflow_app, name="workflow")
app.add_typer(queue_app, name="queue")
workflow_app.add_typer(queue_app, name="queue")  # `transact workflow queue list`, as DBOS spells it
ENV_SCHEMA = "TRANSACT_SYSTEM_SCHEMA"
_options: dict[str, str | None] = {"schema": None}  # global options, set by main()

Db = Annotated[
    str | None,
    typer.Option("--db", help=f"System database URL (default: ${ENV_SYSTEM_DB}, then {CONFIG_FILE})."),
]
ConfigPath = Annotated[
    Path | None, typer.Option("--config", help=f"TOML file with system_database_url (default: ./{CONFIG_FILE}).")
]
Json = Annotated[bool, typer.Option("--json", help="Print JSON (for scripts) instead of a table.")]
WorkflowId = Annotated[str, typer.Argument(help="The workflow id.")]


@app.callback()
def main(
    schema: Annotated[
        str | None,
        typer.Option(
            "--schema",
            envvar=ENV_SCHEMA,
            help="Postgres schema of the system tables, as the application's dbos_system_schema (default: transact).",
        ),
    ] = None,
) -> None:
    """Inspect and steer Transact workflows in a system database."""
    _options["schema"] = schema


def schema_for(url: str) -> str | None:
    """The ``--schema`` option, checked (None: the default schema)."""
    return system_schema(_options["schema"], "--schema", url)


class CliError(Exception):
    """A user-facing failure: printed as one line, exit code 1."""


def fail(message: str) -> NoReturn:
    raise CliError(message)


# -- database ------------------------------------------------------------------------------------
def resolve_url(db: str | None, config: Path | None) -> str:
    if db:
        return db
    env = os.environ.get(ENV_SYSTEM_DB)
    if env:
        return env
    path = config or Path(CONFIG_FILE)
    if config is not None and not path.is_file():
        fail(f"config file {str(path)!r} does not exist")
    if path.is_file():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            fail(f"cannot read {str(path)!r}: {exc}")
        url = data.get("system_database_url")
        if not isinstance(url, str) or not url:
            fail(f"{str(path)!r} has no string key system_database_url")
        return url
    fail(
        f'no database given: pass --db URL, set {ENV_SYSTEM_DB}, or put system_database_url = "..." in ./{CONFIG_FILE}'
    )


def connect(db: str | None, config: Path | None) -> DBOSClient:
    """A client on an existing, migrated system database (never creates one by accident)."""
    url = resolve_url(db, config)
    if url.startswith("sqlite:///"):
        path = os.path.expanduser(url[len("sqlite:///") :])
        if not os.path.isfile(path):
            fail(f"no SQLite database at {path!r}")
    client = DBOSClient(
        url, migrate=False, retry_timeout_s=RETRY_S, connect_timeout_s=CONNECT_S, dbos_system_schema=schema_for(url)
    )
    try:
        # One direct connection first: its error says why (refused, bad password, no such database),
        # where the pool would only report a timeout.
        connect_once = getattr(client.store, "connect_once", None)
        if connect_once is not None:
            connect_once().close()
        version = client.store.schema_version()
    except Misconfigured as exc:
        client.destroy()
        raise DatabaseConfigurationError(str(exc)) from None
    except Unavailable as exc:
        client.destroy()
        raise DatabaseUnavailableError(f"cannot reach the system database {redact(url)}: {exc}") from None
    if version == 0:
        client.destroy()
        fail("the database has no Transact tables yet: run `transact migrate` or launch the application once")
    needed = max(v for v, _ in client.store.migration_scripts())
    if version < needed:  # its queries may name columns the older schema lacks
        client.destroy()
        fail(
            f"the database's schema is at version {version}, this transact reads version {needed}: "
            "run `transact migrate` (once the applications using it run this version too)"
        )
    return client


# -- workflows ------------------------------------------------------------------------------------
@workflow_app.command("list")
def workflow_list(
    status: Annotated[list[str] | None, typer.Option("--status", "-s", help="Only this status (repeatable).")] = None,
    name: Annotated[
        list[str] | None, typer.Option("--name", "-n", help="Only this workflow name (repeatable).")
    ] = None,
    queue: Annotated[str | None, typer.Option("--queue", "-q", help="Only workflows of this queue.")] = None,
    prefix: Annotated[str | None, typer.Option("--prefix", help="Only ids starting with this.")] = None,
    start: Annotated[str | None, typer.Option("--start", help="Created at or after (ISO-8601).")] = None,
    end: Annotated[str | None, typer.Option("--end", help="Created at or before (ISO-8601).")] = None,
    limit: Annotated[int, typer.Option("--limit", "-l", help="At most this many rows.")] = 50,
    offset: Annotated[int, typer.Option("--offset", help="Skip this many rows first.")] = 0,
    oldest_first: Annotated[bool, typer.Option("--oldest-first", help="Oldest first (default: newest).")] = False,
    attribute: Annotated[
        list[str] | None,
        typer.Option(
            "--attribute",
            "-a",
            help="Only workflows with this attribute, KEY=VALUE; VALUE is read as JSON when it parses "
            "(3, true, null, [1,2]), else as text (repeatable: all must match).",
        ),
    ] = None,
    db: Db = None,
    config: ConfigPath = None,
    json: Json = False,
) -> None:
    """List workflows, newest first."""
    attributes = _attribute_filter(attribute or [])
    with connect(db, config) as client:
        rows = client.list_workflows(
            attributes=attributes,
            status=status or None,
            name=name or None,
            queue_name=queue,
            workflow_id_prefix=prefix,
            start_time=start,
            end_time=end,
            limit=limit,
            offset=offset,
            sort_desc=not oldest_first,
            load_input=json,
            load_output=json,
        )
    if json:
        out.print_json([out.status_dict(r) for r in rows])
    else:
        out.console().print(out.workflows_table(rows, f"{len(rows)} workflow(s)"))


def _attribute_filter(pairs: list[str]) -> dict[str, Any] | None:
    """``--attribute KEY=VALUE`` options as a dict (VALUE as JSON when it parses, else as text)."""
    attributes: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            fail(f"--attribute {pair!r}: write it as KEY=VALUE, e.g. --attribute customer=acme")
        try:
            attributes[key] = json_lib.loads(text)
        except ValueError:
            attributes[key] = text
    return attributes or None


@workflow_app.command("stranded")
def workflow_stranded(
    lease: Annotated[float, typer.Option("--lease", help="Seconds of silence after which an executor is dead.")] = 30.0,
    limit: Annotated[int, typer.Option("--limit", "-l", help="At most this many rows.")] = 1000,
    db: Db = None,
    config: ConfigPath = None,
    json: Json = False,
) -> None:
    """List stranded workflows: owner gone and no live process has their workflow registered."""
    with connect(db, config) as client:
        rows = client.list_stranded_workflows(lease_seconds=lease, limit=limit)
    if json:
        out.print_json([out.status_dict(r) for r in rows])
    else:
        out.console().print(out.workflows_table(rows, f"{len(rows)} stranded workflow(s)"))


@workflow_app.command("get")
def workflow_get(workflow_id: WorkflowId, db: Db = None, config: ConfigPath = None, json: Json = False) -> None:
    """Show one workflow: status, inputs, output or error, times."""
    with connect(db, config) as client:
        status = client.retrieve_workflow(workflow_id, existing_workflow=False).get_status()
    if json:
        out.print_json(out.status_dict(status))
    else:
        out.console().print(out.workflow_table(status))


@workflow_app.command("steps")
def workflow_steps(workflow_id: WorkflowId, db: Db = None, config: ConfigPath = None, json: Json = False) -> None:
    """List a workflow's recorded steps in execution order."""
    with connect(db, config) as client:
        steps = client.list_workflow_steps(workflow_id)
    if json:
        out.print_json(steps)
    else:
        out.console().print(out.steps_table(workflow_id, steps))


def _report(client: DBOSClient, workflow_id: str, action: str, json: bool, **extra: Any) -> None:
    status = client.retrieve_workflow(workflow_id, existing_workflow=False).get_status()
    if json:
        out.print_json({"workflow_id": workflow_id, "status": status.status, **extra})
    else:
        out.console().print(f"{action} {workflow_id}: status {status.status}", markup=False)


@workflow_app.command("cancel")
def workflow_cancel(workflow_id: WorkflowId, db: Db = None, config: ConfigPath = None, json: Json = False) -> None:
    """Cancel a workflow and its unfinished children (running ones stop at their next step)."""
    with connect(db, config) as client:
        client.cancel_workflow(workflow_id)
        _report(client, workflow_id, "cancelled", json)


@workflow_app.command("resume")
def workflow_resume(workflow_id: WorkflowId, db: Db = None, config: ConfigPath = None, json: Json = False) -> None:
    """Continue a CANCELLED or MAX_RECOVERY_ATTEMPTS_EXCEEDED workflow from its checkpoints
    (a live application process runs it; queued ones rejoin their queue)."""
    with connect(db, config) as client:
        before = client.retrieve_workflow(workflow_id, existing_workflow=False).get_status().status
        resumed = before in RESUMABLE
        client.resume_workflow(workflow_id)
        if not resumed and not json:
            out.console().print(f"{workflow_id} is {before}: nothing to resume", markup=False)
            return
        _report(client, workflow_id, "resumed", json, resumed=resumed)


@workflow_app.command("fork")
def workflow_fork(
    workflow_id: WorkflowId,
    step: Annotated[int, typer.Option("--step", help="First step to re-run (earlier outcomes are reused).")] = 1,
    app_version: Annotated[str | None, typer.Option("--app-version", help="Version for the new workflow.")] = None,
    new_id: Annotated[str | None, typer.Option("--id", help="Id of the new workflow (default: a UUID).")] = None,
    db: Db = None,
    config: ConfigPath = None,
    json: Json = False,
) -> None:
    """Start a copy of a workflow that re-runs it from --step (a live application process runs it)."""
    with connect(db, config) as client:
        handle = client.fork_workflow(workflow_id, step, application_version=app_version, new_workflow_id=new_id)
        if json:
            out.print_json({"workflow_id": handle.workflow_id, "forked_from": workflow_id, "start_step": step})
        else:
            out.console().print(f"forked {workflow_id} from step {step} as {handle.workflow_id}", markup=False)


@workflow_app.command("delete")
def workflow_delete(
    workflow_id: WorkflowId,
    children: Annotated[bool, typer.Option("--children", help="Delete its child workflows too.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    db: Db = None,
    config: ConfigPath = None,
    json: Json = False,
) -> None:
    """Delete a workflow and everything recorded for it."""
    with connect(db, config) as client:
        client.retrieve_workflow(workflow_id)
        if not yes:
            typer.confirm(f"Delete workflow {workflow_id}{' and its children' if children else ''}?", abort=True)
        client.delete_workflow(workflow_id, delete_children=children)
    if json:
        out.print_json({"workflow_id": workflow_id, "deleted": True})
    else:
        out.console().print(f"deleted {workflow_id}", markup=False)


# -- queues ---------------------------------------------------------------------------------------
@queue_app.command("list")
def queue_list(
    queue: Annotated[str | None, typer.Option("--queue", "-q", help="Only this queue.")] = None,
    status: Annotated[list[str] | None, typer.Option("--status", "-s", help="Only this status (repeatable).")] = None,
    limit: Annotated[int, typer.Option("--limit", "-l", help="At most this many rows.")] = 50,
    db: Db = None,
    config: ConfigPath = None,
    json: Json = False,
) -> None:
    """List workflows waiting in or running from queues, oldest first (the order they run in)."""
    with connect(db, config) as client:
        rows = client.list_queued_workflows(queue_name=queue, status=status or None, limit=limit, load_input=json)
    if json:
        out.print_json([out.status_dict(r) for r in rows])
    else:
        out.console().print(out.workflows_table(rows, f"{len(rows)} queued workflow(s)"))


# -- database -------------------------------------------------------------------------------------
@app.command("migrate")
def migrate(
    db: Db = None,
    config: ConfigPath = None,
    json: Json = False,
    app_role: Annotated[
        str | None,
        typer.Option(
            "--app-role",
            help="Postgres: grant this existing role what the app needs to run with run_migrations=False "
            "(no DDL rights); also for tables later migrations create.",
        ),
    ] = None,
) -> None:
    """Create or upgrade the Transact tables in the system database."""
    url = resolve_url(db, config)
    schema = schema_for(url)
    with DBOSClient(
        url, migrate=True, retry_timeout_s=RETRY_S, connect_timeout_s=CONNECT_S, dbos_system_schema=schema
    ) as client:
        version = client.store.schema_version()
        if app_role is not None:
            try:
                client._call(
                    grant_app_role, url, app_role, retry_timeout_s=RETRY_S, connect_timeout_s=CONNECT_S, schema=schema
                )
            except ValueError as exc:
                fail(str(exc))
    if json:
        out.print_json({"schema_version": version, **({"app_role": app_role} if app_role else {})})
    else:
        granted = f"; role {app_role!r} may run the application" if app_role else ""
        out.console().print(f"schema is at version {version}{granted}", markup=False)


@app.command("reset")
def reset(
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    db: Db = None,
    config: ConfigPath = None,
) -> None:
    """Drop every Transact table (all workflows and their history). For development only."""
    url = resolve_url(db, config)
    if not yes:
        typer.confirm(f"Drop every Transact table in {url}? This deletes all workflow history", abort=True)
    store = open_store(url, retry_timeout_s=RETRY_S, connect_timeout_s=CONNECT_S, schema=schema_for(url))
    try:
        store.reset()
    except Unavailable as exc:
        raise DatabaseUnavailableError(f"cannot reach the system database {redact(url)}: {exc}") from None
    finally:
        store.close()
    out.console().print("dropped every Transact table", markup=False)


@app.command("version")
def version(json: Json = False) -> None:
    """Print the Transact version."""
    if json:
        out.print_json({"version": __version__})
    else:
        out.console().print(f"transact {__version__}", markup=False)
