"""The fence every checkpoint write goes through, and the diagnosis of a write it refused.

A checkpoint (step outcome, finish, message or event with its step) is written only while the
workflow is PENDING and owned by the writer. The write itself is one statement (the dialect's
``steps.record``); why it missed is asked only on the miss path, here, so the concern mixins that
write checkpoints (workflows.py, steps.py, comms.py) share one diagnosis instead of calling into
each other. Must not import the engine or the facade.
"""

from __future__ import annotations

from collections.abc import Sequence

from transact._lib.states import Status
from transact.storage._base import DriverBase, Tx
from transact.storage.errors import OwnershipLost, WorkflowNotPending
from transact.storage.rows import StepRow

_OWNER = "SELECT status, executor_id FROM workflow_status WHERE workflow_id = ?"


def fenced_step_params(step: StepRow, workflow_id: str, executor_id: str) -> tuple[object, ...]:
    """The ``steps.record`` statement's parameters: the row in column order, then the fence.
    Spelled out (not an attrgetter splat): this runs once per step."""
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


def to_step(row: Sequence[object]) -> StepRow:
    return StepRow(*row)  # type: ignore[arg-type]


class FencedSql(DriverBase):
    """The base of every mixin that writes checkpoints."""

    def _explain_step_miss(self, tx: Tx, workflow_id: str, function_id: int, executor_id: str) -> StepRow:
        """A fenced step write matched no row: return the step recorded earlier at that position
        (a concurrent runner won; its outcome counts), or raise why the fence refused."""
        existing = tx.one(self.sql.steps.select_one, (workflow_id, function_id))
        if existing is not None:
            return to_step(existing)
        self._explain_fence_miss(tx, workflow_id, executor_id)
        raise AssertionError("unreachable: a fence miss always raises here")

    @staticmethod
    def _explain_fence_miss(tx: Tx, workflow_id: str, executor_id: str, *, written_status: str | None = None) -> None:
        """Raise why a write fenced on (PENDING, owned by ``executor_id``) matched no row; return
        only when the row already holds ``written_status`` by this executor (our retried write)."""
        current = tx.one(_OWNER, (workflow_id,))
        if current is None:
            raise WorkflowNotPending(workflow_id, "DELETED")
        if written_status is not None and current[0] == written_status and current[1] == executor_id:
            return
        if current[0] != Status.PENDING and (current[0] == Status.CANCELLED or current[1] in (None, executor_id)):
            raise WorkflowNotPending(workflow_id, str(current[0]))
        # Adopted by another executor (this one stalled past its lease), which may have ended it.
        raise OwnershipLost(f"workflow {workflow_id!r} is owned by executor {current[1]!r} now ({current[0]})")
