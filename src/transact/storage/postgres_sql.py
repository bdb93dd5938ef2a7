"""Postgres's statements: the fields of ``DialectSql`` that Postgres spells its own way, and the
set forms that group commit sends (``SetForm``: N concurrent single-row writes as one statement).

Steps are keyed by (workflow_id, function_id) and have no foreign key to their workflow (migration
0008), so a delete removes them itself. Must not import the engine or the facade.
"""

from __future__ import annotations

from collections.abc import Sequence

from transact.storage import retention_sql
from transact.storage.dialect import DialectSql, SetForm, StepStatements
from transact.storage.rows import STEP_COLUMNS, WORKFLOW_COLUMN_COUNT, WORKFLOW_COLUMNS

# The set form of workflows._INSERT_WORKFLOW, in its own group-commit lane: concurrent starts share
# one statement and one commit, and a lone start never waits behind a batch of checkpoints.
_WORKFLOW_TYPES = (
    "",
    "",
    "",
    "",
    "",
    "",
    "",
    "",
    "integer",
    "bytea",
    "bytea",
    "bytea",
    "",
    "",
    "integer",
    "",
    "",
    "bigint",
    "bigint",
    "bigint",
    "bigint",
    "bigint",
    "bigint",
    "",
    "",
    "",
    "",
    "jsonb",
    "",
)
INSERT_WORKFLOWS = SetForm(
    sql=(
        f"INSERT INTO workflow_status ({WORKFLOW_COLUMNS}) SELECT "
        + ", ".join(
            f"decode(e->>{i}, 'hex')" if t == "bytea" else f"(e->>{i})::{t}" if t else f"e->>{i}"
            for i, t in enumerate(_WORKFLOW_TYPES)
        )
        + " FROM jsonb_array_elements(?::jsonb) AS e ON CONFLICT (workflow_id) DO NOTHING RETURNING workflow_id AS k0"
    ),
    columns=tuple(range(WORKFLOW_COLUMN_COUNT)),
    key=(0,),
    blobs=(9, 10, 11),
    lane="starts",
)

# The fence: a step outcome is written only while the workflow is PENDING and owned by the writer.
RECORD_STEP = (
    f"INSERT INTO operation_outputs ({STEP_COLUMNS}) "
    "SELECT ?, ?, ?, ?, ?, ?, ?, ? WHERE EXISTS ("
    "SELECT 1 FROM workflow_status WHERE workflow_id = ? AND status = 'PENDING' AND executor_id = ?) "
    "ON CONFLICT (workflow_id, function_id) DO NOTHING"
)
# The set form of RECORD_STEP: N checkpoints in one statement, same fence (group commit).
RECORD_STEPS = SetForm(
    # The fence is a scalar subquery on purpose: the planner runs it per row as a primary-key
    # probe, where an EXISTS could become a hash join over every PENDING workflow.
    sql=(
        f"INSERT INTO operation_outputs ({STEP_COLUMNS}) "
        "SELECT e->>0, (e->>1)::integer, e->>2, decode(e->>3, 'hex'), decode(e->>4, 'hex'), e->>5, "
        "(e->>6)::bigint, (e->>7)::bigint FROM jsonb_array_elements(?::jsonb) AS e "
        "WHERE (SELECT w.executor_id FROM workflow_status w "
        "WHERE w.workflow_id = e->>0 AND w.status = 'PENDING') = e->>8 "
        "ON CONFLICT (workflow_id, function_id) DO NOTHING RETURNING workflow_id AS k0, function_id AS k1"
    ),
    columns=(0, 1, 2, 3, 4, 5, 6, 7, 9),
    key=(0, 1),
    blobs=(3, 4),
)

