"""Workflow and step rows: idempotent start, fenced checkpoints, finish, cancel, recovery reads.

Shared SQL for both drivers (``?`` placeholders; the Postgres driver converts them), but for
the statements that find steps by workflow (``STEP_SQL``: SQLite keys steps by one integer since
its migration 0010). Must not import the engine or the facade.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass, fields

from transact.storage._base import DriverBase, SetForm, Tx
from transact.storage.errors import OwnershipLost, WorkflowNotPending
from transact.storage.rows import (
    MAX_FUNCTION_ID,
    STEP_COLUMNS,
    TERMINAL_STATUSES,
    WORKFLOW_COLUMNS,
    StepRow,
    WorkflowRow,
)

_INSERT_WORKFLOW = (
    f"INSERT INTO workflow_status ({WORKFLOW_COLUMNS}) VALUES ({', '.join('?' * 23)}) "
    "ON CONFLICT (workflow_id) DO NOTHING"
)
# The set form of _INSERT_WORKFLOW, in its own group-commit lane: concurrent starts share one
# statement and one commit, and a lone start never waits behind a batch of checkpoints.
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
)
_INSERT_WORKFLOWS = SetForm(
    sql=(
        f"INSERT INTO workflow_status ({WORKFLOW_COLUMNS}) SELECT "
        + ", ".join(
            f"decode(e->>{i}, 'hex')" if t == "bytea" else f"(e->>{i})::{t}" if t else f"e->>{i}"
            for i, t in enumerate(_WORKFLOW_TYPES)
        )
        + " FROM jsonb_array_elements(?::jsonb) AS e ON CONFLICT (workflow_id) DO NOTHING RETURNING workflow_id AS k0"
    ),
    columns=tuple(range(23)),
    key=(0,),
    blobs=(9, 10, 11),
    lane="starts",
)
_SELECT_WORKFLOW = f"SELECT {WORKFLOW_COLUMNS} FROM workflow_status WHERE workflow_id = ?"

# The fence: a step outcome is written only while the workflow is PENDING and owned by the writer.
_RECORD_STEP = (
    f"INSERT INTO operation_outputs ({STEP_COLUMNS}) "
    "SELECT ?, ?, ?, ?, ?, ?, ?, ? WHERE EXISTS ("
    "SELECT 1 FROM workflow_status WHERE workflow_id = ? AND status = 'PENDING' AND executor_id = ?) "
    "ON CONFLICT (workflow_id, function_id) DO NOTHING"
)
# The set form of _RECORD_STEP: N checkpoints in one statement, same fence (group commit).
_RECORD_STEPS = SetForm(
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

STEP_KEY_BITS = MAX_FUNCTION_ID.bit_length()  # SQLite step keys: function id in the low bits, seq above


@dataclass(frozen=True)
class StepSql:
    """The statements that find or write a workflow's steps, per dialect. Postgres keys steps by
    (workflow_id, function_id); SQLite by one integer, (workflow seq << STEP_KEY_BITS) + function
    id (its migration 0010), so its statements go through the workflow row's seq."""

    record: str  # fenced insert of one checkpoint; parameters: fenced_step_params
    select_one: str  # (workflow_id, function_id)
    of_workflows: str  # every step of the workflows in ``{marks}`` (format it), any order
    fork: str  # (new workflow id, source id, copy function ids below this)
    delete_of: str | None  # (workflow_id,); None: the database deletes them with the workflow row


