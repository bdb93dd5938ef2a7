"""DBOSClient's schedule methods: manage an application's schedules from any process.

The schedules live in the system database, so the application's processes see every change (by
hint or poll). A client knows workflows by name only: it cannot check a workflow's signature or
that a queue is declared. Runs it backfills or triggers are started by the application's
processes (unowned rows they adopt, or queued rows their workers claim).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from transact.engine import schedules as sch

if TYPE_CHECKING:
    from transact._client_handles import WorkflowHandleClient, WorkflowHandleClientAsync
    from transact.storage import Store

T = TypeVar("T")


class ClientSchedules:
    """Mixed into DBOSClient, which provides the store, the outage-mapping call and the handles."""

    if TYPE_CHECKING:
        _store: Store
        _application_name: str | None

        def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T: ...

        def retrieve_workflow(self, workflow_id: str, existing_workflow: bool = True) -> WorkflowHandleClient[Any]: ...

        async def retrieve_workflow_async(
            self, workflow_id: str, existing_workflow: bool = True
        ) -> WorkflowHandleClientAsync[Any]: ...

    def create_schedule(
        self,
        *,
        schedule_name: str,
        workflow_name: str,
        schedule: str,
        context: Any = None,
        automatic_backfill: bool = False,
        cron_timezone: str | None = None,
        queue_name: str | None = None,
    ) -> None:
        """Create a schedule for the workflow registered as ``workflow_name``; it is called with
        ``(scheduled_time, context)``. Fails if the name is taken."""
        row = sch.definition(
            None,
            schedule_name,
            workflow_name,
            schedule,
            context=context,
            automatic_backfill=automatic_backfill,
            cron_timezone=cron_timezone,
            queue_name=queue_name,
        )
        self._call(sch.create, self._store, row, None, self._application_name)

    async def create_schedule_async(
        self,
        *,
        schedule_name: str,
        workflow_name: str,
        schedule: str,
        context: Any = None,
        automatic_backfill: bool = False,
        cron_timezone: str | None = None,
        queue_name: str | None = None,
    ) -> None:
        await asyncio.to_thread(
            lambda: self.create_schedule(
                schedule_name=schedule_name,
                workflow_name=workflow_name,
                schedule=schedule,
                context=context,
                automatic_backfill=automatic_backfill,
                cron_timezone=cron_timezone,
                queue_name=queue_name,
            )
        )

    def apply_schedules(self, schedules: list[dict[str, Any]]) -> None:
        """Create or update the listed schedules in one transaction (dicts with the keyword
        arguments of create_schedule); schedules not listed are untouched."""
        self._call(sch.apply, self._store, sch.definitions(None, schedules), None, self._application_name)

    async def apply_schedules_async(self, schedules: list[dict[str, Any]]) -> None:
        await asyncio.to_thread(self.apply_schedules, schedules)

    def list_schedules(
        self,
        *,
        status: str | None = None,
        workflow_name: str | None = None,
        schedule_name_prefix: str | None = None,
    ) -> list[dict[str, Any]]:
        return self._call(
            sch.list_all,
            self._store,
            status=status,
            workflow_name=workflow_name,
            schedule_name_prefix=schedule_name_prefix,
        )

    async def list_schedules_async(
        self,
        *,
        status: str | None = None,
        workflow_name: str | None = None,
        schedule_name_prefix: str | None = None,
    ) -> list[dict[str, Any]]:
        return await asyncio.to_thread(
            lambda: self.list_schedules(
                status=status, workflow_name=workflow_name, schedule_name_prefix=schedule_name_prefix
            )
        )

    def get_schedule(self, schedule_name: str) -> dict[str, Any] | None:
        return self._call(sch.get, self._store, schedule_name)

    async def get_schedule_async(self, schedule_name: str) -> dict[str, Any] | None:
        return await asyncio.to_thread(self.get_schedule, schedule_name)

    def pause_schedule(self, schedule_name: str) -> None:
        self._call(sch.set_state, self._store, schedule_name, sch.PAUSED)

    async def pause_schedule_async(self, schedule_name: str) -> None:
        await asyncio.to_thread(self.pause_schedule, schedule_name)

    def resume_schedule(self, schedule_name: str) -> None:
        self._call(sch.set_state, self._store, schedule_name, sch.ACTIVE)

    async def resume_schedule_async(self, schedule_name: str) -> None:
        await asyncio.to_thread(self.resume_schedule, schedule_name)

    def delete_schedule(self, schedule_name: str) -> None:
        """Delete a schedule. One declared in code comes back when an application process re-reads
        its schedules; pause it instead."""
        self._call(sch.delete, self._store, schedule_name)

    async def delete_schedule_async(self, schedule_name: str) -> None:
        await asyncio.to_thread(self.delete_schedule, schedule_name)

    def backfill_schedule(self, schedule_name: str, start: datetime, end: datetime) -> list[WorkflowHandleClient[Any]]:
        """Run the ticks from ``start`` (included) to ``end`` (excluded) that have not run yet."""
        ids = self._call(sch.backfill, self._store, schedule_name, start, end)
        return [self.retrieve_workflow(wid, existing_workflow=False) for wid in ids]

    async def backfill_schedule_async(
        self, schedule_name: str, start: datetime, end: datetime
    ) -> list[WorkflowHandleClientAsync[Any]]:
        ids = await asyncio.to_thread(self._call, sch.backfill, self._store, schedule_name, start, end)
        return [await self.retrieve_workflow_async(wid, existing_workflow=False) for wid in ids]

    def trigger_schedule(self, schedule_name: str) -> WorkflowHandleClient[Any]:
        """Run the schedule's workflow once now, outside its cron ticks."""
        return self.retrieve_workflow(self._call(sch.trigger, self._store, schedule_name), existing_workflow=False)

    async def trigger_schedule_async(self, schedule_name: str) -> WorkflowHandleClientAsync[Any]:
        wid = await asyncio.to_thread(self._call, sch.trigger, self._store, schedule_name)
        return await self.retrieve_workflow_async(wid, existing_workflow=False)