# The set form of workflows._FINISH.
FINISH_MANY = SetForm(
    # A join, measured cheaper here than forcing primary-key probes (= ANY of the ids): a batch
    # finishes workflows that are PENDING, so the planner's way in through the PENDING index is small.
    sql=(
        "UPDATE workflow_status AS w SET status = v.e->>0, output = decode(v.e->>1, 'hex'), "
        "error = decode(v.e->>2, 'hex'), updated_at = (v.e->>3)::bigint "
        "FROM jsonb_array_elements(?::jsonb) AS v(e) "
        "WHERE w.workflow_id = v.e->>4 AND w.status = 'PENDING' AND w.executor_id = v.e->>5 "
        "RETURNING w.workflow_id AS k0"
    ),
    columns=(0, 1, 2, 3, 4, 5),
    key=(4,),
    blobs=(1, 2),
)

STEPS = StepStatements(
    record=RECORD_STEP,
    record_cancelled=RECORD_STEP.replace("status = 'PENDING'", "status = 'CANCELLED'"),
    record_set=RECORD_STEPS,
    select_one=f"SELECT {STEP_COLUMNS} FROM operation_outputs WHERE workflow_id = ? AND function_id = ?",
    of_workflows=f"SELECT {STEP_COLUMNS} FROM operation_outputs WHERE workflow_id{{match}}",
    fork=(
        f"INSERT INTO operation_outputs ({STEP_COLUMNS}) "
        "SELECT ?, function_id, function_name, output, error, child_workflow_id, started_at, completed_at "
        "FROM operation_outputs WHERE workflow_id = ? AND function_id < ?"
    ),
    delete_from="DELETE FROM operation_outputs WHERE workflow_id = ? AND function_id >= ?",
)


# What a workflow owns has no foreign key to it (migrations 0008, 0023): a key's cascade runs one
# trigger query per deleted workflow and table, a third of a bulk delete's server time, and its
# check locks the workflow row on every insert. Existence is checked where the rows are written
# (the checkpoint's fence, send's EXISTS); a delete names each table, set-wise, in one statement
# (one round trip), after the workflow rows (steps first could deadlock with a message take). The
# steps table comes last: its list is the last placeholder, which a sweep may narrow.
_OWNED = (  # (table, its workflow id column); the steps table last
    ("notifications", "destination_id"),
    ("workflow_events", "workflow_id"),
    ("streams", "workflow_id"),
    ("operation_outputs", "workflow_id"),
)


def _rows_of(table: str, column: str, ids: str, *, orphans_only: bool) -> str:
    guard = f" AND NOT EXISTS (SELECT 1 FROM workflow_status w WHERE w.workflow_id = {table}.{column})"
    return f"DELETE FROM {table} WHERE {column} = ANY({ids}){guard if orphans_only else ''}"


def _owned_delete(orphans_only: bool) -> str:
    *others, steps = (_rows_of(t, c, "?::text[]", orphans_only=orphans_only) for t, c in _OWNED)
    return "WITH " + ", ".join(f"o{n} AS ({d})" for n, d in enumerate(others)) + f" {steps}"


OWNED_DELETES = (_owned_delete(orphans_only=False),)
# After the commit, an id may already belong to a new workflow (ids are reusable once deleted):
# the sweep takes only rows whose workflow does not exist.
OWNED_SWEEPS = (_owned_delete(orphans_only=True),)


