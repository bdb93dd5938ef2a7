"""DBOS facade: durable time and communication (sleep, send/recv, events, streams).

Delegates to ``engine/comms.py``. Must not import transact._dbos.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from transact._facade._base import FacadeBase
from transact.engine import comms, late_comms, streams


class CommsFacade(FacadeBase):
    # -- durable time -------------------------------------------------------------------------
    @classmethod
    def sleep(cls, seconds: float) -> None:
        """Sleep durably: in a workflow the wake-up time is recorded, so a workflow restarted after a
        crash wakes when it first meant to. Outside a workflow: an ordinary sleep."""
        comms.sleep(seconds)

    @classmethod
    async def sleep_async(cls, seconds: float) -> None:
        """``sleep`` for async workflows; holds no thread while it waits."""
        await comms.sleep_async(seconds)

    # -- messages -----------------------------------------------------------------------------
    @classmethod
    def send(
        cls, destination_id: str, message: Any, topic: str | None = None, idempotency_key: str | None = None
    ) -> None:
        """Send ``message`` to workflow ``destination_id`` (received by its ``recv(topic)``).

        From a workflow it is a step (sent once, whatever the replays); elsewhere, a send with an
        ``idempotency_key`` already used for that destination is delivered only once."""
        comms.send(cls._rt(), destination_id, message, topic, idempotency_key)

    @classmethod
    async def send_async(
        cls, destination_id: str, message: Any, topic: str | None = None, idempotency_key: str | None = None
    ) -> None:
        await comms.send_async(cls._rt(), destination_id, message, topic, idempotency_key)

    @classmethod
    def send_bulk(cls, messages: Sequence[Any]) -> None:
        """Send many messages in one transaction. Each entry holds one ``send``'s arguments: a tuple
        ``(destination_id, message[, topic[, idempotency_key]])`` or a mapping with those keys.

        All are delivered, or none when a destination does not exist (WorkflowNotFoundError). From
        a workflow it is one step: sent once, whatever the replays."""
        comms.send_bulk(cls._rt(), messages)

    @classmethod
    async def send_bulk_async(cls, messages: Sequence[Any]) -> None:
        await comms.send_bulk_async(cls._rt(), messages)

    @classmethod
    def send_to_forks(cls, destination_id: str, message: Any, topic: str | None = None) -> list[str]:
        """Send ``message`` to workflow ``destination_id`` and to every workflow forked from it (forks
        of forks too) that has not finished, in one transaction; returns the ids it reached, the
        destination first. A finished workflow (the destination included) is skipped; an unknown
        destination raises WorkflowNotFoundError (nothing sent). From a workflow it is one step:
        sent once, and a replay returns the recorded ids."""
        return late_comms.send_to_forks(cls._rt(), destination_id, message, topic)

    @classmethod
    async def send_to_forks_async(cls, destination_id: str, message: Any, topic: str | None = None) -> list[str]:
        return await late_comms.send_to_forks_async(cls._rt(), destination_id, message, topic)

    @classmethod
    def recv(cls, topic: str | None = None, timeout_seconds: float = 60) -> Any:
        """In a workflow: the oldest unread message for ``topic`` (each message is received once), or
        None when none arrives before the timeout (the deadline is recorded and survives restarts)."""
        return comms.recv(topic, timeout_seconds)

    @classmethod
    async def recv_async(cls, topic: str | None = None, timeout_seconds: float = 60) -> Any:
        return await comms.recv_async(topic, timeout_seconds)

    # -- events -------------------------------------------------------------------------------
    @classmethod
    def set_event(cls, key: str, value: Any) -> None:
        """In a workflow: publish ``key = value`` for readers of ``get_event`` (last write wins)."""
        comms.set_event(cls._rt(), key, value)

    @classmethod
    async def set_event_async(cls, key: str, value: Any) -> None:
        await comms.set_event_async(cls._rt(), key, value)

    @classmethod
    def get_event(cls, workflow_id: str, key: str, timeout_seconds: float = 60) -> Any:
        """Wait until workflow ``workflow_id`` sets event ``key`` and return its value, or None after
        ``timeout_seconds``. In a workflow the result is recorded (replays see the same value)."""
        return comms.get_event(cls._rt(), workflow_id, key, timeout_seconds)

    @classmethod
    async def get_event_async(cls, workflow_id: str, key: str, timeout_seconds: float = 60) -> Any:
        return await comms.get_event_async(cls._rt(), workflow_id, key, timeout_seconds)

    @classmethod
    def get_all_events(cls, workflow_id: str) -> dict[str, Any]:
        """Every event workflow ``workflow_id`` has set, key -> latest value (recorded in a workflow)."""
        return comms.get_all_events(cls._rt(), workflow_id)

    @classmethod
    async def get_all_events_async(cls, workflow_id: str) -> dict[str, Any]:
        return await comms.get_all_events_async(cls._rt(), workflow_id)

    # -- streams ------------------------------------------------------------------------------
    @classmethod
    def write_stream(cls, key: str, value: Any) -> None:
        """In a workflow: append ``value`` to its stream ``key`` (exactly once per call position)."""
        comms.write_stream(cls._rt(), key, value)

    @classmethod
    async def write_stream_async(cls, key: str, value: Any) -> None:
        await comms.write_stream_async(cls._rt(), key, value)

    @classmethod
    def close_stream(cls, key: str) -> None:
        """In a workflow: mark its stream ``key`` complete; readers stop after the last value."""
        comms.write_stream(cls._rt(), key, None, close=True)

    @classmethod
    async def close_stream_async(cls, key: str) -> None:
        await comms.write_stream_async(cls._rt(), key, None, close=True)

    @classmethod
    def read_stream(
        cls, workflow_id: str, key: str, *, offset: int = 0, timeout_seconds: float | None = None
    ) -> Iterator[Any]:
        """Yield the values of workflow ``workflow_id``'s stream ``key`` in order, waiting for new
        ones; ends when the stream is closed or the workflow has ended.

        ``offset``: start at that value (0-based), e.g. to resume after the values already read.
        ``timeout_seconds``: raise TimeoutError (naming the offset to resume from) if the stream is
        still open that many seconds after the call; None waits as long as the stream lasts."""
        rt = cls._rt()
        read = streams.checked("DBOS.read_stream", workflow_id, key, offset, timeout_seconds)
        return streams.values(rt.store, rt.waiters, read)

    @classmethod
    def read_stream_async(
        cls, workflow_id: str, key: str, *, offset: int = 0, timeout_seconds: float | None = None
    ) -> AsyncIterator[Any]:
        """``read_stream`` as an async generator: ``async for value in DBOS.read_stream_async(...)``."""
        rt = cls._rt()
        read = streams.checked("DBOS.read_stream", workflow_id, key, offset, timeout_seconds)
        return streams.values_async(rt.store, rt.waiters, read, rt.aio)

    @classmethod
    def read_stream_offset(cls, workflow_id: str, key: str) -> int:
        """The offset the next value written to workflow ``workflow_id``'s stream ``key`` takes: the
        number of values it holds (0 for a stream never written). Pass it as ``read_stream(...,
        offset=...)`` to read only values written from now on. An unknown workflow raises
        WorkflowNotFoundError, as ``read_stream`` does. In a workflow the number is recorded
        (a replay returns the same)."""
        return late_comms.read_stream_offset(cls._rt(), workflow_id, key)

    @classmethod
    async def read_stream_offset_async(cls, workflow_id: str, key: str) -> int:
        return await late_comms.read_stream_offset_async(cls._rt(), workflow_id, key)
