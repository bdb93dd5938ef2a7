"""Drain: wait until the queues this process serves hold no ENQUEUED or PENDING work.

Woken by completions (hint ``done``, pushed from any process on Postgres) and by other processes'
commits (``*`` on SQLite); a slow poll (50 ms doubling to 1 s) is the safety net for a lost hint.
Each wake re-reads the counts (``store.stats_queue_depths``: the partial queue indexes only).
DELAYED rows do not hold a drain: they are not runnable yet. Must not import the facade.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable

from transact._lib.backoff import Backoff
from transact._lib.states import Hint
from transact.engine import queues
from transact.engine.runtime import Runtime
from transact.engine.waiters import POLL_MAX_S

_WAKING = frozenset({Hint.DONE, Hint.ALL})


def served_queues(rt: Runtime) -> list[str]:
    """The queues this process dispatches: every declared queue, or those ``listen_queues`` named."""
    only = queues.listened(rt)
    return sorted(name for name in rt.registry.queues if only is None or name in only)


def busy(rt: Runtime, names: list[str]) -> bool:
    """Whether any of ``names`` has ENQUEUED or PENDING work. Round trips: 1 (0 without queues)."""
    return any(d.enqueued or d.running for d in rt.store.stats_queue_depths(queue_names=names))


def _remaining(deadline: float | None, pace: Backoff) -> float:
    wait = pace.next_delay()
    return wait if deadline is None else min(wait, deadline - time.monotonic())


def drain(rt: Runtime, timeout: float | None) -> bool:
    """Block until the served queues are empty (True), or ``timeout`` seconds pass or the
    process shuts down first (False)."""
    names = served_queues(rt)
    deadline = None if timeout is None else time.monotonic() + timeout
    woken = threading.Event()
    listener = _listener(woken.set)
    rt.hint_listeners.append(listener)
    try:
        pace = Backoff(initial=0.05, cap=POLL_MAX_S, jitter=0)
        while not rt.stopping.is_set():
            woken.clear()  # before the read: a completion during it wakes the next wait
            if not busy(rt, names):
                return True
            wait = _remaining(deadline, pace)
            if wait <= 0:
                return False
            woken.wait(wait)
        return False
    finally:
        rt.hint_listeners.remove(listener)


async def drain_async(rt: Runtime, timeout: float | None) -> bool:
    """``drain`` for async code: the same wake-ups and poll, holding no thread while it waits."""
    names = served_queues(rt)
    deadline = None if timeout is None else time.monotonic() + timeout
    loop = asyncio.get_running_loop()
    woken = asyncio.Event()
    listener = _listener(lambda: loop.call_soon_threadsafe(woken.set))
    rt.hint_listeners.append(listener)
    try:
        pace = Backoff(initial=0.05, cap=POLL_MAX_S, jitter=0)
        while not rt.stopping.is_set():
            woken.clear()
            if not await rt.aio(busy, rt, names):
                return True
            wait = _remaining(deadline, pace)
            if wait <= 0:
                return False
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(woken.wait(), wait)
        return False
    finally:
        rt.hint_listeners.remove(listener)


def _listener(wake: Callable[[], object]) -> Callable[[str, str, str], None]:
    def on_hint(kind: str, ident: str, key: str) -> None:
        if kind in _WAKING:
            wake()

    return on_hint
