"""Moving work between system databases: export / import of one workflow (with its children) as
JSON, and the copy of a whole system database (SQLite to Postgres, or any other pair).

An export holds every column of the workflow's status row, its steps, events, streams and the
messages addressed to it, values as stored: pickled inputs, outputs and messages go as base64 and
are never unpickled, so a run exports and imports without its code.

Imported work never starts by itself. A PENDING workflow is imported owned by the reserved
executor ``imported`` (``IMPORTED_EXECUTOR``), registered in the target as a process that never
goes silent, so no running application adopts it; ``DBOS.resume_workflow(id)`` (or ``transact
workflow resume``) runs it from its checkpoints, ``fork_workflow`` re-runs it under a new id. ENQUEUED
and DELAYED rows are imported as they are: they wait in their queue, and an application serving
that queue runs them.

A copy refuses while a live executor is registered in the source, moves every table but the
executors (the restarted application registers itself, then recovers its own PENDING work by
executor id or adopts the work of executors it does not see alive), and verifies the row count of
every table. It copies into an empty target; ``resume`` continues an interrupted copy (rows already
there are kept, missing ones copied). Must not import the facade.
"""

from __future__ import annotations

import base64
import binascii
import socket
from collections.abc import Mapping
from typing import Any, Protocol

from transact._lib.states import Status
from transact.engine.clock import now_ms
from transact.engine.recovery import dead_executors
from transact.errors import ConfigError, TransactError, WorkflowConflictError, WorkflowNotFoundError
from transact.storage import Conflict, Store
from transact.storage.rows import ExecutorRow
from transact.storage.transfer import KNOWN_TABLES, MOVED, STEPS, WORKFLOWS

FORMAT = "transact-workflow-export"
VERSION = 1
IMPORTED_EXECUTOR = "imported"
_FOREVER = 2**62  # the reserved executor's heartbeat: its lease never runs out
_BINARY = "base64"  # a binary value in JSON: {"base64": "..."}
_OWNED = {t.name: t for t in MOVED if t.owner is not None}


# -- export / import ----------------------------------------------------------------------------
def _to_json(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return {_BINARY: base64.b64encode(bytes(value)).decode("ascii")}
    return value


def _from_json(value: Any, where: str) -> Any:
    if isinstance(value, dict):
        text = value.get(_BINARY)
        if len(value) != 1 or not isinstance(text, str):
            raise ConfigError(f"import_workflow: {where}: a binary value is written {{{_BINARY!r}: '...'}}")
        try:
            return base64.b64decode(text.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError):
            raise ConfigError(f"import_workflow: {where}: the {_BINARY} text does not decode") from None
    if isinstance(value, list):
        raise ConfigError(f"import_workflow: {where}: a value must be a string, number, boolean or null")
    return value


def export_workflow(store: Store, workflow_id: str, *, children: bool = False) -> dict[str, Any]:
    """The workflow (and with ``children`` its descendants, recursively) as a JSON-ready dict:
    ``format``, ``version``, ``workflow_id``, ``exported_at`` (epoch ms) and ``tables``, each table
    ``{"columns": [...], "rows": [[...], ...]}`` with binary values as ``{"base64": "..."}``."""
    if not isinstance(workflow_id, str) or not workflow_id:
        raise ConfigError(f"export_workflow: workflow_id must be a non-empty string, got {workflow_id!r}")
    if not isinstance(children, bool):
        raise ConfigError(f"export_workflow: children must be True or False, got {children!r}")
    rows = store.transfer_export(workflow_id, children=children)
    if not rows:
        raise WorkflowNotFoundError(workflow_id)
    columns = store.transfer_tables()
    return {
        "format": FORMAT,
        "version": VERSION,
        "workflow_id": workflow_id,
        "children": children,
        "exported_at": now_ms(),
        "tables": {
            table: {"columns": columns[table], "rows": [[_to_json(v) for v in row] for row in table_rows]}
            for table, table_rows in rows.items()
        },
    }


def _checked_tables(data: Any) -> tuple[str, dict[str, Any]]:
    if not isinstance(data, Mapping):
        raise ConfigError(f"import_workflow: data must be the dict export_workflow returns, got {type(data).__name__}")
    if data.get("format") != FORMAT:
        raise ConfigError(f"import_workflow: data is not a workflow export (its 'format' is not {FORMAT!r})")
    version = data.get("version")
    if version != VERSION:
        raise ConfigError(
            f"import_workflow: export format version {version!r} is not {VERSION}; "
            "import it with the Transact version that exported it"
        )
    root, tables = data.get("workflow_id"), data.get("tables")
    if not isinstance(root, str) or not isinstance(tables, Mapping):
        raise ConfigError("import_workflow: data needs a 'workflow_id' string and a 'tables' object")
    return root, dict(tables)


def _decoded(store: Store, tables: dict[str, Any]) -> dict[str, list[tuple[Any, ...]]]:
    """The file's tables in the target's column order; a column the target lacks is refused."""
    target = store.transfer_tables()
    out: dict[str, list[tuple[Any, ...]]] = {}
    for table, body in tables.items():
        if table not in _OWNED:
            raise ConfigError(f"import_workflow: unknown table {table!r} (known: {sorted(_OWNED)})")
        columns, rows = (body.get("columns"), body.get("rows")) if isinstance(body, Mapping) else (None, None)
        if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns) or not isinstance(rows, list):
            raise ConfigError(f"import_workflow: table {table!r} needs 'columns' (names) and 'rows' (lists)")
        wanted = target.get(table, [])
        missing = [c for c in columns if c not in wanted]
        if missing:
            raise ConfigError(
                f"import_workflow: this database's {table} has no column {missing[0]!r}: "
                "migrate it with the Transact version that exported the file (`transact migrate`)"
            )
        at = {c: i for i, c in enumerate(columns)}
        decoded = []
        for n, row in enumerate(rows):
            if not isinstance(row, list) or len(row) != len(columns):
                raise ConfigError(f"import_workflow: {table} row {n} must be a list of {len(columns)} values")
            decoded.append(
                tuple(_from_json(row[at[c]], f"{table} row {n} column {c!r}") if c in at else None for c in wanted)
            )
        out[table] = decoded
    return out


