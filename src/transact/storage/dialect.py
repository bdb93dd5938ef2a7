"""The shape of what differs between the databases: one ``DialectSql`` per driver.

The concern mixins (workflows.py, steps.py, queues.py, ...) hold the SQL that is the same on both
databases. Every statement or fragment that is not lives in ``sqlite_sql.py`` or ``postgres_sql.py``
as a field of that module's ``SQL``; a driver class supplies its own as ``sql``, and the mixins read
``self.sql.<field>``. A field that is ``None`` names work that database does not need (the comment
on the field says why), so no shared method ever asks which database it is on.

Must not import the engine or the facade.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

ONE_ID = " = ?"  # a ``{match}`` for a single workflow id (see StepStatements.of_workflows)


@dataclass(frozen=True, slots=True, eq=False)  # module constants: identity is equality (cheap hash)
class SetForm:
    """The set form of a single-row write: one statement that writes many rows given as one JSON
    array of rows (its one ``?``; bytes hex-encoded, the SQL decodes them) and returns the key of
    every row it wrote. Group commit sends N concurrent calls of the row form as one execution of this
    (Postgres) instead of N statements; JSON because encoding it is one C call on the client.

    ``columns``: the row form's parameter positions, in the order of each JSON row's items;
    ``key``: the positions whose values make up a row's key; the set form's RETURNING yields
    them as ``k0, k1, ...`` (so several forms can share one statement).
    """

    sql: str
    columns: tuple[int, ...]
    key: tuple[int, ...]
    blobs: tuple[int, ...] = ()  # positions that may hold bytes (large ones go alone, as binary)
    lane: str = "checkpoints"  # forms in one lane share batches; lanes commit independently


@dataclass(frozen=True, slots=True)
class StepStatements:
    """The statements that find or write a workflow's steps. Postgres keys steps by
    (workflow_id, function_id); SQLite by one integer, (workflow seq << 28) + function id (its
    migration 0010), so its statements go through the workflow row's seq."""

    record: str  # fenced insert of one checkpoint; parameters: steps.fenced_step_params
    # ``record`` fenced on CANCELLED instead of PENDING (same parameters, same owner): the outcome
    # of a step that finished while its workflow was being cancelled, so a resume does not run it again.
    record_cancelled: str
    record_set: SetForm | None  # ``record`` for many rows at once (None: no group commit)
    select_one: str  # (workflow_id, function_id)
    # every step of some workflows, any order: format ``{match}`` with ``ONE_ID`` (one workflow id
    # parameter) or the dialect's ``ids_match`` (one ``ids_param`` list of them)
    of_workflows: str
    fork: str  # (new workflow id, source id, copy function ids below this)
    delete_from: str  # (workflow_id, function id): delete its steps at that position and after (rewind)


@dataclass(frozen=True, slots=True)
class DialectSql:
    """Everything one database spells its own way. Field names are the same for every driver."""

    name: str  # equals the driver's ``dialect`` and its migrations folder
    # Other processes' commits arrive as specific hints (Postgres NOTIFY), rather than only as
    # the catch-all "*" a poller raises (SQLite): waiters may poll more slowly.
    pushes_wakeups: bool
    steps: StepStatements
    insert_workflow_set: SetForm | None  # set form of workflows._INSERT_WORKFLOW (None: no group commit)
    finish_set: SetForm | None  # set form of workflows._FINISH (None: no group commit)
    # Appended to the claim's pick of candidate rows, so concurrent claimers take disjoint rows.
    claim_row_lock: str
    # Taken first inside a claim under global limits (parameter: queues.lock_key; a collector's
    # batch takes the same kind of lock, in ``retention_batch``). None: the write transaction
    # itself already serializes them (SQLite's BEGIN IMMEDIATE).
    claim_lock: str | None
    offset_alone: str  # written before OFFSET when the list query has no LIMIT
    explain: str  # prefix that turns a query into its plan
    # Asks every live process to look for unowned work now. None: other processes notice any
    # commit already (SQLite's data_version poll), so there is nothing to send.
    wake_adopters: str | None
    schema_probe: str  # one row when the schema_version table exists
    number_series: str  # WITH clause: ``seq(n)`` holding 1..? (one parameter)
    # Export, import and copy (transfer.py): the system schema's table names; one table's column
    # names in order (parameter: the table); an unfenced, conflict-ignoring insert of one step
    # (parameters in STEP_COLUMNS order); a statement moving the id sequence of ``{table}.{column}``
    # past the largest id present (None: the database tracks explicit ids itself).
    catalog_tables: str
    catalog_columns: str
    step_insert: str
    advance_serial: str | None
    # A list of workflow ids as one statement parameter: ``ids_param(ids)`` is the value, and
    # ``column`` + ``ids_match`` tests a column against it. One parameter, whatever the list's
    # length: a statement with hundreds of placeholders costs the client more CPU to send than the
    # server spends running it (psycopg re-parses any query with more than 50 of them).
    ids_match: str
    ids_param: Callable[[Sequence[str]], str]
    # Deletes of the listed workflows' steps, messages, events and streams (each ``?`` takes an
    # ``ids_param``, the last one the steps table's) where no cascade does it: run after the
    # workflow rows' delete, and once more after it commits (a write whose existence check read the
    # row just before the delete committed may land after it). Empty: the database's cascades and
    # triggers delete them with the row.
    owned_deletes: tuple[str, ...]
    # The same after the commit, taking only rows whose workflow does not exist (by then the id may
    # belong to a new workflow). Empty exactly when ``owned_deletes`` is. In both, every placeholder
    # takes the ids (``ids_param``) and the last one is the steps table's, which a sweep may narrow.
    owned_sweeps: tuple[str, ...]
    # The first statement on a collection's own connection (autocommit; one per collection, for
    # these settings stay with the session and the pool's connections are shared): its commits
    # need not wait for the log to reach disk (losing one in a crash only means redoing it), its
    # prepared batch keeps one generic plan (an id list as parameter otherwise makes the server
    # re-plan many calls, and planning costs more than running), and a collection that gives way
    # to another collecting process takes the fleet's collector lock, held until the connection
    # closes. Parameters: whether to give way, that lock's key. One row, true when the collection
    # may go on. None exactly when ``retention_batch`` is: each batch is a write transaction, which
    # serializes collectors by itself (SQLite).
    collector_session: str | None = None
    # A collection's whole batch in one autocommit statement (one round trip where the statements
    # of retention.py take five and a transaction). Parameters: an earlier batch's ids to sweep for
    # each table ``owned_sweeps`` names, in its order (the last, the steps table's, may be
    # narrowed); the collectors' turn lock key (taken before the candidates are read, so concurrent
    # collections delete disjoint rows and never deadlock); the seven of ``retention_sql.SELECT``;
    # the settle bound of ``retention_sql.UNSETTLED``. Rows: each candidate in completion order
    # (updated_at, workflow_id) and, when deleted, its UNSETTLED flag (else NULL). None: the batch
    # runs statement by statement in a write transaction.
    retention_batch: str | None = None
