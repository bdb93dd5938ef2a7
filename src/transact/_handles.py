"""Workflow handles: results via pushed wake-ups (local futures, LISTEN/NOTIFY), not busy polling."""

from __future__ import annotations

import concurrent.futures
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from transact.engine.status import to_status
from transact.errors import WorkflowNotFoundError
from transact.models import WorkflowStatus

if TYPE_CHECKING:
    from transact.engine.runtime import Runtime

R = TypeVar("R")


class WorkflowHandle(Generic[R]):
    def __init__(
        self, runtime: Runtime, workflow_id: str, future: concurrent.futures.Future[Any] | None = None
    ) -> None:
        self._rt = runtime
        self.workflow_id = workflow_id
        # The run's future when it runs in this process: its result needs no database read even
        # after the run has finished and left the runtime's table.
        self._future = future

    def get_workflow_id(self) -> str:
        return self.workflow_id

    def get_result(self, *, timeout: float | None = None, polling_interval_sec: float | None = None) -> R:
        """The workflow's result (its error is raised). Completions are pushed: ``polling_interval_sec``
        is accepted for compatibility and needs no tuning."""
        if self._future is not None:
            value: R = self._rt.future_result(self._future, self.workflow_id, timeout)
            return value
        result: R = self._rt.await_result(self.workflow_id, timeout)
        return result

    def get_status(self) -> WorkflowStatus:
        row = self._rt.store.workflow_get(self.workflow_id)
        if row is None:
            raise WorkflowNotFoundError(self.workflow_id)
        return to_status(row)

    def __repr__(self) -> str:
        return f"WorkflowHandle({self.workflow_id!r})"


class WorkflowHandleAsync(Generic[R]):
    def __init__(self, runtime: Runtime, workflow_id: str) -> None:
        self._rt = runtime
        self.workflow_id = workflow_id

    def get_workflow_id(self) -> str:
        return self.workflow_id

    async def get_result(self, *, timeout: float | None = None, polling_interval_sec: float | None = None) -> R:
        result: R = await self._rt.await_result_async(self.workflow_id, timeout)
        return result

    async def get_status(self) -> WorkflowStatus:
        row = await self._rt.aio(self._rt.store.workflow_get, self.workflow_id)
        if row is None:
            raise WorkflowNotFoundError(self.workflow_id)
        return to_status(row)

    def __repr__(self) -> str:
        return f"WorkflowHandleAsync({self.workflow_id!r})"