def _parked(store: Store, rows: dict[str, list[tuple[Any, ...]]], root: str) -> dict[str, list[tuple[Any, ...]]]:
    """Check that every row belongs to an imported workflow; PENDING ones go to the reserved owner."""
    columns = store.transfer_tables()
    wf_cols = columns[WORKFLOWS]
    wid, status, owner = wf_cols.index("workflow_id"), wf_cols.index("status"), wf_cols.index("executor_id")
    workflows = rows.get(WORKFLOWS, [])
    ids = {row[wid] for row in workflows}
    if root not in ids:
        raise ConfigError(f"import_workflow: the export holds no status row for its workflow {root!r}")
    for table, table_rows in rows.items():
        at = columns[table].index(str(_OWNED[table].owner))
        for row in table_rows:
            if row[at] not in ids:
                raise ConfigError(f"import_workflow: a {table} row belongs to {row[at]!r}, which the export lacks")
    parked = []
    for row in workflows:
        if row[status] == Status.PENDING:
            values = list(row)
            values[owner] = IMPORTED_EXECUTOR
            row = tuple(values)
        parked.append(row)
    return {**rows, WORKFLOWS: parked}


def _register_imported(store: Store) -> None:
    now = now_ms()
    store.executor_register(ExecutorRow(IMPORTED_EXECUTOR, "", 0, "", None, now, _FOREVER, "RUNNING", None))


def import_workflow(store: Store, data: Any, *, replace: bool = False) -> str:
    """Insert an export into this database in one transaction; returns its workflow id. An id that
    exists here is refused (WorkflowConflictError) unless ``replace``, which deletes the old rows
    first in the same transaction. PENDING workflows arrive owned by ``IMPORTED_EXECUTOR``: nothing
    runs them until they are resumed or forked (see the module docstring)."""
    if not isinstance(replace, bool):
        raise ConfigError(f"import_workflow: replace must be True or False, got {replace!r}")
    root, tables = _checked_tables(data)
    rows = _parked(store, _decoded(store, tables), root)
    if any(r[store.transfer_tables()[WORKFLOWS].index("executor_id")] == IMPORTED_EXECUTOR for r in rows[WORKFLOWS]):
        _register_imported(store)
    try:
        existing = store.transfer_import(rows, replace=replace)
    except Conflict as exc:
        raise TransactError(f"import_workflow: the database refused a row of the export: {exc}") from None
    if existing and not replace:
        raise WorkflowConflictError(
            f"import_workflow: workflow(s) {', '.join(sorted(existing))} exist in this database already; "
            "pass replace=True (CLI: --replace) to replace them",
            existing[0],
        )
    return root