_O_STEP_COLUMNS = ", ".join(f"o.{c.strip()}" for c in STEP_COLUMNS.split(","))
_SQLITE_RANGE = f"o.step_key >= (w.seq << {STEP_KEY_BITS}) AND o.step_key < ((w.seq + 1) << {STEP_KEY_BITS})"
STEP_SQL = {
    "postgres": StepSql(
        record=_RECORD_STEP,
        select_one=f"SELECT {STEP_COLUMNS} FROM operation_outputs WHERE workflow_id = ? AND function_id = ?",
        of_workflows=f"SELECT {STEP_COLUMNS} FROM operation_outputs WHERE workflow_id IN ({{marks}})",
        fork=(
            f"INSERT INTO operation_outputs ({STEP_COLUMNS}) "
            "SELECT ?, function_id, function_name, output, error, child_workflow_id, started_at, completed_at "
            "FROM operation_outputs WHERE workflow_id = ? AND function_id < ?"
        ),
        delete_of="DELETE FROM operation_outputs WHERE workflow_id = ?",  # no foreign key since 0008
    ),
    "sqlite": StepSql(
        # The fence's probe of the workflow row also yields its seq: the key costs nothing more.
        # ?1 must equal ?9 (a step belongs to the workflow it is fenced on).
        record=(
            f"INSERT INTO operation_outputs (step_key, {STEP_COLUMNS}) "
            f"SELECT (w.seq << {STEP_KEY_BITS}) + ?2, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8 FROM workflow_status w "
            "WHERE w.workflow_id = ?9 AND w.status = 'PENDING' AND w.executor_id = ?10 AND ?1 = ?9 "
            "ON CONFLICT DO NOTHING"
        ),
        select_one=(
            f"SELECT {STEP_COLUMNS} FROM operation_outputs WHERE step_key = "
            f"(SELECT (seq << {STEP_KEY_BITS}) + ?2 FROM workflow_status WHERE workflow_id = ?1) AND workflow_id = ?1"
        ),
        # (workflow_id is compared too: a row of another workflow in the range is never returned)
        of_workflows=(
            f"SELECT {_O_STEP_COLUMNS} FROM workflow_status w JOIN operation_outputs o ON {_SQLITE_RANGE} "
            "AND o.workflow_id = w.workflow_id WHERE w.workflow_id IN ({marks})"
        ),
        fork=(
            f"INSERT INTO operation_outputs (step_key, {STEP_COLUMNS}) "
            f"SELECT (n.seq << {STEP_KEY_BITS}) + o.function_id, n.workflow_id, o.function_id, o.function_name, "
            "o.output, o.error, o.child_workflow_id, o.started_at, o.completed_at "
            "FROM workflow_status n, workflow_status w, operation_outputs o "
            f"WHERE n.workflow_id = ?1 AND w.workflow_id = ?2 AND o.step_key >= (w.seq << {STEP_KEY_BITS}) "
            f"AND o.step_key < (w.seq << {STEP_KEY_BITS}) + ?3"
        ),
        delete_of=None,  # a trigger deletes a workflow's step range with its row (migration 0010)
    ),
}

_FINISH = (
    "UPDATE workflow_status SET status = ?, output = ?, error = ?, updated_at = ? "
    "WHERE workflow_id = ? AND status = 'PENDING' AND executor_id = ?"
)

