"""Workflow rows: idempotent start, finish, cancel, and the reads and writes of recovery.

SQL shared by both drivers (``?`` placeholders; the Postgres driver converts them); the set forms
group commit uses come from the driver's ``sql`` (postgres_sql.py). Must not import the engine or
the facade.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import fields

from transact._lib.states import Hint, Status
from transact.storage import postgres_sql, sqlite_sql
from transact.storage._base import Tx
from transact.storage.fence import FencedSql, fenced_step_params
from transact.storage.rows import TERMINAL_STATUSES, WORKFLOW_COLUMN_COUNT, WORKFLOW_COLUMNS, StepRow, WorkflowRow

_INSERT_WORKFLOW = (
    f"INSERT INTO workflow_status ({WORKFLOW_COLUMNS}) VALUES ({', '.join('?' * WORKFLOW_COLUMN_COUNT)}) "
    "ON CONFLICT (workflow_id) DO NOTHING"
)
_SELECT_WORKFLOW = f"SELECT {WORKFLOW_COLUMNS} FROM workflow_status WHERE workflow_id = ?"

# Fenced like a step checkpoint: the outcome is written only while PENDING and owned by the writer.
_FINISH = (
    "UPDATE workflow_status SET status = ?, output = ?, error = ?, updated_at = ? "
    "WHERE workflow_id = ? AND status = 'PENDING' AND executor_id = ?"
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

_CANCEL_ONE = (
    "UPDATE workflow_status SET status = 'CANCELLED', updated_at = ?"
    f" WHERE workflow_id = ? AND status NOT IN ({_TERMINAL_SQL}) RETURNING workflow_id"
)

# Rows of one application, or of none (written before ownership, or by an unnamed client).
OWNED = " AND (application_name = ? OR application_name IS NULL)"

# Bound once: the start and finish paths read these per call.
_DONE, _QUEUE = Hint.DONE, Hint.QUEUE
_ENQUEUED, _DELAYED = Status.ENQUEUED, Status.DELAYED

# dataclasses.astuple deep-copies recursively; these read the fields in column order, cheaply.
workflow_values = operator.attrgetter(*(f.name for f in fields(WorkflowRow)))


def to_workflow(row: Sequence[object]) -> WorkflowRow:
    return WorkflowRow(*row)  # type: ignore[arg-type]


class WorkflowSql(FencedSql):
    def workflow_insert(self, row: WorkflowRow) -> tuple[WorkflowRow, bool]:
        """Create the workflow unless its id exists. Returns (stored row, inserted).

        Round trips: 1 (2 when the id already exists)."""
        for _ in range(3):
            if self.write_grouped(_INSERT_WORKFLOW, workflow_values(row), self.sql.insert_workflow_set) == 1:
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
            recorded = tx.run(self.sql.steps.record, fenced_step_params(step, parent_id, executor_id))
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
        if row.status == _ENQUEUED:
            self.hint(_QUEUE, row.queue_name or "", "")
        elif row.status == _DELAYED:
            self.hint(_QUEUE, row.queue_name or "", "delayed")

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
            written = self.write_grouped(
                _FINISH, (status, output, error, now, workflow_id, executor_id), self.sql.finish_set
            )
        except BaseException:
            self.note_own_finish(workflow_id, False)
            raise
        if written == 1:
            self.hint(_DONE, workflow_id)
            return
        self.note_own_finish(workflow_id, False)

        # Why the write missed (asked only then); a retried write whose first attempt committed is fine.
        self.read(lambda tx: self._explain_fence_miss(tx, workflow_id, executor_id, written_status=status))
        self.hint(_DONE, workflow_id)

    def workflow_set_status(self, workflow_id: str, status: str, now: int) -> None:
        self.write(
            lambda tx: tx.run(
                "UPDATE workflow_status SET status = ?, updated_at = ? WHERE workflow_id = ?",
                (status, now, workflow_id),
            ),
            single=True,
        )
        self.hint(_DONE, workflow_id)

    def workflow_cancel(self, workflow_id: str, now: int, *, with_children: bool = True) -> list[str]:
        if with_children:
            rows = self.write(lambda tx: tx.all(_CANCEL_TREE, (workflow_id, now)), single=True)
        else:
            rows = self.write(lambda tx: tx.all(_CANCEL_ONE, (now, workflow_id)), single=True)
        ids = [str(r[0]) for r in rows]
        for ident in ids:
            self.hint(Hint.DONE, ident)
            self.hint(Hint.CANCEL, ident)
        return ids

    def workflows_cancelled(self, workflow_ids: Sequence[str]) -> list[str]:
        """Which of these workflows are CANCELLED (a running process checks whether someone else
        cancelled its work). The ids go as one list parameter: a process may run more workflows
        than a statement may have placeholders."""
        if not workflow_ids:
            return []
        match, param = self._ids_match(workflow_ids)
        sql = f"SELECT workflow_id FROM workflow_status WHERE status = 'CANCELLED' AND workflow_id{match}"
        rows = self.read(lambda tx: tx.all(sql, (param,)))
        return [str(r[0]) for r in rows]

    # -- recovery -----------------------------------------------------------------------------
    def workflows_pending(
        self, executor_ids: Sequence[str], *, application_name: str | None = None
    ) -> list[WorkflowRow]:
        """PENDING workflows owned by the given executors (recovery and adoption candidates);
        with ``application_name``, only that application's and unowned ones."""
        if not executor_ids:
            return []
        marks = ", ".join("?" * len(executor_ids))
        owned, owner = (OWNED, (application_name,)) if application_name is not None else ("", ())
        rows = self.read(
            lambda tx: tx.all(
                f"SELECT {WORKFLOW_COLUMNS} FROM workflow_status WHERE status = 'PENDING' "
                f"AND executor_id IN ({marks}){owned} ORDER BY created_at",
                (*executor_ids, *owner),
            )
        )
        return [to_workflow(r) for r in rows]

    def workflows_orphaned(
        self,
        live_executor_ids: Sequence[str],
        limit: int,
        *,
        names: Sequence[str] | None = None,
        application_name: str | None = None,
    ) -> list[WorkflowRow]:
        """PENDING workflows whose owner is not among the live executors (or has no owner);
        with ``names``, only workflows of those names (the ones the caller can run); with
        ``application_name``, only that application's and unowned ones."""
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
        if application_name is not None:
            sql += OWNED
            params = (*params, application_name)
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
        match, ids = self._ids_match(workflow_ids)
        sql = (
            "UPDATE workflow_status SET"
            " executor_id = CASE WHEN queue_name IS NULL THEN ? ELSE NULL END,"
            " status = CASE WHEN queue_name IS NULL THEN 'PENDING' ELSE 'ENQUEUED' END,"
            " started_at = CASE WHEN queue_name IS NULL THEN started_at ELSE NULL END,"
            " recovery_attempts = recovery_attempts + 1, updated_at = ?"
            f" WHERE status = 'PENDING' AND {owner} AND workflow_id{match}"
            f" RETURNING {WORKFLOW_COLUMNS}"
        )
        owners = (from_executor,) if from_executor is not None else ()
        params = (to_executor, now, *owners, ids)
        adopted = [to_workflow(r) for r in self.write(lambda tx: tx.all(sql, params), single=True)]
        for queue in {r.queue_name for r in adopted if r.status == Status.ENQUEUED}:
            self.hint(Hint.QUEUE, queue or "", "")
        return adopted

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


# Each database's step statements by dialect name, for probes that run them raw (bench/probes.py).
STEP_SQL = {sql.name: sql.steps for sql in (sqlite_sql.SQL, postgres_sql.SQL)}
