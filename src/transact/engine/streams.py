"""Reading workflow streams: from any process, in order, from any offset, pushed.

A reader registers its waiter before each read (a value written in between is not missed), reads a
batch, yields it, and waits for a ``stream`` hint (or the writer's end) when nothing new is there;
a slow poll is the safety net. Readers record nothing, so the application (``DBOS``) and
``DBOSClient`` share this code: each passes its store and its waiters. Must not import the facade.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from transact._lib import checks
from transact._lib.states import Hint
from transact.engine import clock, serialization
from transact.engine.waiters import Waiters
from transact.errors import WorkflowNotFoundError
from transact.storage import Store
from transact.storage.comms import StreamItem
from transact.storage.rows import TERMINAL_STATUSES

T = TypeVar("T")
POLL_S = 2.0  # safety net for a lost wake-up; wake-ups themselves are pushed
BATCH = 1000

# Runs a blocking store call off the event loop (Runtime.aio in an application, to_thread in a client).
AsyncRunner = Callable[..., Awaitable[Any]]


@dataclass(frozen=True)
class Read:
    """A checked request: stream ``key`` of ``workflow_id`` from value number ``offset`` (0-based),
    giving up ``timeout_s`` seconds after the call (None: wait as long as the stream lasts), on
    the engine's clock (``started``: epoch seconds)."""

    api: str
    workflow_id: str
    key: str
    offset: int
    timeout_s: float | None
    started: float


def checked(api: str, workflow_id: Any, key: Any, offset: Any, timeout_seconds: Any) -> Read:
    """Check the arguments at the call, not at the first ``next()``."""
    wid = checks.text(workflow_id, f"{api}: workflow_id", bounded=True) or ""
    k = checks.text(key, f"{api}: key", bounded=True) or ""
    start = checks.count(offset, f"{api}: offset")
    timeout = None if timeout_seconds is None else checks.seconds(timeout_seconds, f"{api}: timeout_seconds")
    return Read(api, wid, k, start, timeout, clock.now_ms() / 1000)


def _left(read: Read) -> float:
    """Seconds to wait before the next re-read (the poll, or less near the deadline)."""
    if read.timeout_s is None:
        return POLL_S
    return clock.left_s(round((read.started + read.timeout_s) * 1000), POLL_S)


def _check_deadline(read: Read, seq: int) -> None:
    if read.timeout_s is not None and clock.now_ms() / 1000 >= read.started + read.timeout_s:
        raise TimeoutError(
            f"{read.api}: stream {read.key!r} of workflow {read.workflow_id!r} was still open after "
            f"{read.timeout_s} s; the next value is at offset {seq}: read again with offset={seq} to go on"
        )


def _batch(read: Read, status: str | None, items: list[StreamItem], seq: int) -> tuple[list[Any], int, bool]:
    """Pure: the values to yield from one read, the next seq, and whether the stream is over."""
    if status is None:
        raise WorkflowNotFoundError(read.workflow_id)
    values: list[Any] = []
    for item_seq, data, closed in items:
        if closed:
            return values, seq, True
        seq = item_seq + 1
        values.append(serialization.loads(data))
    return values, seq, not items and status in TERMINAL_STATUSES


def _watch_keys(read: Read) -> tuple[str, str, str, list[tuple[str, str, str]]]:
    return Hint.STREAM, read.workflow_id, read.key, [(Hint.DONE, read.workflow_id, "")]


def values(store: Store, waiters: Waiters, read: Read) -> Iterator[Any]:
    """Yield the stream's values from ``read.offset`` in order; ends when the stream is closed or
    its workflow has ended; TimeoutError when ``read.timeout_s`` passes first."""
    seq = read.offset
    kind, ident, key, also = _watch_keys(read)
    with waiters.watch(kind, ident, key, also=also) as waiter:
        while True:
            status, items = store.stream_read(read.workflow_id, read.key, seq, BATCH)
            batch, seq, over = _batch(read, status, items, seq)
            yield from batch
            if over:
                return
            _check_deadline(read, seq)
            if not items:
                waiter.wait(_left(read))


async def values_async(store: Store, waiters: Waiters, read: Read, run: AsyncRunner) -> AsyncIterator[Any]:
    """``values`` for async code: waits on the event loop, reads through ``run``."""
    seq = read.offset
    kind, ident, key, also = _watch_keys(read)
    with waiters.watch(kind, ident, key, also=also, asynchronous=True) as waiter:
        while True:
            status, items = await run(store.stream_read, read.workflow_id, read.key, seq, BATCH)
            batch, seq, over = _batch(read, status, items, seq)
            for value in batch:
                yield value
            if over:
                return
            _check_deadline(read, seq)
            if not items:
                await waiter.wait_async(_left(read))
