"""DBOS facade: managing workflows (list, steps, cancel, resume, fork, delete).

Delegates to ``engine/admin.py``. Resume applies to CANCELLED and MAX_RECOVERY_ATTEMPTS_EXCEEDED
workflows (with their cancelled descendants); for any other status it changes nothing. Fork re-runs
a workflow under a new id from ``start_step``, reusing the recorded outcomes of the steps before
it. Must not import transact._dbos.
"""

from __future__ import annotations

from typing import Any

from transact._facade._base import FacadeBase
from transact._handles import WorkflowHandle, WorkflowHandleAsync
from transact._lib.compat import Unpack
from transact._options import take_workflow_id
from transact.engine import admin, retention, rewind
from transact.engine.status import to_status
from transact.models import StepInfo, WorkflowStatus


class AdminFacade(FacadeBase):
    # -- reading ------------------------------------------------------------------------------
    @classmethod
    def list_workflows(cls, **filters: Unpack[admin.ListFilters]) -> list[WorkflowStatus]:
        """Workflows matching every given filter, oldest first (``sort_desc=True``: newest first).

        Filters taking one value or a list: ``status``, ``name``, ``queue_name``,
        ``workflow_id_prefix``, ``app_version``, ``executor_id``, ``user``, ``parent_workflow_id``,
        ``forked_from``; ``workflow_ids`` (a list). Times (ISO-8601 strings or datetimes, naive ones
        UTC, inclusive): ``start_time``/``end_time`` bound ``created_at``, ``updated_after``/
        ``updated_before`` bound ``updated_at``, ``completed_after``/``completed_before`` the finish.
        Flags: ``has_parent``, ``was_forked_from``, ``queues_only``. Paging with ``limit`` and
        ``offset``; ``load_input``/``load_output=False`` skip decoding inputs and outputs."""
        return admin.list_workflows(cls._rt().store, admin.list_query(**filters))

    @classmethod
    async def list_workflows_async(cls, **filters: Unpack[admin.ListFilters]) -> list[WorkflowStatus]:
        query = admin.list_query(**filters)
        rt = cls._rt()
        return await rt.aio(admin.list_workflows, rt.store, query)

    @classmethod
    def list_queued_workflows(cls, **filters: Unpack[admin.QueuedFilters]) -> list[WorkflowStatus]:
        """Workflows waiting in or running from a queue (ENQUEUED, DELAYED or PENDING), oldest
        first; filters as for ``list_workflows`` (``queue_name``, ``status``, ``name``, times, paging)."""
        return admin.list_workflows(cls._rt().store, admin.list_query(queued_only=True, **filters))

    @classmethod
    async def list_queued_workflows_async(cls, **filters: Unpack[admin.QueuedFilters]) -> list[WorkflowStatus]:
        query = admin.list_query(queued_only=True, **filters)
        rt = cls._rt()
        return await rt.aio(admin.list_workflows, rt.store, query)

    @classmethod
    def list_workflow_steps(
        cls, workflow_id: str, *, load_output: bool = True, limit: int | None = None, offset: int | None = None
    ) -> list[StepInfo]:
        """The workflow's recorded steps in execution order: ``function_id``, ``function_name``,
        ``output``, ``error``, ``child_workflow_id``, ``started_at_epoch_ms``, ``completed_at_epoch_ms``.
        ``offset``/``limit`` page through them; ``load_output=False`` leaves outputs and errors None."""
        return admin.list_steps(cls._rt().store, workflow_id, load_output=load_output, limit=limit, offset=offset)

    @classmethod
    async def list_workflow_steps_async(
        cls, workflow_id: str, *, load_output: bool = True, limit: int | None = None, offset: int | None = None
    ) -> list[StepInfo]:
        rt = cls._rt()
        return await rt.aio(
            admin.list_steps, rt.store, workflow_id, load_output=load_output, limit=limit, offset=offset
        )

    @classmethod
    async def get_workflow_status_async(cls, workflow_id: str) -> WorkflowStatus | None:
        rt = cls._rt()
        row = await rt.aio(rt.store.workflow_get, workflow_id)
        return to_status(row) if row is not None else None

    # -- steering -----------------------------------------------------------------------------
    @classmethod
    def update_workflow_attributes(
        cls, workflow_id: str, attributes: dict[str, Any] | None, *, merge: bool = True
    ) -> None:
        """Add ``attributes`` (JSON values) to the workflow's own, a given key replacing its value;
        ``merge=False`` replaces them all (None clears them). Inside a workflow the update is a
        recorded step: a replay does not apply it again. Raises WorkflowNotFoundError for an
        unknown id."""
        admin.update_attributes_recorded(cls._rt().store, workflow_id, attributes, merge=merge)

    @classmethod
    async def update_workflow_attributes_async(
        cls, workflow_id: str, attributes: dict[str, Any] | None, *, merge: bool = True
    ) -> None:
        await admin.update_attributes_recorded_async(cls._rt(), workflow_id, attributes, merge=merge)

    @classmethod
    def cancel_workflow(cls, workflow_id: str, *, cancel_children: bool = True) -> None:
        """Cancel the workflow and (by default) its unfinished descendants: a running one stops at
        its next step, a queued one never starts. Raises WorkflowNotFoundError for an unknown id."""
        rt = cls._rt()
        admin.cancel(rt.store, workflow_id, rt, cancel_children=cancel_children)

    @classmethod
    async def cancel_workflow_async(cls, workflow_id: str, *, cancel_children: bool = True) -> None:
        rt = cls._rt()
        await rt.aio(admin.cancel, rt.store, workflow_id, rt, cancel_children=cancel_children)

    @classmethod
    def resume_workflow(cls, workflow_id: str, *, queue_name: str | None = None) -> WorkflowHandle[Any]:
        """Continue a workflow from its checkpoints: a CANCELLED or MAX_RECOVERY_ATTEMPTS_EXCEEDED
        one (queued ones rejoin their queue), a stuck PENDING one, or one still waiting in its queue
        (it runs now). ``queue_name``: enqueue it on that queue instead. Finished ones are left as
        they are."""
        rt = cls._rt()
        admin.resume(rt.store, workflow_id, rt, queue_name=queue_name)
        return WorkflowHandle(rt, workflow_id)

    @classmethod
    async def resume_workflow_async(
        cls, workflow_id: str, *, queue_name: str | None = None
    ) -> WorkflowHandleAsync[Any]:
        rt = cls._rt()
        await rt.aio(admin.resume, rt.store, workflow_id, rt, queue_name=queue_name)
        return WorkflowHandleAsync(rt, workflow_id)

    @classmethod
    def rewind_workflow(
        cls, workflow_id: str, start_step: int, *, queue_name: str | None = None
    ) -> WorkflowHandle[Any]:
        """Re-run a finished, cancelled or MAX_RECOVERY_ATTEMPTS_EXCEEDED workflow under the same id
        from ``start_step``: later steps are deleted and run again, earlier ones replay. A queued
        workflow rejoins its queue (``queue_name``: that queue instead). An active one is refused."""
        rt = cls._rt()
        rewind.rewind(rt.store, workflow_id, start_step, rt, queue_name=queue_name)
        return WorkflowHandle(rt, workflow_id)

    @classmethod
    async def rewind_workflow_async(
        cls, workflow_id: str, start_step: int, *, queue_name: str | None = None
    ) -> WorkflowHandleAsync[Any]:
        rt = cls._rt()
        await rt.aio(rewind.rewind, rt.store, workflow_id, start_step, rt, queue_name=queue_name)
        return WorkflowHandleAsync(rt, workflow_id)

    @classmethod
    def fork_workflow(
        cls,
        workflow_id: str,
        start_step: int,
        *,
        application_version: str | None = None,
        queue_name: str | None = None,
        queue_partition_key: str | None = None,
        timeout_seconds: float | None = None,
    ) -> WorkflowHandle[Any]:
        """Run the workflow again under a new id (``SetWorkflowID`` picks it), reusing the recorded
        outcomes of steps before ``start_step`` and re-running the rest. ``queue_name``: the fork
        waits in that queue; ``timeout_seconds``: its timeout (default: the original's)."""
        rt = cls._rt()
        new_id = admin.fork(
            rt.store,
            workflow_id,
            start_step,
            rt=rt,
            app_version=application_version,
            new_workflow_id=take_workflow_id(),
            queue_name=queue_name,
            queue_partition_key=queue_partition_key,
            timeout_seconds=timeout_seconds,
        )
        return WorkflowHandle(rt, new_id)

    @classmethod
    async def fork_workflow_async(
        cls,
        workflow_id: str,
        start_step: int,
        *,
        application_version: str | None = None,
        queue_name: str | None = None,
        queue_partition_key: str | None = None,
        timeout_seconds: float | None = None,
    ) -> WorkflowHandleAsync[Any]:
        rt = cls._rt()
        new_id = await rt.aio(
            admin.fork,
            rt.store,
            workflow_id,
            start_step,
            rt=rt,
            app_version=application_version,
            new_workflow_id=take_workflow_id(),
            queue_name=queue_name,
            queue_partition_key=queue_partition_key,
            timeout_seconds=timeout_seconds,
        )
        return WorkflowHandleAsync(rt, new_id)

    @classmethod
    def delete_workflow(cls, workflow_id: str, *, delete_children: bool = False) -> None:
        """Delete the workflow and everything recorded for it (its descendants too when asked)."""
        admin.delete(cls._rt().store, workflow_id, delete_children=delete_children)

    @classmethod
    async def delete_workflow_async(cls, workflow_id: str, *, delete_children: bool = False) -> None:
        rt = cls._rt()
        await rt.aio(admin.delete, rt.store, workflow_id, delete_children=delete_children)

    # -- many at once -------------------------------------------------------------------------
    @classmethod
    def cancel_workflows(cls, workflow_ids: list[str]) -> None:
        """Cancel each listed workflow with its unfinished descendants. Unknown ids raise
        WorkflowNotFoundError before any workflow is cancelled."""
        rt = cls._rt()
        admin.cancel_many(rt.store, workflow_ids, rt)

    @classmethod
    async def cancel_workflows_async(cls, workflow_ids: list[str]) -> None:
        rt = cls._rt()
        await rt.aio(admin.cancel_many, rt.store, workflow_ids, rt)

    @classmethod
    def resume_workflows(cls, workflow_ids: list[str]) -> list[WorkflowHandle[Any]]:
        """Resume each listed workflow (as ``resume_workflow``); one handle per id, in order."""
        rt = cls._rt()
        return [WorkflowHandle(rt, i) for i in admin.resume_many(rt.store, workflow_ids, rt)]

    @classmethod
    async def resume_workflows_async(cls, workflow_ids: list[str]) -> list[WorkflowHandleAsync[Any]]:
        rt = cls._rt()
        ids = await rt.aio(admin.resume_many, rt.store, workflow_ids, rt)
        return [WorkflowHandleAsync(rt, i) for i in ids]

    @classmethod
    def delete_workflows(cls, workflow_ids: list[str], *, delete_children: bool = False) -> None:
        """Delete each listed workflow and everything recorded for it (descendants too when asked)."""
        admin.delete_many(cls._rt().store, workflow_ids, delete_children=delete_children)

    @classmethod
    async def delete_workflows_async(cls, workflow_ids: list[str], *, delete_children: bool = False) -> None:
        rt = cls._rt()
        await rt.aio(admin.delete_many, rt.store, workflow_ids, delete_children=delete_children)

    # -- retention ----------------------------------------------------------------------------
    @classmethod
    def garbage_collect(cls, cutoff_epoch_ms: int | None = None, rows_threshold: int | None = None) -> int:
        """Delete finished workflows (with their steps, messages, events and streams) that finished
        before ``cutoff_epoch_ms``, or are not among the ``rows_threshold`` most recently finished.
        Running, enqueued and delayed work is never deleted. Returns how many were deleted."""
        return retention.garbage_collect(cls._rt().store, cutoff_epoch_ms, rows_threshold)

    @classmethod
    async def garbage_collect_async(cls, cutoff_epoch_ms: int | None = None, rows_threshold: int | None = None) -> int:
        rt = cls._rt()
        return await rt.aio(retention.garbage_collect, rt.store, cutoff_epoch_ms, rows_threshold)
