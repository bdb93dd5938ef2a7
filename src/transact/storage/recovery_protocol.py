"""The storage contract's recovery scans and takeovers (a concern of its own, so ``protocol.py``
stays within its size budget). Implemented by ``workflows.WorkflowSql``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from transact.storage.rows import WorkflowRow


class RecoveryStore(Protocol):
    """PENDING work whose process is gone: the scans that find it and the writes that take it
    over (workflows.py). ``application_name`` limits a scan to that application's workflows and
    unowned ones."""

    def workflows_pending(
        self, executor_ids: Sequence[str], *, application_name: str | None = None
    ) -> list[WorkflowRow]:
        """PENDING workflows owned by the given executors, oldest first; with ``application_name``
        only that application's and unowned ones. Round trips: 1."""
        ...

    def workflows_orphaned(
        self,
        live_executor_ids: Sequence[str],
        limit: int,
        *,
        names: Sequence[str] | None = None,
        application_name: str | None = None,
    ) -> list[WorkflowRow]:
        """PENDING workflows whose owner is not among the live executors (or has none), oldest
        first; with ``names``, only workflows of those names; with ``application_name``, only that
        application's and unowned ones. An empty live list means every PENDING workflow. Round trips: 1."""
        ...

    def workflows_adopt(
        self, *, workflow_ids: Sequence[str], from_executor: str | None, to_executor: str, now: int
    ) -> list[WorkflowRow]:
        """Take over PENDING workflows still owned by ``from_executor`` (None: unowned), in one
        statement; queued ones go back to their queue (ENQUEUED, unowned). Counts a recovery
        attempt. A row a concurrent adopter took first is not returned. Round trips: 1."""
        ...

    def workflow_adopt(
        self, *, workflow_id: str, from_executor: str | None, to_executor: str, now: int
    ) -> WorkflowRow | None:
        """``workflows_adopt`` for one workflow: the adopted row, or None when it was not taken."""
        ...

    def workflows_rerun_own(self, *, workflow_ids: Sequence[str], executor_id: str, now: int) -> list[WorkflowRow]:
        """Count a recovery attempt for workflows this executor already owns; returns the rows
        still PENDING and owned by ``executor_id``. Round trips: 1."""
        ...

    def workflows_release(self, *, executor_id: str, now: int, workflow_id: str | None = None) -> int:
        """Give up ownership of this executor's PENDING workflows (or of one). Returns how many."""
        ...
