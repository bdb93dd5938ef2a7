"""In-process wake-ups keyed by (kind, id, key). Hints, not truth: woken waiters re-read tables.

Must not import the facade.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TypeVar

from transact._lib.backoff import Backoff
from transact._lib.states import Hint
from transact.engine import clock

Key = tuple[str, str, str]
T = TypeVar("T")
POLL_MAX_S = 1.0  # re-read at least this often even if a wake-up was lost


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class Waiter:
    __slots__ = ("_event", "_future", "_loop", "wildcard")

    def __init__(self, loop: asyncio.AbstractEventLoop | None, wildcard: bool = True) -> None:
        self._loop = loop
        self.wildcard = wildcard
        self._event = threading.Event() if loop is None else None
        self._future: asyncio.Future[None] | None = loop.create_future() if loop is not None else None

    def fire(self) -> None:
        if self._event is not None:
            self._event.set()
        elif self._loop is not None and self._future is not None:
            self._loop.call_soon_threadsafe(_resolve, self._future)

    def wait(self, timeout: float | None) -> bool:
        assert self._event is not None
        fired = self._event.wait(timeout)
        self._event.clear()
        return fired

    async def wait_async(self, timeout: float | None) -> bool:
        assert self._future is not None and self._loop is not None
        try:
            await asyncio.wait_for(asyncio.shield(self._future), timeout)
            fired = True
        except asyncio.TimeoutError:
            fired = False
        if self._future.done():
            self._future = self._loop.create_future()
        return fired


class Waiters:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_key: dict[Key, set[Waiter]] = {}
        clock.subscribe(self)

    def on_clock_jump(self, reset: bool) -> None:
        """A test clock moved: every waiter re-reads (sleepers and timeouts wait on the clock)."""
        with self._lock:
            targets = [w for group in self._by_key.values() for w in group]
        for waiter in targets:
            waiter.fire()

    @contextmanager
    def watch(
        self,
        kind: str,
        ident: str,
        key: str = "",
        *,
        asynchronous: bool = False,
        also: Sequence[Key] = (),
        wildcard: bool = True,
    ) -> Iterator[Waiter]:
        """Register before reading the table, so a write between the read and the wait is not missed.

        ``also``: more keys that wake the same waiter (e.g. a message *or* a cancellation).
        ``wildcard=False``: not woken by ``*`` ("re-read everything"), for waiters with nothing to
        re-read, e.g. thousands of sleepers that only care about their own cancellation."""
        waiter = Waiter(asyncio.get_running_loop() if asynchronous else None, wildcard)
        keys = [(kind, ident, key), *also]
        with self._lock:
            for k in keys:
                self._by_key.setdefault(k, set()).add(waiter)
        try:
            yield waiter
        finally:
            with self._lock:
                for k in keys:
                    group = self._by_key.get(k)
                    if group is not None:
                        group.discard(waiter)
                        if not group:
                            del self._by_key[k]

    def notify(self, kind: str, ident: str, key: str = "") -> None:
        with self._lock:
            if kind == Hint.ALL:
                targets = [w for group in self._by_key.values() for w in group if w.wildcard]
            else:
                targets = list(self._by_key.get((kind, ident, key), ()))
                if key:
                    targets.extend(self._by_key.get((kind, ident, ""), ()))
        for waiter in targets:
            waiter.fire()

    def until(
        self,
        kind: str,
        ident: str,
        key: str,
        read: Callable[[], T | None],
        timeout: float | None,
        *,
        halted: Callable[[], bool] | None = None,
    ) -> T | None:
        """Re-read until ``read()`` returns a value, woken by hints on (kind, ident, key), with a
        slow poll as the safety net for a lost hint. None when ``timeout`` seconds pass or
        ``halted()`` turns true first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        pace = Backoff(initial=0.05, cap=POLL_MAX_S, jitter=0)
        while halted is None or not halted():
            with self.watch(kind, ident, key) as waiter:
                value = read()
                if value is not None:
                    return value
                poll = pace.next_delay()
                wait = poll if deadline is None else min(poll, deadline - time.monotonic())
                if wait <= 0:
                    return None
                waiter.wait(wait)
        return None

    async def until_async(
        self,
        kind: str,
        ident: str,
        key: str,
        read: Callable[[], Awaitable[T | None]],
        timeout: float | None,
        *,
        halted: Callable[[], bool] | None = None,
    ) -> T | None:
        """``until`` for async code: the same wake-ups and safety-net poll, holding no thread."""
        deadline = None if timeout is None else time.monotonic() + timeout
        pace = Backoff(initial=0.05, cap=POLL_MAX_S, jitter=0)
        while halted is None or not halted():
            with self.watch(kind, ident, key, asynchronous=True) as waiter:
                value = await read()
                if value is not None:
                    return value
                poll = pace.next_delay()
                wait = poll if deadline is None else min(poll, deadline - time.monotonic())
                if wait <= 0:
                    return None
                await waiter.wait_async(wait)
        return None
