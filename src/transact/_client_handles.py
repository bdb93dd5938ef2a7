"""The handles ``DBOSClient`` returns: the result and status are read from the database.

They know the client only as a ``_Source`` (no import of the client: the client's mixins name
these handles too).
"""

from __future__ import annotations

import asyncio
from typing import Any, Generic, Protocol, TypeVar

from transact.errors import WorkflowNotFoundError
from transact.models import WorkflowStatus

R = TypeVar("R")


class _Source(Protocol):
    """What a handle asks of its client."""

    def _result(self, workflow_id: str, timeout: float | None) -> Any: ...

    def get_workflow_status(self, workflow_id: str) -> WorkflowStatus | None: ...


class WorkflowHandleClient(Generic[R]):
    """A handle from ``DBOSClient``: the result is read from the database when it is ready."""

    def __init__(self, client: _Source, workflow_id: str) -> None:
        self._client = client
        self.workflow_id = workflow_id

    def get_workflow_id(self) -> str:
        return self.workflow_id

    def get_result(self, *, timeout: float | None = None, polling_interval_sec: float | None = None) -> R:
        result: R = self._client._result(self.workflow_id, timeout)
        return result

    def get_status(self) -> WorkflowStatus:
        status = self._client.get_workflow_status(self.workflow_id)
        if status is None:
            raise WorkflowNotFoundError(self.workflow_id)
        return status

    def __repr__(self) -> str:
        return f"WorkflowHandleClient({self.workflow_id!r})"


class WorkflowHandleClientAsync(Generic[R]):
    def __init__(self, client: _Source, workflow_id: str) -> None:
        self._client = client
        self.workflow_id = workflow_id

    def get_workflow_id(self) -> str:
        return self.workflow_id

    async def get_result(self, *, timeout: float | None = None, polling_interval_sec: float | None = None) -> R:
        result: R = await asyncio.to_thread(self._client._result, self.workflow_id, timeout)
        return result

    async def get_status(self) -> WorkflowStatus:
        status = await asyncio.to_thread(self._client.get_workflow_status, self.workflow_id)
        if status is None:
            raise WorkflowNotFoundError(self.workflow_id)
        return status

    def __repr__(self) -> str:
        return f"WorkflowHandleClientAsync({self.workflow_id!r})"