def _retention_batch() -> str:
    """A garbage collection's batch as one statement: sweep an earlier batch's late rows, take the
    collectors' turn, pick the candidates, delete those still finished and without a running
    child, then what they own. Each id list reaches the next statement as an array
    (``ANY(ARRAY(...))``: index probes whatever the planner guesses of its length) in the collation
    of the column it meets (workflow_status.workflow_id is "C", the others the database's: a
    mismatch loses the index). Each owned delete reads the workflow delete's result, so the
    workflow rows go first (steps first could deadlock with a message take)."""
    finished = retention_sql.FINISHED_STATUSES
    # The turn, tested once before the candidates are read. The statement's snapshot is older than
    # the lock, so a candidate may have changed while this one waited: the delete re-tests only its
    # own conditions on the row's newest version. A row deleted meanwhile is skipped (and what it
    # owned is not touched); one that ran again and finished again is newer than every candidate
    # (its updated_at moved), which the delete's bound on updated_at catches.
    candidates = retention_sql.candidates("(SELECT pg_advisory_xact_lock(?) IS NOT NULL)")
    sweeps = [f"s{n} AS ({_rows_of(t, c, '?::text[]', orphans_only=True)})" for n, (t, c) in enumerate(_OWNED)]
    busy = (
        'ARRAY(SELECT c.parent_workflow_id COLLATE "C" FROM workflow_status c WHERE c.parent_workflow_id '
        f'= ANY(ARRAY(SELECT workflow_id COLLATE "default" FROM found)) AND c.status NOT IN {finished})'
    )
    gone = (
        "gone AS (DELETE FROM workflow_status AS w WHERE w.workflow_id = ANY(ARRAY(SELECT workflow_id FROM found)) "
        f"AND w.status IN {finished} AND w.updated_at <= (SELECT max(updated_at) FROM found) "
        f"AND w.workflow_id <> ALL({busy}) "
        f"RETURNING w.workflow_id, {retention_sql.UNSETTLED} AS unsettled)"
    )
    gone_ids = 'ARRAY(SELECT workflow_id COLLATE "default" FROM gone)'
    owned = [f"d{n} AS ({_rows_of(t, c, gone_ids, orphans_only=False)})" for n, (t, c) in enumerate(_OWNED)]
    return (
        "WITH " + ", ".join([*sweeps, f"found AS MATERIALIZED ({candidates})", gone, *owned]) + " "
        "SELECT f.updated_at, f.workflow_id, g.unsettled FROM found f LEFT JOIN gone g ON g.workflow_id = f.workflow_id "
        "ORDER BY f.updated_at, f.workflow_id"
    )


def text_array(values: Sequence[str]) -> str:
    """A text[] literal holding ``values``, every element quoted (so commas, braces, spaces and
    the word NULL stay data): building it is a join, where psycopg's list adapter is a Python loop."""
    body = '","'.join(values)
    if "\\" in body or body.count('"') != 2 * (len(values) - 1):  # an id holds a quote or backslash
        body = '","'.join(v.replace("\\", "\\\\").replace('"', '\\"') for v in values)
    return '{"' + body + '"}' if values else "{}"


SQL = DialectSql(
    name="postgres",
    pushes_wakeups=True,
    steps=STEPS,
    insert_workflow_set=INSERT_WORKFLOWS,
    finish_set=FINISH_MANY,
    claim_row_lock=" FOR UPDATE SKIP LOCKED",
    claim_lock="SELECT pg_advisory_xact_lock(?)",
    offset_alone="",
    explain="EXPLAIN ",
    wake_adopters="SELECT pg_notify('transact', 'executor||')",
    schema_probe=(
        "SELECT 1 FROM information_schema.tables WHERE table_schema = current_schema() "
        "AND table_name = 'schema_version'"
    ),
    number_series="WITH seq(n) AS (SELECT generate_series(1, CAST(? AS BIGINT))) ",
    catalog_tables=(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() "
        "AND table_type = 'BASE TABLE'"
    ),
    catalog_columns=(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
        "AND table_name = ? ORDER BY ordinal_position"
    ),
    step_insert=f"INSERT INTO operation_outputs ({STEP_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
    advance_serial=(
        "SELECT setval(pg_get_serial_sequence('{table}', '{column}'), m) "
        "FROM (SELECT MAX({column}) AS m FROM {table}) AS s WHERE m IS NOT NULL"
    ),
    # CASE: a collection that does not give way takes no lock of its own (only each batch's turn).
    collector_session=(
        "SELECT CASE WHEN ? THEN pg_try_advisory_lock(?) ELSE true END, "
        "set_config('synchronous_commit', 'off', false), set_config('plan_cache_mode', 'force_generic_plan', false)"
    ),
    retention_batch=_retention_batch(),
    ids_match=" = ANY(?::text[])",
    ids_param=text_array,
    owned_deletes=OWNED_DELETES,
    owned_sweeps=OWNED_SWEEPS,
)