# -- copy -----------------------------------------------------------------------------------------
class CopyProgress(Protocol):
    """What a copy reports while it runs (the CLI draws a progress bar per table)."""

    def table(self, name: str, total: int) -> None: ...

    def advance(self, name: str, rows: int) -> None: ...


class _Silent:
    def table(self, name: str, total: int) -> None:
        return None

    def advance(self, name: str, rows: int) -> None:
        return None


def _check_source(source: Store, *, force: bool, lease_seconds: float) -> None:
    version = source.schema_version()
    if version == 0:
        raise TransactError("copy: the source database has no Transact tables")
    needed = max(v for v, _ in source.migration_scripts())
    if version != needed:
        raise TransactError(
            f"copy: the source schema is at version {version}, this Transact writes version {needed}: "
            + ("migrate the source first (`transact migrate --db SOURCE`)" if version < needed else "upgrade Transact")
        )
    unknown = sorted(set(source.transfer_tables()) - KNOWN_TABLES)
    if unknown:
        raise TransactError(f"copy: the source holds tables this Transact does not know: {', '.join(unknown)}")
    if force:
        return
    live, _ = dead_executors(
        source,
        me=None,
        hostname=socket.gethostname(),
        lease_ms=int(lease_seconds * 1000),
        local_check=True,
        now=now_ms(),
    )
    running = [ex.executor_id for ex in live if ex.executor_id != IMPORTED_EXECUTOR]
    if running:
        raise TransactError(
            f"copy: executor(s) {', '.join(running)} are alive in the source (heartbeat within {lease_seconds:g} s): "
            "stop the application first (its in-flight work is copied and resumes on the new database), "
            "or pass --force to copy anyway"
        )


def _mapping(source: Store, target: Store, table: str) -> list[int | None]:
    """For each target column, its position in the source's rows (None: the source lacks it)."""
    have, want = source.transfer_tables()[table], target.transfer_tables()[table]
    extra = [c for c in have if c not in want]
    if extra:
        raise TransactError(
            f"copy: the target's {table} has no column {extra[0]!r}; upgrade the Transact doing the copy"
        )
    return [have.index(c) if c in have else None for c in want]


def copy_database(
    source: Store,
    target: Store,
    *,
    batch: int = 500,
    force: bool = False,
    resume: bool = False,
    lease_seconds: float = 30.0,
    progress: CopyProgress | None = None,
) -> dict[str, int]:
    """Copy every table that moves from ``source`` to ``target`` (migrated first), ``batch`` rows
    per transaction; returns the row count per table, verified equal on both sides."""
    if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
        raise ConfigError(f"copy: batch must be a positive number of rows, got {batch!r}")
    if source.url == target.url:
        raise ConfigError("copy: the source and the target are the same database")
    report = progress or _Silent()
    _check_source(source, force=force, lease_seconds=lease_seconds)
    target.migrate()
    if not resume:
        full = [t.name for t in MOVED if target.transfer_count(t.name)]
        if full:
            raise TransactError(
                f"copy: the target already holds rows ({', '.join(full)}): copy into an empty database, "
                "or pass --resume to complete an interrupted copy (rows already there are kept)"
            )
    counts: dict[str, int] = {}
    for table in MOVED:
        name = table.name
        mapping = _mapping(source, target, name)
        total = source.transfer_count(name)
        report.table(name, total)
        cursor = None
        while True:
            # Steps page by workflow: a smaller page of workflows keeps a page of steps near ``batch``.
            rows, cursor = source.transfer_page(name, cursor, max(1, batch // 8) if name == STEPS else batch)
            if rows:
                target.transfer_insert(name, [tuple(r[i] if i is not None else None for i in mapping) for r in rows])
                report.advance(name, len(rows))
            if cursor is None:
                break
        counts[name] = total
    if any(ex.executor_id == IMPORTED_EXECUTOR for ex in source.executor_list()):
        _register_imported(target)  # parked imports stay parked
    wrong = {}
    for name in counts:
        counts[name] = source.transfer_count(name)
        got = target.transfer_count(name)
        if got != counts[name]:
            wrong[name] = (counts[name], got)
    if wrong:
        detail = ", ".join(f"{name}: source {s}, target {t}" for name, (s, t) in wrong.items())
        raise TransactError(f"copy: row counts differ after copying ({detail}); was the source still in use?")
    return counts
