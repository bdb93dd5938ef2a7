"""Moving rows between system databases: export / import of a workflow tree, and the pages a
whole-database copy is made of (``TransferStore`` in transfer_protocol.py).

Columns come from the database's own catalog, so every column a migration adds moves without a
change here; tables do not: ``MOVED`` lists the tables that move (in the order their foreign keys
need), ``KEPT`` the ones that stay behind, and a test fails when a migration adds a table that is
in neither. Must not import the engine or the facade.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from transact._lib.states import Hint, Status
from transact.storage._base import DriverBase, Tx
from transact.storage.rows import STEP_COLUMNS
from transact.storage.transfer_protocol import Cursor, TableRows


@dataclass(frozen=True, slots=True)
class Moved:
    """A table whose rows move: its key (paging order; unique on both databases), the column that
    names the workflow a row belongs to (None: rows of the whole database, not of a workflow),
    and a column whose values the database assigns (Postgres has a sequence to move)."""

    name: str
    key: tuple[str, ...]
    owner: str | None
    serial: str | None = None


WORKFLOWS = "workflow_status"
STEPS = "operation_outputs"
MESSAGES = "notifications"
MOVED: tuple[Moved, ...] = (
    Moved(WORKFLOWS, ("workflow_id",), "workflow_id"),
    Moved(STEPS, ("workflow_id", "function_id"), "workflow_id"),
    Moved("workflow_events", ("workflow_id", "key"), "workflow_id"),
    Moved("streams", ("workflow_id", "key", "seq"), "workflow_id"),
    Moved(MESSAGES, ("message_id",), "destination_id", serial="message_id"),
    Moved("schedules", ("schedule_name",), None),
    Moved("queues", ("queue_name",), None),
    Moved("application_versions", ("application_name", "version_name"), None),
)
# Tables that stay behind, and why: executors are processes of the source database (a copy's
# restarted application registers itself; their PENDING work is recovered or adopted);
# schema_version belongs to the migrations of each database; workflow_attributes (SQLite) is
# kept by triggers from workflow_status.attributes; sqlite_sequence is SQLite's own. The
# transaction outcome table is there when the application database is the system database: it
# belongs to the application's data, which moves with that database, not with a system copy.
KEPT = (
    "executors",
    "schema_version",
    "workflow_attributes",
    "sqlite_sequence",
    "transaction_outputs",
    "transact_transaction_outputs",
)
KNOWN_TABLES = frozenset({t.name for t in MOVED} | set(KEPT))
# Columns a database keeps for its own keys (SQLite's integer step keys), never data.
_PHYSICAL = {WORKFLOWS: "seq", STEPS: "step_key"}
_FLAGS = frozenset({"closed", "backfill", "dynamic"})  # booleans SQLite stores as 0 / 1
_BY_NAME = {t.name: t for t in MOVED}
_OWNED = tuple(t for t in MOVED if t.owner is not None)


class TransferSql(DriverBase):
    _transfer_catalog: dict[str, list[str]] | None = None

    def transfer_tables(self) -> dict[str, list[str]]:
        catalog = self._transfer_catalog
        if catalog is None:

            def unit(tx: Tx) -> dict[str, list[str]]:
                names = sorted(str(r[0]) for r in tx.all(self.sql.catalog_tables))
                found: dict[str, list[str]] = {}
                for table in MOVED:  # copy order first
                    if table.name in names:
                        cols = [str(r[0]) for r in tx.all(self.sql.catalog_columns, (table.name,))]
                        found[table.name] = [c for c in cols if c != _PHYSICAL.get(table.name)]
                for name in names:
                    found.setdefault(name, [])
                return found

            catalog = self._transfer_catalog = self.read(unit)
        return catalog

    def _columns(self, table: str) -> list[str]:
        columns = self.transfer_tables().get(table)
        if not columns:
            raise ValueError(f"table {table!r} does not move between databases (moved: {[t.name for t in MOVED]})")
        return columns

    def _select(self, table: str) -> str:
        return f"SELECT {', '.join(self._columns(table))} FROM {table}"

    def _normalized(self, table: str, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        flags = [i for i, c in enumerate(self._columns(table)) if c in _FLAGS]
        if not flags:
            return rows
        out = []
        for row in rows:
            values = list(row)
            for i in flags:
                if values[i] is not None:
                    values[i] = bool(values[i])
            out.append(tuple(values))
        return out

    def _steps_of(self, tx: Tx, ids: Sequence[str]) -> list[tuple[Any, ...]]:
        """Steps of these workflows, ordered, in the catalog's column order."""
        columns = self._columns(STEPS)
        position = {c: i for i, c in enumerate(columns)}
        # of_workflows yields STEP_COLUMNS; reorder by name.
        order = [position[c.strip()] for c in STEP_COLUMNS.split(",")]
        rows: list[tuple[Any, ...]] = []
        match, param = self._ids_match(ids)
        for r in tx.all(self.sql.steps.of_workflows.format(match=match), (param,)):
            values: list[Any] = [None] * len(columns)
            for src, dst in enumerate(order):
                values[dst] = r[src]
            rows.append(tuple(values))
        wid, fid = position["workflow_id"], position["function_id"]
        rows.sort(key=lambda r: (r[wid], r[fid]))
        return rows

    # -- export / import ----------------------------------------------------------------------
    def transfer_export(self, workflow_id: str, *, children: bool) -> TableRows:
        def unit(tx: Tx) -> TableRows:
            if tx.one("SELECT 1 FROM workflow_status WHERE workflow_id = ?", (workflow_id,)) is None:
                return {}
            ids = [workflow_id]
            if children:
                ids += [
                    str(r[0])
                    for r in tx.all(
                        "WITH RECURSIVE tree(workflow_id) AS ("
                        " SELECT workflow_id FROM workflow_status WHERE parent_workflow_id = ?"
                        " UNION SELECT w.workflow_id FROM workflow_status w"
                        " JOIN tree t ON w.parent_workflow_id = t.workflow_id) "
                        "SELECT workflow_id FROM tree ORDER BY workflow_id",
                        (workflow_id,),
                    )
                ]
            out: TableRows = {}
            match, param = self._ids_match(ids)
            for table in _OWNED:
                if table.name == STEPS:
                    out[STEPS] = self._steps_of(tx, ids)
                    continue
                rows = tx.all(
                    f"{self._select(table.name)} WHERE {table.owner}{match} ORDER BY {', '.join(table.key)}", (param,)
                )
                out[table.name] = self._normalized(table.name, rows)
            return out

        self.transfer_tables()  # the catalog, read before the transaction
        return self.write(unit)  # one transaction: the tables agree with each other

    def transfer_import(self, rows: Mapping[str, Sequence[Sequence[Any]]], *, replace: bool) -> list[str]:
        unknown = set(rows) - {t.name for t in _OWNED}
        if unknown:
            raise ValueError(f"tables {sorted(unknown)} do not belong to a workflow and are not imported")
        columns = {t.name: self._columns(t.name) for t in _OWNED}
        wid = columns[WORKFLOWS].index("workflow_id")
        ids = [str(r[wid]) for r in rows.get(WORKFLOWS, ())]

        def unit(tx: Tx) -> list[str]:
            found = self._existing(tx, ids) if ids else set()
            existing = [i for i in ids if i in found]
            if existing and not replace:
                return existing
            if existing:
                match, param = self._ids_match(existing)
                tx.run(f"DELETE FROM workflow_status WHERE workflow_id{match}", (param,))
            self._delete_owned(tx, existing)
            for table in _OWNED:
                self._insert(tx, table, columns[table.name], rows.get(table.name, ()), keep_serial=False)
            return existing

        existing = self.write(unit)
        queues = set()
        status, queue = columns[WORKFLOWS].index("status"), columns[WORKFLOWS].index("queue_name")
        for row in rows.get(WORKFLOWS, ()):
            if row[status] in (Status.ENQUEUED, Status.DELAYED):
                queues.add((str(row[queue] or ""), "" if row[status] == Status.ENQUEUED else "delayed"))
        for name, key in sorted(queues):
            self.hint(Hint.QUEUE, name, key)
        return existing

    def _insert(
        self, tx: Tx, table: Moved, columns: list[str], rows: Sequence[Sequence[Any]], *, keep_serial: bool
    ) -> None:
        if not rows:
            return
        if table.name == STEPS:
            pick = [columns.index(c.strip()) for c in STEP_COLUMNS.split(",")]
            tx.many(self.sql.step_insert, [[r[i] for i in pick] for r in rows])
            return
        keep = [i for i, c in enumerate(columns) if keep_serial or c != table.serial]
        names = ", ".join(columns[i] for i in keep)
        marks = ", ".join("?" * len(keep))
        tx.many(
            f"INSERT INTO {table.name} ({names}) VALUES ({marks}) ON CONFLICT DO NOTHING",
            [[r[i] for i in keep] for r in rows],
        )
        if keep_serial and table.serial is not None and self.sql.advance_serial is not None:
            tx.all(self.sql.advance_serial.format(table=table.name, column=table.serial))

    # -- copy ---------------------------------------------------------------------------------
    def transfer_count(self, table: str) -> int:
        self._columns(table)  # a table that moves
        row = self.read(lambda tx: tx.one(f"SELECT COUNT(*) FROM {table}"))
        return int(row[0]) if row else 0

    def transfer_page(
        self, table: str, after: Cursor | None, limit: int
    ) -> tuple[list[tuple[Any, ...]], Cursor | None]:
        spec = _BY_NAME.get(table)
        if spec is None:
            self._columns(table)  # raises: not a table that moves
            raise AssertionError(table)
        if table == STEPS:  # by workflow: SQLite keys steps by workflow seq, not by workflow id
            where = "" if after is None else " WHERE workflow_id > ?"
            ids = self.read(
                lambda tx: [
                    str(r[0])
                    for r in tx.all(
                        f"SELECT workflow_id FROM workflow_status{where} ORDER BY workflow_id LIMIT ?",
                        (*(after or ()), limit),
                    )
                ]
            )
            rows = self.read(lambda tx: self._steps_of(tx, ids)) if ids else []
            return rows, ((ids[-1],) if len(ids) == limit else None)
        key = ", ".join(spec.key)
        where = ""
        if after is not None:
            where = f" WHERE ({key}) > ({', '.join('?' * len(spec.key))})" if len(spec.key) > 1 else f" WHERE {key} > ?"
        sql = f"{self._select(table)}{where} ORDER BY {key} LIMIT ?"
        rows = self._normalized(table, self.read(lambda tx: tx.all(sql, (*(after or ()), limit))))
        if len(rows) < limit:
            return rows, None
        columns = self._columns(table)
        last = rows[-1]
        return rows, tuple(last[columns.index(c)] for c in spec.key)

    def transfer_insert(self, table: str, rows: Sequence[Sequence[Any]]) -> None:
        spec = _BY_NAME.get(table)
        columns = self._columns(table)
        assert spec is not None
        self.write(lambda tx: self._insert(tx, spec, columns, rows, keep_serial=True))
