"""The rewind concern of the storage contract (``RewindStore``), kept beside protocol.py. Must not
import the engine or the facade."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from transact.storage.rows import WorkflowRow


class RewindStore(Protocol):
    """Re-running a workflow from one of its steps under the same id (rewind.py)."""

    def workflow_rewind(
        self,
        *,
        workflow_id: str,
        start_step: int,
        from_statuses: Sequence[str],
        now: int,
        queue_name: str | None = None,
    ) -> WorkflowRow | None:
        """In one transaction, when the workflow is in one of ``from_statuses``: delete its steps
        at position ``start_step`` and after, clear its output and error, and restart it: ENQUEUED
        on ``queue_name`` when given, else on the queue it had, else PENDING and unowned (its
        timeout starts again). Returns the updated row; None (nothing changed) when the workflow
        is missing or in another status. Round trips: 2 on SQLite, 4 on Postgres (BEGIN, the
        update, the delete, COMMIT)."""
        ...
