"""Rewind (``protocol.RewindStore``): the same workflow id re-runs from one of its steps. Must not
import the engine or the facade."""

from __future__ import annotations

from collections.abc import Sequence

from transact._lib.states import Hint, Status
from transact.storage._base import DriverBase, Tx
from transact.storage.rows import MAX_FUNCTION_ID, WORKFLOW_COLUMNS, WorkflowRow
from transact.storage.workflows import to_workflow

__all__ = ["RewindSql"]

# Parameters: executor_id (NULL), now (started_at), now (deadline base), now (updated_at). As a
# resume: a queued workflow waits in its queue again, another restarts unowned for an adopter.
_RESTART = (
    "status = CASE WHEN queue_name IS NULL THEN 'PENDING' ELSE 'ENQUEUED' END, "
    "executor_id = NULL, started_at = CASE WHEN queue_name IS NULL THEN ? ELSE NULL END, "
    "deadline_at = CASE WHEN queue_name IS NULL AND timeout_ms IS NOT NULL THEN timeout_ms + ? ELSE NULL END, "
    "available_at = NULL, output = NULL, error = NULL, recovery_attempts = 0, updated_at = ?"
)
_REQUEUE = (
    "status = 'ENQUEUED', queue_name = ?, executor_id = NULL, started_at = NULL, available_at = NULL, "
    "deadline_at = NULL, output = NULL, error = NULL, recovery_attempts = 0, updated_at = ?"
)


class RewindSql(DriverBase):
    def workflow_rewind(
        self,
        *,
        workflow_id: str,
        start_step: int,
        from_statuses: Sequence[str],
        now: int,
        queue_name: str | None = None,
    ) -> WorkflowRow | None:
        marks = ", ".join("?" * len(from_statuses))
        where = f" WHERE workflow_id = ? AND status IN ({marks}) RETURNING {WORKFLOW_COLUMNS}"
        if queue_name is None:
            update = f"UPDATE workflow_status SET {_RESTART}{where}"
            params: tuple[object, ...] = (now, now, now, workflow_id, *from_statuses)
        else:
            update = f"UPDATE workflow_status SET {_REQUEUE}{where}"
            params = (queue_name, now, workflow_id, *from_statuses)
        delete = self.sql.steps.delete_from
        # (capped at the highest position: past it SQLite's key range would reach the next workflow's)
        position = min(start_step, MAX_FUNCTION_ID + 1)

        def unit(tx: Tx) -> WorkflowRow | None:
            found = tx.one(update, params)
            if found is None:
                return None
            tx.run(delete, (workflow_id, position))
            return to_workflow(found)

        row = self.write(unit)
        if row is not None and row.status == Status.ENQUEUED:
            self.hint(Hint.QUEUE, row.queue_name or "", "")
        return row