_FINISH_MANY = SetForm(
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

_TERMINAL_SQL = ", ".join(f"'{s}'" for s in TERMINAL_STATUSES)

_CANCEL_TREE = (
    "WITH RECURSIVE tree(workflow_id) AS ("
    " SELECT workflow_id FROM workflow_status WHERE workflow_id = ?"
    " UNION SELECT w.workflow_id FROM workflow_status w JOIN tree t ON w.parent_workflow_id = t.workflow_id)"
    " UPDATE workflow_status SET status = 'CANCELLED', updated_at = ?"
    f" WHERE workflow_id IN (SELECT workflow_id FROM tree) AND status NOT IN ({_TERMINAL_SQL})"
    " RETURNING workflow_id"
)


# dataclasses.astuple deep-copies recursively; these read the fields in column order, cheaply.
workflow_values = operator.attrgetter(*(f.name for f in fields(WorkflowRow)))


def fenced_step_params(step: StepRow, workflow_id: str, executor_id: str) -> tuple[object, ...]:
    """_RECORD_STEP's parameters: the row in column order, then the fence. Spelled out (not an
    attrgetter splat): this runs once per step."""
    return (
        step.workflow_id,
        step.function_id,
        step.function_name,
        step.output,
        step.error,
        step.child_workflow_id,
        step.started_at,
        step.completed_at,
        workflow_id,
        executor_id,
    )


def to_workflow(row: Sequence[object]) -> WorkflowRow:
    return WorkflowRow(*row)  # type: ignore[arg-type]


def to_step(row: Sequence[object]) -> StepRow:
    return StepRow(*row)  # type: ignore[arg-type]


class WorkflowSql(DriverBase):
    def workflow_insert(self, row: WorkflowRow) -> tuple[WorkflowRow, bool]:
        """Create the workflow unless its id exists. Returns (stored row, inserted).

        Round trips: 1 (2 when the id already exists)."""
        for _ in range(3):
            if self.write_grouped(_INSERT_WORKFLOW, workflow_values(row), _INSERT_WORKFLOWS) == 1:
                self._hint_queued(row)
                return row, True
            existing = self.read(lambda tx: tx.one(_SELECT_WORKFLOW, (row.workflow_id,)))
            if existing is not None:
                return to_workflow(existing), False
            # deleted between our insert and the read: insert again
        raise RuntimeError(f"workflow {row.workflow_id!r} is being created and deleted concurrently; try again")

    def child_insert(
        self, row: WorkflowRow, *, parent_id: str, function_id: int, executor_id: str, now: int
    ) -> tuple[WorkflowRow, bool]:
        """Create a child workflow and record it as the parent's step ``function_id``, atomically.

        If the parent already recorded a child at that position, the recorded child is returned."""

        def unit(tx: Tx) -> tuple[WorkflowRow, bool]:
            inserted = tx.run(_INSERT_WORKFLOW, workflow_values(row)) == 1
            step = StepRow(
                workflow_id=parent_id,
                function_id=function_id,
                function_name=row.name,
                child_workflow_id=row.workflow_id,
                started_at=now,
                completed_at=now,
            )
            recorded = tx.run(STEP_SQL[self.dialect].record, fenced_step_params(step, parent_id, executor_id))
            if recorded != 1:
                self._explain_step_miss(tx, parent_id, function_id, executor_id)
            if inserted:
                return row, True
            existing = tx.one(_SELECT_WORKFLOW, (row.workflow_id,))
            assert existing is not None
            return to_workflow(existing), False

        stored, inserted = self.write(unit)
        if inserted:
            self._hint_queued(row)
        return stored, inserted

    def _hint_queued(self, row: WorkflowRow) -> None:
        """Wake this process's dispatcher for a newly queued row (``delayed``: plan its promotion)."""
        if row.status == "ENQUEUED":
            self.hint("queue", row.queue_name or "", "")
        elif row.status == "DELAYED":
            self.hint("queue", row.queue_name or "", "delayed")

    def workflow_get(self, workflow_id: str) -> WorkflowRow | None:
        row = self.read(lambda tx: tx.one(_SELECT_WORKFLOW, (workflow_id,)))
        return to_workflow(row) if row is not None else None

    def workflow_finish(
        self,
        *,
        workflow_id: str,
        executor_id: str,
        status: str,
        output: bytes | None,
        error: bytes | None,
        now: int,
    ) -> None:
        """Record the final outcome, fenced on ownership. Round trips: 1."""

        self.note_own_finish(workflow_id, True)  # before the write: its echo may beat our return
        try:
            written = self.write_grouped(_FINISH, (status, output, error, now, workflow_id, executor_id), _FINISH_MANY)
        except BaseException:
            self.note_own_finish(workflow_id, False)
            raise
        if written == 1:
            self.hint("done", workflow_id)
            return
        self.note_own_finish(workflow_id, False)

        # Why the write missed (asked only then); a retried write whose first attempt committed is fine.
        self.read(lambda tx: self._explain_fence_miss(tx, workflow_id, executor_id, written_status=status))
        self.hint("done", workflow_id)

    def workflow_set_status(self, workflow_id: str, status: str, now: int) -> None:
        self.write(
            lambda tx: tx.run(
                "UPDATE workflow_status SET status = ?, updated_at = ? WHERE workflow_id = ?",
                (status, now, workflow_id),
            ),
            single=True,
        )
        self.hint("done", workflow_id)

    def workflow_cancel(self, workflow_id: str, now: int) -> list[str]:
        """Cancel a workflow and every unfinished descendant. Returns the ids that changed."""
        rows = self.write(lambda tx: tx.all(_CANCEL_TREE, (workflow_id, now)), single=True)
        ids = [str(r[0]) for r in rows]
        for ident in ids:
            self.hint("done", ident)
            self.hint("cancel", ident)
        return ids

    def workflows_cancelled(self, workflow_ids: Sequence[str]) -> list[str]:
        """Which of these workflows are CANCELLED (a running process checks whether someone else
        cancelled its work)."""
        if not workflow_ids:
            return []
        marks = ", ".join("?" * len(workflow_ids))
        rows = self.read(
            lambda tx: tx.all(
                f"SELECT workflow_id FROM workflow_status WHERE status = 'CANCELLED' AND workflow_id IN ({marks})",
                tuple(workflow_ids),
            )
        )
        return [str(r[0]) for r in rows]

    # -- steps --------------------------------------------------------------------------------
    def steps_load(self, workflow_id: str) -> dict[int, StepRow]:
        """Every recorded outcome of a workflow, for replay. Round trips: 1."""
        return self.steps_load_many([workflow_id])[workflow_id]

    def step_record(self, step: StepRow, *, executor_id: str) -> StepRow | None:
        """Checkpoint a step outcome, fenced on ownership and status.

        Returns None when written, or the row recorded earlier at the same position (a concurrent
        runner won; callers must use it). Round trips: 1 (why a write missed is asked only then)."""

        params = fenced_step_params(step, step.workflow_id, executor_id)
        if self.write_grouped(STEP_SQL[self.dialect].record, params, _RECORD_STEPS) == 1:
            return None
        return self.read(lambda tx: self._explain_step_miss(tx, step.workflow_id, step.function_id, executor_id))

    def _explain_step_miss(self, tx: Tx, workflow_id: str, function_id: int, executor_id: str) -> StepRow:
        existing = tx.one(STEP_SQL[self.dialect].select_one, (workflow_id, function_id))
        if existing is not None:
            return to_step(existing)
        self._explain_fence_miss(tx, workflow_id, executor_id)
        raise AssertionError("unreachable: a fence miss always raises here")

    @staticmethod
    def _explain_fence_miss(tx: Tx, workflow_id: str, executor_id: str, *, written_status: str | None = None) -> None:
        """Raise why a write fenced on (PENDING, owned by ``executor_id``) matched no row; return
        only when the row already holds ``written_status`` by this executor (our retried write)."""
        current = tx.one("SELECT status, executor_id FROM workflow_status WHERE workflow_id = ?", (workflow_id,))
        if current is None:
            raise WorkflowNotPending(workflow_id, "DELETED")
        if written_status is not None and current[0] == written_status and current[1] == executor_id:
            return
        if current[0] != "PENDING":
            raise WorkflowNotPending(workflow_id, str(current[0]))
        raise OwnershipLost(f"workflow {workflow_id!r} is owned by executor {current[1]!r} now")

    # -- recovery -----------------------------------------------------------------------------
    def workflows_pending(self, executor_ids: Sequence[str]) -> list[WorkflowRow]:
        """PENDING workflows owned by the given executors (recovery and adoption candidates)."""
        if not executor_ids:
            return []
        marks = ", ".join("?" * len(executor_ids))
        rows = self.read(
            lambda tx: tx.all(
                f"SELECT {WORKFLOW_COLUMNS} FROM workflow_status WHERE status = 'PENDING' "
                f"AND executor_id IN ({marks}) ORDER BY created_at",
                tuple(executor_ids),
            )
        )
        return [to_workflow(r) for r in rows]

    def workflows_orphaned(
        self, live_executor_ids: Sequence[str], limit: int, *, names: Sequence[str] | None = None
    ) -> list[WorkflowRow]:
        """PENDING workflows whose owner is not among the live executors (or has no owner);
        with ``names``, only workflows of those names (the ones the caller can run)."""
        sql = f"SELECT {WORKFLOW_COLUMNS} FROM workflow_status WHERE status = 'PENDING'"
        if live_executor_ids:  # (NOT IN of an empty list would be NOT IN (NULL): never true)
            marks = ", ".join("?" * len(live_executor_ids))
            sql += f" AND (executor_id IS NULL OR executor_id NOT IN ({marks}))"
        params: tuple[object, ...] = tuple(live_executor_ids)
        if names is not None:
            if not names:
                return []
            sql += f" AND name IN ({', '.join('?' * len(names))})"
            params = (*params, *names)
        sql += " ORDER BY created_at LIMIT ?"
        rows = self.read(lambda tx: tx.all(sql, (*params, limit)))
        return [to_workflow(r) for r in rows]

    def workflows_adopt(
        self, *, workflow_ids: Sequence[str], from_executor: str | None, to_executor: str, now: int
    ) -> list[WorkflowRow]:
        """``workflow_adopt`` for a batch with the same previous owner, in one statement.

        The owner condition makes it safe against a concurrent adopter: a row another process took
        first no longer matches and is not returned."""
        if not workflow_ids:
            return []
        owner = "executor_id IS NULL" if from_executor is None else "executor_id = ?"
        sql = (
            "UPDATE workflow_status SET"
            " executor_id = CASE WHEN queue_name IS NULL THEN ? ELSE NULL END,"
            " status = CASE WHEN queue_name IS NULL THEN 'PENDING' ELSE 'ENQUEUED' END,"
            " started_at = CASE WHEN queue_name IS NULL THEN started_at ELSE NULL END,"
            " recovery_attempts = recovery_attempts + 1, updated_at = ?"
            f" WHERE status = 'PENDING' AND {owner} AND workflow_id IN ({', '.join('?' * len(workflow_ids))})"
            f" RETURNING {WORKFLOW_COLUMNS}"
        )
        params = (to_executor, now, *((from_executor,) if from_executor is not None else ()), *workflow_ids)
        adopted = [to_workflow(r) for r in self.write(lambda tx: tx.all(sql, params), single=True)]
        for queue in {r.queue_name for r in adopted if r.status == "ENQUEUED"}:
            self.hint("queue", queue or "", "")
        return adopted

    def steps_load_many(self, workflow_ids: Sequence[str]) -> dict[str, dict[int, StepRow]]:
        """Recorded step outcomes of many workflows (a claimed or adopted batch). Round trips: 1."""
        if not workflow_ids:
            return {}
        marks = ", ".join("?" * len(workflow_ids))
        sql = STEP_SQL[self.dialect].of_workflows.format(marks=marks)
        out: dict[str, dict[int, StepRow]] = {wid: {} for wid in workflow_ids}
        for r in self.read(lambda tx: tx.all(sql, tuple(workflow_ids))):
            step = to_step(r)
            out[step.workflow_id][step.function_id] = step
        return out

    def workflow_adopt(
        self,
        *,
        workflow_id: str,
        from_executor: str | None,
        to_executor: str,
        now: int,
    ) -> WorkflowRow | None:
        """Take over one PENDING workflow (``workflows_adopt`` for a batch of one)."""
        taken = self.workflows_adopt(
            workflow_ids=[workflow_id], from_executor=from_executor, to_executor=to_executor, now=now
        )
        return taken[0] if taken else None

    def workflows_rerun_own(self, *, workflow_ids: Sequence[str], executor_id: str, now: int) -> list[WorkflowRow]:
        """Count a recovery attempt for workflows this executor already owns (restart with a fixed
        id), in one statement; returns the rows still PENDING and owned by ``executor_id`` (the
        others finished or changed hands meanwhile)."""
        if not workflow_ids:
            return []
        sql = (
            "UPDATE workflow_status SET recovery_attempts = recovery_attempts + 1, updated_at = ? "
            f"WHERE status = 'PENDING' AND executor_id = ? AND workflow_id IN ({', '.join('?' * len(workflow_ids))}) "
            f"RETURNING {WORKFLOW_COLUMNS}"
        )
        rows = self.write(lambda tx: tx.all(sql, (now, executor_id, *workflow_ids)), single=True)
        return [to_workflow(r) for r in rows]

    def workflows_release(self, *, executor_id: str, now: int, workflow_id: str | None = None) -> int:
        """Give up ownership of this executor's PENDING workflows (graceful shutdown), or of one of
        them (recovery then runs it again). Returns how many were released."""
        sql = (
            "UPDATE workflow_status SET executor_id = NULL, updated_at = ? WHERE status = 'PENDING' AND executor_id = ?"
        )
        params: tuple[object, ...] = (now, executor_id)
        if workflow_id is not None:
            sql += " AND workflow_id = ?"
            params = (*params, workflow_id)
        return self.write(lambda tx: tx.run(sql, params), single=True)
