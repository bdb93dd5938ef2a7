"""SQLite planner statistics for ``workflow_status``: pinned to the shape of a large history, not
measured.

Without statistics SQLite guesses about ten rows per value for every index, so for "PENDING rows
of queue q" a status index or ``ws_queue_created_idx`` ties with the partial index that holds only
the live rows, and a tie may walk the queue's whole history. Measured statistics do not fix this
reliably: an ``ANALYZE`` taken while the live partial indexes were empty leaves them without a row
(the same tie), one taken in a burst describes the burst, other connections keep the statistics
they loaded, and a bounded ``analysis_limit`` caps every estimate near its limit, which hides how
large the history indexes are. The hot statements are designed around one fact instead: live rows
(PENDING, ENQUEUED, DELAYED) are few, finished history is large. ``pin`` writes exactly that into
``sqlite_stat1`` (SQLite's documented way to fix plans), derived from each index's definition, so
an index added by a later migration gets a row too. ``migrate`` calls it on every run, after the
migrations, so an ``ANALYZE`` run by hand is replaced at the next launch; connections opened
afterwards load the pinned rows. Only this table is pinned: the others are reached through their
keys with or without statistics.

Postgres needs none of this: autovacuum keeps its statistics current, and its estimates for a
partial index come from the index's real size.

Must not import the engine or the facade.
"""

from __future__ import annotations

import re
import sqlite3

TABLE = "workflow_status"
HISTORY_ROWS = 1_000_000  # the size every non-live index is described at
LIVE_ROWS = 100  # the size of an index that holds only live rows
LIVE_PER_VALUE = 2  # live rows per value of a live index's first column (per queue, per executor)
# History rows per value of a column (a column not listed: SQLite's own guess of ten, so an index on
# a column nobody described here never looks more selective than it is).
HISTORY_PER_VALUE = {
    "status": 200_000,
    "name": 10_000,
    "queue_name": 50_000,
    "executor_id": 100_000,
    "app_version": 250_000,
    "authenticated_user": 10_000,
    "queue_partition_key": 1_000,
    "priority": 500_000,
    "parent_workflow_id": 10,
    "forked_from": 10,
    "workflow_id": 1,
    "created_at": 1,
    "updated_at": 1,
    "started_at": 1,
    "available_at": 1,
}
_UNKNOWN_PER_VALUE = 10
_LIVE = ("'PENDING'", "'ENQUEUED'", "'DELAYED'")
_FINISHED = ("'SUCCESS'", "'ERROR'", "'CANCELLED'", "'MAX_RECOVERY_ATTEMPTS_EXCEEDED'")
_WHERE = re.compile(r"\bWHERE\b")


def stat_rows(conn: sqlite3.Connection) -> list[tuple[str, str, str]]:
    """(table, index, stat) for every index of ``workflow_status``, from its definition."""
    rows = []
    for _, index, unique, _, partial in conn.execute(f"PRAGMA index_list({TABLE})").fetchall():
        columns = [str(r[2]) if r[2] is not None else "" for r in conn.execute(f"PRAGMA index_info('{index}')")]
        sql_row = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?", (index,)).fetchone()
        text = str(sql_row[0]).upper() if partial and sql_row and sql_row[0] else ""
        where = _WHERE.split(text, maxsplit=1)[-1] if _WHERE.search(text) else ""
        live = any(s in where for s in _LIVE) and not any(s in where for s in _FINISHED)
        rows.append((TABLE, str(index), " ".join(map(str, _estimates(columns, bool(unique), live)))))
    return rows


def _estimates(columns: list[str], unique: bool, live: bool) -> list[int]:
    """sqlite_stat1's numbers: the index's rows, then rows per value of its first k columns."""
    if live:
        out = [LIVE_ROWS, LIVE_PER_VALUE]
        for _ in columns[1:]:
            out.append(max(1, out[-1] // 2))
    else:
        out = [HISTORY_ROWS]
        share = 1.0  # columns taken as independent: rows per value = total x product of shares
        for column in columns:
            share *= HISTORY_PER_VALUE.get(column, _UNKNOWN_PER_VALUE) / HISTORY_ROWS
            out.append(max(1, round(HISTORY_ROWS * share)))
    if unique:
        out[-1] = 1
    return out


def pin(conn: sqlite3.Connection) -> None:
    """Replace ``workflow_status``'s rows in ``sqlite_stat1`` with the pinned ones, inside the
    caller's write transaction (a few rows: no table is read)."""
    # Analyzing the schema table creates sqlite_stat1 when missing and reads no Transact table.
    conn.execute("ANALYZE sqlite_master")
    conn.execute("DELETE FROM sqlite_stat1 WHERE tbl = ?", (TABLE,))
    conn.executemany("INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES (?, ?, ?)", stat_rows(conn))
