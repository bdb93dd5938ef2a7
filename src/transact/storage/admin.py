"""Management reads and writes: list, explain, resume, fork, delete, schema probe, synthetic rows.

List queries are built so the planner can walk an index in ``created_at`` order and stop after
``limit`` rows: (created_at), (status, created_at) and (name, created_at) exist from migration
0001, (queue_name | app_version | executor_id | authenticated_user | forked_from, created_at) and
the finish-time index from 0014; workflow-id prefixes are a range on the primary key; attribute
pairs walk the (key, value, created_at) index of workflow_attributes (0015, 0020). Must not
import the engine or the facade.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from transact._lib.states import Hint, Status
from transact.storage._base import DriverBase, Tx
from transact.storage.retention_sql import FINISHED
from transact.storage.rows import MAX_FUNCTION_ID, WORKFLOW_COLUMN_COUNT, WORKFLOW_COLUMNS, ListQuery, WorkflowRow
from transact.storage.workflows import to_workflow, workflow_values

__all__ = ["AdminSql", "ListQuery"]

_LIGHT_COLUMNS = {  # blobs replaced by NULL when the caller does not want them decoded
    "inputs": "NULL AS inputs",
    "output": "NULL AS output",
    "error": "NULL AS error",
}
_INSERT_WORKFLOW = f"INSERT INTO workflow_status ({WORKFLOW_COLUMNS}) VALUES ({', '.join('?' * WORKFLOW_COLUMN_COUNT)})"

# A resumed workflow restarts from its checkpoints: queued ones go back to their queue (so its
# limits apply), others become PENDING for the given executor (NULL: any live process adopts it).
# The recovery counter restarts, and a timeout restarts from now.
_RESUME_SET = (
    "status = CASE WHEN queue_name IS NULL THEN 'PENDING' ELSE 'ENQUEUED' END, "
    "executor_id = CASE WHEN queue_name IS NULL THEN ? ELSE NULL END, "
    "started_at = CASE WHEN queue_name IS NULL THEN ? ELSE NULL END, "
    "deadline_at = CASE WHEN queue_name IS NULL AND timeout_ms IS NOT NULL THEN timeout_ms + ? ELSE NULL END, "
    "recovery_attempts = 0, updated_at = ?"
)
_DEQUEUE_SET = (
    "status = 'PENDING', queue_name = NULL, queue_partition_key = NULL, deduplication_id = NULL, "
    "executor_id = ?, started_at = ?, available_at = NULL, "
    "deadline_at = CASE WHEN timeout_ms IS NOT NULL THEN timeout_ms + ? ELSE NULL END, "
    "recovery_attempts = 0, updated_at = ?"
)
_REQUEUE_SET = (
    "status = 'ENQUEUED', queue_name = ?, executor_id = NULL, started_at = NULL, available_at = NULL, "
    "deadline_at = NULL, recovery_attempts = 0, updated_at = ?"
)
_TREE = (
    "WITH RECURSIVE tree(workflow_id) AS ("
    " SELECT workflow_id FROM workflow_status WHERE parent_workflow_id = ?"
    " UNION SELECT w.workflow_id FROM workflow_status w JOIN tree t ON w.parent_workflow_id = t.workflow_id) "
)


# SQLite: an attribute value in the canonical form workflow_attributes stores (the same expression
# as the triggers of migrations/sqlite/0015), computed from a one-element JSON array.
ATTRIBUTE_VALUE = (
    "(SELECT CASE type WHEN 'text' THEN json_quote(value) WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' "
    "WHEN 'null' THEN 'null' WHEN 'object' THEN json(value) WHEN 'array' THEN json(value) ELSE value END "
    "FROM json_each(?))"
)


def _values(value: str | Sequence[str]) -> Sequence[str]:
    return [value] if isinstance(value, str) else value


def _in(column: str, values: Sequence[str], where: list[str], params: list[Any]) -> None:
    # One value as "=" so the (column, created_at) index also yields the sort order.
    if len(values) == 1:
        where.append(f"{column} = ?")
    else:
        where.append(f"{column} IN ({', '.join('?' * len(values))})")
    params.extend(values)


def _columns(q: ListQuery) -> str:
    cols = [c.strip() for c in WORKFLOW_COLUMNS.split(",")]
    hidden = set()
    if not q.load_input:
        hidden.add("inputs")
    if not q.load_output:
        hidden |= {"output", "error"}
    return ", ".join(_LIGHT_COLUMNS[c] if c in hidden else c for c in cols)


def _list_filters(q: ListQuery) -> tuple[object, ...]:
    return (
        q.workflow_ids,
        q.statuses,
        q.names,
        q.queue_name,
        q.id_prefix,
        q.app_version,
        q.executor_id,
        q.parent_workflow_id,
        q.forked_from,
        q.user,
    )


# An attribute value as workflow_attributes stores it, from the JSON text of the wanted value:
# Postgres keeps jsonb (equality of jsonb is exact, 1 equals 1.0 as JSON numbers compare); SQLite
# a canonical form computed from a one-element JSON array.
_ATTRIBUTE_VALUE: dict[str, tuple[str, Callable[[str], str]]] = {
    "postgres": ("CAST(? AS jsonb)", lambda value: value),
    "sqlite": (ATTRIBUTE_VALUE, lambda value: f"[{value}]"),
}
# Each pair after the first, tested on the row the first pair found. Postgres reads the row's own
# jsonb (a semi-join on workflow_attributes lets the planner drive from the commonest pair: 0.7 s
# over 1M rows); SQLite probes workflow_attributes' primary key.
_OTHER_PAIR = {
    "postgres": "attributes -> CAST(? AS text) = CAST(? AS jsonb)",
    "sqlite": f"EXISTS (SELECT 1 FROM workflow_attributes b WHERE b.workflow_id = a_id AND b.key = ? AND b.value = {ATTRIBUTE_VALUE})",
}


class AdminSql(DriverBase):
    # -- listing ------------------------------------------------------------------------------
    def list_sql(self, q: ListQuery) -> tuple[str, list[Any]]:
        """The list query for ``q`` (exposed so tests can EXPLAIN exactly what runs)."""
        where: list[str] = []
        params: list[Any] = []
        if q.workflow_ids is not None:  # a caller may name more ids than a statement takes placeholders
            match, param = self._ids_match(q.workflow_ids)
            where.append(f"workflow_id{match}")
            params.append(param)
        if q.statuses is not None:
            _in("status", q.statuses, where, params)
        if q.names is not None:
            _in("name", q.names, where, params)
        if q.created_from is not None:
            where.append("created_at >= ?")
            params.append(q.created_from)
        if q.created_to is not None:
            where.append("created_at <= ?")
            params.append(q.created_to)
        if q.queued_only:
            where.append("queue_name IS NOT NULL")
        for column, value in (
            ("queue_name", q.queue_name),
            ("app_version", q.app_version),
            ("executor_id", q.executor_id),
            ("parent_workflow_id", q.parent_workflow_id),
            ("forked_from", q.forked_from),
            ("authenticated_user", q.user),
        ):
            if value is not None:
                _in(column, _values(value), where, params)
        for column, flag in (("parent_workflow_id", q.has_parent), ("forked_from", q.was_forked)):
            if flag is not None:
                where.append(f"{column} IS {'NOT NULL' if flag else 'NULL'}")
        for op, moment in (
            (">=", q.updated_from),
            ("<=", q.updated_to),
            (">=", q.completed_from),
            ("<=", q.completed_to),
        ):
            if moment is not None:
                where.append(f"updated_at {op} ?")
                params.append(moment)
        if q.completed_from is not None or q.completed_to is not None:
            # Nothing updates a row while it is in a final status: its updated_at is when it
            # finished (no index: see migration 0014).
            where.append(FINISHED)
        if q.id_prefix is not None:
            self._prefixes(_values(q.id_prefix), where, params)
        source, order = "workflow_status", ("created_at", "workflow_id")
        if q.attributes:
            source, order = self._attributes(q.attributes, where, params)
        sql = f"SELECT {_columns(q)} FROM {source}"
        if where:
            sql += " WHERE " + " AND ".join(where)
        direction = "DESC" if q.newest_first else "ASC"
        # workflow_id breaks ties between rows created in the same millisecond, so paging is exact.
        sql += f" ORDER BY {order[0]} {direction}, {order[1]} {direction}"
        if q.limit is not None:
            sql += " LIMIT ?"
            params.append(q.limit)
        if q.offset:
            if q.limit is None:
                sql += self.sql.offset_alone
            sql += " OFFSET ?"
            params.append(q.offset)
        return sql, params

    def _prefixes(self, prefixes: Sequence[str], where: list[str], params: list[Any]) -> None:
        # Ids compare bytewise on both databases (SQLite BINARY; Postgres COLLATE "C", migration
        # 0008): [prefix, prefix with its last char bumped) is exactly the ids starting with
        # prefix, and a range on the primary key. The empty prefix matches every id.
        ranges = []
        for prefix in prefixes:
            if not prefix:
                return
            ranges.append("(workflow_id >= ? AND workflow_id < ?)")
            params.extend([prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)])
        if ranges:
            where.append(ranges[0] if len(ranges) == 1 else "(" + " OR ".join(ranges) + ")")

    def _attributes(
        self, pairs: Sequence[tuple[str, str]], where: list[str], params: list[Any]
    ) -> tuple[str, tuple[str, str]]:
        """The FROM clause and ORDER BY columns of a listing by attribute pairs (exact equality of
        each value). The first pair drives: its holders come newest first from the end of one range
        of wa_newest_idx (migration 0020), each joined to its workflow row by primary key; the other
        pairs are tested on the rows it finds (_OTHER_PAIR). Its params go first (FROM precedes WHERE)."""
        value_sql, wrap = _ATTRIBUTE_VALUE[self.sql.name]
        (key, value), rest = pairs[0], pairs[1:]
        source = (
            "(SELECT workflow_id AS a_id, created_at AS a_at FROM workflow_attributes"
            f" WHERE key = ? AND value = {value_sql}) a JOIN workflow_status ON workflow_id = a_id"
        )
        params[:0] = [key, wrap(value)]
        for key, value in rest:
            where.append(_OTHER_PAIR[self.sql.name])
            params.extend([key, wrap(value)])
        return source, ("a_at", "a_id")

    def workflows_list(self, q: ListQuery) -> list[WorkflowRow]:
        """Workflows matching ``q`` in creation order. Round trips: 1."""
        if any(v is not None and not isinstance(v, str) and not v for v in _list_filters(q)):
            return []  # an empty list matches nothing
        sql, params = self.list_sql(q)
        return [to_workflow(r) for r in self.read(lambda tx: tx.all(sql, params))]

    def workflows_explain(self, q: ListQuery) -> str:
        """The database's query plan for the list query (one line per plan node)."""
        sql, params = self.list_sql(q)
        rows = self.read(lambda tx: tx.all(self.sql.explain + sql, params))
        return "\n".join(str(r[-1]) for r in rows)

    # -- steering -----------------------------------------------------------------------------
    def workflow_resume(
        self,
        *,
        workflow_id: str,
        from_statuses: Sequence[str],
        executor_id: str | None,
        now: int,
        queue_name: str | None = None,
    ) -> list[WorkflowRow]:
        """Restart a workflow in one of ``from_statuses`` from its checkpoints, with its CANCELLED
        descendants (a cancel stops the whole tree, so a resume restarts it). Returns the updated
        rows, the workflow first; empty when it was not in one of those statuses."""
        marks = ", ".join("?" * len(from_statuses))
        set_params = (executor_id, now, now, now)

        def unit(tx: Tx) -> list[WorkflowRow]:
            where = f"WHERE workflow_id = ? AND status IN ({marks}) RETURNING {WORKFLOW_COLUMNS}"
            if queue_name is not None:  # onto the given queue, whatever it waited in before
                top = tx.one(
                    f"UPDATE workflow_status SET {_REQUEUE_SET} {where}", (queue_name, now, workflow_id, *from_statuses)
                )
            else:
                waiting = tx.one(
                    "SELECT 1 FROM workflow_status WHERE workflow_id = ? AND status IN ('ENQUEUED', 'DELAYED')",
                    (workflow_id,),
                )
                # Still waiting in its queue: run it now, out of the queue. Otherwise (cancelled,
                # dead-lettered, stuck) it restarts where it ran, queued ones in their queue.
                set_clause = _DEQUEUE_SET if waiting is not None else _RESUME_SET
                top = tx.one(
                    f"UPDATE workflow_status SET {set_clause} {where}", (*set_params, workflow_id, *from_statuses)
                )
            if top is None:
                return []
            children = tx.all(
                _TREE + f"UPDATE workflow_status SET {_RESUME_SET} "
                "WHERE workflow_id IN (SELECT workflow_id FROM tree) AND status = 'CANCELLED' "
                f"RETURNING {WORKFLOW_COLUMNS}",
                (workflow_id, *set_params),
            )
            return [to_workflow(top), *(to_workflow(r) for r in children)]

        rows = self.write(unit)
        for row in rows:
            if row.status == Status.ENQUEUED:
                self.hint(Hint.QUEUE, row.queue_name or "", "")
        return rows

    def workflow_fork(self, row: WorkflowRow, *, source_id: str, start_step: int) -> int:
        """Insert ``row`` and copy the source's step outcomes with function id < ``start_step``,
        atomically. Raises Conflict if the new id exists. Returns the number of steps copied."""

        def unit(tx: Tx) -> int:
            tx.run(_INSERT_WORKFLOW, workflow_values(row))
            # (start_step capped at the highest position: past it SQLite's key range would reach
            # the next workflow's, and Postgres's integer parameter would overflow)
            return tx.run(self.sql.steps.fork, (row.workflow_id, source_id, min(start_step, MAX_FUNCTION_ID + 1)))

        copied = self.write(unit)
        if row.status == Status.ENQUEUED:
            self.hint(Hint.QUEUE, row.queue_name or "", "")
        return copied

    def workflow_delete(self, workflow_id: str, *, with_children: bool) -> list[str]:
        """Delete a workflow with its steps, messages, events and streams, and optionally its
        descendants. Returns the deleted ids (empty: no such workflow)."""

        def unit(tx: Tx) -> list[str]:
            children: list[str] = []
            if with_children:
                children = [str(r[0]) for r in tx.all(_TREE + "SELECT workflow_id FROM tree", (workflow_id,))]
            if tx.run("DELETE FROM workflow_status WHERE workflow_id = ?", (workflow_id,)) == 0:
                return []
            for ident in children:
                tx.run("DELETE FROM workflow_status WHERE workflow_id = ?", (ident,))
            deleted = [workflow_id, *children]
            self._delete_owned(tx, deleted)
            return deleted

        deleted = self.write(unit)
        self._sweep_owned(deleted)
        for ident in deleted:
            self.hint(Hint.DONE, ident)
        return deleted

    def workflow_set_attributes(self, workflow_id: str, attributes: str | None, *, merge: bool) -> bool:
        """Replace a workflow's attributes (a JSON object's text; None clears them), or with
        ``merge`` add them to the ones it has (a given key replaces its old value). Its
        ``updated_at`` stays: a finished row's is its finish time. False: no such workflow."""
        lock = " FOR UPDATE" if self.sql.name == "postgres" else ""  # SQLite: the write lock is held

        def unit(tx: Tx) -> bool:
            row = tx.one(f"SELECT attributes FROM workflow_status WHERE workflow_id = ?{lock}", (workflow_id,))
            if row is None:
                return False
            value = attributes
            if merge and row[0] is not None and attributes is not None:
                merged = json.loads(row[0])
                merged.update(json.loads(attributes))
                value = json.dumps(merged, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
            elif merge and attributes is None:
                return True  # nothing to add
            tx.run("UPDATE workflow_status SET attributes = ? WHERE workflow_id = ?", (value, workflow_id))
            return True

        return self.write(unit)

    def admin_wake_adopters(self) -> None:
        """Ask live processes to look for unowned PENDING work now (they also scan on a timer)."""
        wake = self.sql.wake_adopters
        if wake is not None:
            self.read(lambda tx: tx.one(wake))

    # -- schema -------------------------------------------------------------------------------
    def schema_version(self) -> int:
        """The installed schema version; 0 when Transact's tables do not exist yet."""
        probe = self.sql.schema_probe

        def unit(tx: Tx) -> int:
            if tx.one(probe) is None:
                return 0
            row = tx.one("SELECT COALESCE(MAX(version), 0) FROM schema_version")
            return int(row[0]) if row else 0

        return self.read(unit)

    # -- synthetic rows (benchmarks) ----------------------------------------------------------
    def admin_insert_synthetic(
        self,
        *,
        count: int,
        id_prefix: str,
        names: Sequence[str],
        statuses: Sequence[str],
        now: int,
    ) -> None:
        """Insert ``count`` minimal workflow rows in one statement, 1 ms apart, ending at ``now``;
        row n gets ``names[n mod len]`` and ``statuses[n mod len]``. Then refresh planner statistics."""
        series = self.sql.number_series

        def pick(values: Sequence[str]) -> tuple[str, list[Any]]:
            # n mod k written as n - (n / k) * k: a literal percent sign is not allowed in our SQL.
            cases = " ".join(f"WHEN {i} THEN CAST(? AS TEXT)" for i in range(len(values)))
            return f"CASE n - (n / {len(values)}) * {len(values)} {cases} END", list(values)

        name_sql, name_params = pick(names)
        status_sql, status_params = pick(statuses)
        sql = (
            series + "INSERT INTO workflow_status (workflow_id, status, name, created_at, updated_at) "
            f"SELECT CAST(? AS TEXT) || CAST(n AS TEXT), {status_sql}, {name_sql}, "
            "CAST(? AS BIGINT) - CAST(? AS BIGINT) + n, CAST(? AS BIGINT) - CAST(? AS BIGINT) + n FROM seq"
        )
        params = [count, id_prefix, *status_params, *name_params, now, count, now, count]
        self.write(lambda tx: tx.run(sql, params))
        self.write(lambda tx: tx.run("ANALYZE workflow_status"))
