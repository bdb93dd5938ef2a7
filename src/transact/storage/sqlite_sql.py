"""SQLite's statements: the fields of ``DialectSql`` that SQLite spells its own way.

Steps are keyed by one integer, ``(workflow seq << STEP_KEY_BITS) + function_id`` (migration 0010):
one b-tree per step write instead of two. The workflow_id and function_id columns are still
there, so every read also compares workflow_id (a row of another workflow in the range is never
returned). SQLite has one writer at a time, so it needs no row locks, no advisory locks and no
group commit. Must not import the engine or the facade.
"""

from __future__ import annotations

import json

from transact.storage.dialect import DialectSql, StepStatements
from transact.storage.rows import MAX_FUNCTION_ID, STEP_COLUMNS

STEP_KEY_BITS = MAX_FUNCTION_ID.bit_length()  # function id in the low bits, the workflow's seq above

_O_STEP_COLUMNS = ", ".join(f"o.{c.strip()}" for c in STEP_COLUMNS.split(","))
_RANGE = f"o.step_key >= (w.seq << {STEP_KEY_BITS}) AND o.step_key < ((w.seq + 1) << {STEP_KEY_BITS})"

STEPS = StepStatements(
    # The fence's probe of the workflow row also yields its seq: the key costs nothing more.
    # ?1 must equal ?9 (a step belongs to the workflow it is fenced on).
    record=(
        f"INSERT INTO operation_outputs (step_key, {STEP_COLUMNS}) "
        f"SELECT (w.seq << {STEP_KEY_BITS}) + ?2, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8 FROM workflow_status w "
        "WHERE w.workflow_id = ?9 AND w.status = 'PENDING' AND w.executor_id = ?10 AND ?1 = ?9 "
        "ON CONFLICT DO NOTHING"
    ),
    record_cancelled=(
        f"INSERT INTO operation_outputs (step_key, {STEP_COLUMNS}) "
        f"SELECT (w.seq << {STEP_KEY_BITS}) + ?2, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8 FROM workflow_status w "
        "WHERE w.workflow_id = ?9 AND w.status = 'CANCELLED' AND w.executor_id = ?10 AND ?1 = ?9 "
        "ON CONFLICT DO NOTHING"
    ),
    record_set=None,
    select_one=(
        f"SELECT {STEP_COLUMNS} FROM operation_outputs WHERE step_key = "
        f"(SELECT (seq << {STEP_KEY_BITS}) + ?2 FROM workflow_status WHERE workflow_id = ?1) AND workflow_id = ?1"
    ),
    of_workflows=(
        f"SELECT {_O_STEP_COLUMNS} FROM workflow_status w JOIN operation_outputs o ON {_RANGE} "
        "AND o.workflow_id = w.workflow_id WHERE w.workflow_id{match}"
    ),
    fork=(
        f"INSERT INTO operation_outputs (step_key, {STEP_COLUMNS}) "
        f"SELECT (n.seq << {STEP_KEY_BITS}) + o.function_id, n.workflow_id, o.function_id, o.function_name, "
        "o.output, o.error, o.child_workflow_id, o.started_at, o.completed_at "
        "FROM workflow_status n, workflow_status w, operation_outputs o "
        f"WHERE n.workflow_id = ?1 AND w.workflow_id = ?2 AND o.step_key >= (w.seq << {STEP_KEY_BITS}) "
        f"AND o.step_key < (w.seq << {STEP_KEY_BITS}) + ?3"
    ),
    delete_from=(
        f"DELETE FROM operation_outputs WHERE step_key >= (SELECT (seq << {STEP_KEY_BITS}) + ?2 FROM workflow_status "
        f"WHERE workflow_id = ?1) AND step_key < (SELECT (seq + 1) << {STEP_KEY_BITS} FROM workflow_status "
        "WHERE workflow_id = ?1)"
    ),
)

SQL = DialectSql(
    name="sqlite",
    pushes_wakeups=False,
    steps=STEPS,
    insert_workflow_set=None,
    finish_set=None,
    claim_row_lock="",
    claim_lock=None,
    offset_alone=" LIMIT -1",  # SQLite accepts OFFSET only after a LIMIT
    explain="EXPLAIN QUERY PLAN ",
    wake_adopters=None,
    schema_probe="SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'",
    number_series="WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < ?) ",
    # Planner statistics (sqlite_stats.py) belong to the file, not to the data moved between databases.
    catalog_tables="SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT IN ('sqlite_stat1', 'sqlite_stat4')",
    catalog_columns="SELECT name FROM pragma_table_info(?) ORDER BY cid",
    step_insert=(
        f"INSERT INTO operation_outputs (step_key, {STEP_COLUMNS}) "
        f"SELECT (w.seq << {STEP_KEY_BITS}) + ?2, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8 FROM workflow_status w "
        "WHERE w.workflow_id = ?1 ON CONFLICT DO NOTHING"
    ),
    advance_serial=None,  # AUTOINCREMENT records explicit ids in sqlite_sequence itself
    ids_match=" IN (SELECT value FROM json_each(?))",
    ids_param=json.dumps,
    # A trigger deletes a workflow's step range with its row (migration 0010), the foreign keys'
    # cascades its messages, events and streams. Under SQLite's single writer an insert's
    # existence check and the insert are one statement: it commits before the delete or finds no row.
    owned_deletes=(),
    owned_sweeps=(),
)
