"""DBOSClient's stream offsets and sends to forks (``engine/late_comms.py``), as on ``DBOS``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from transact.engine import late_comms

if TYPE_CHECKING:
    from transact.storage import Store

T = TypeVar("T")


class ClientLateComms:
    """Mixed into DBOSClient, which provides the store and the outage-mapping call."""

    if TYPE_CHECKING:
        _store: Store

        def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T: ...

    def read_stream_offset(self, workflow_id: str, key: str) -> int:
        """The offset the next value of workflow ``workflow_id``'s stream ``key`` takes: its number
        of values, 0 for a stream never written (as ``DBOS.read_stream_offset``). Pass it as
        ``read_stream(..., offset=...)`` to read only new values. Unknown workflow:
        WorkflowNotFoundError."""
        api = "DBOSClient.read_stream_offset"
        return self._call(late_comms.stream_offset, self._store, workflow_id, key, api=api)

    async def read_stream_offset_async(self, workflow_id: str, key: str) -> int:
        return await asyncio.to_thread(self.read_stream_offset, workflow_id, key)

    def send_to_forks(self, destination_id: str, message: Any, topic: str | None = None) -> list[str]:
        """Send ``message`` to ``destination_id`` and every unfinished workflow forked from it, at
        any depth, in one transaction; returns the ids reached (as ``DBOS.send_to_forks``). Unknown
        destination: WorkflowNotFoundError, nothing sent."""
        api = "DBOSClient.send_to_forks"
        return self._call(late_comms.send_to_forks_plain, self._store, destination_id, message, topic, api=api)

    async def send_to_forks_async(self, destination_id: str, message: Any, topic: str | None = None) -> list[str]:
        return await asyncio.to_thread(self.send_to_forks, destination_id, message, topic)
