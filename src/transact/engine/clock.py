"""The engine's clock: epoch milliseconds for every stored timestamp and deadline. SQL never reads
the time itself, so drivers agree.

A test may put a controlled clock in its place for this process (``transact.testing.TestClock``):
``use(source)`` swaps the one function ``now_ms`` reads, so production pays nothing for the
option. A controlled clock moves only when the test moves it, so a wait for a time on it (a durable
sleep, a recv/get_event/stream timeout, a workflow deadline, delayed queue work, a cron tick) must
not time out in real seconds: ``left_s`` then answers the caller's safety-net poll, and
``jumped()`` wakes every subscriber (``subscribe``) so it re-reads the clock at once.

Heartbeats and executor leases read ``real_ms``: liveness is judged between processes, which
never share a test clock, and advancing a day must not make this process look dead to itself.
Caller-side timeouts (``handle.get_result(timeout)``), step retry pauses and service polls stay on
real time too: they bound how long a test waits, not when a workflow's time comes.
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from collections.abc import Callable
from typing import Protocol, overload

_REAL: Callable[[], int] = time.time_ns
_source: Callable[[], int] = _REAL  # epoch nanoseconds; a test clock replaces it (``use``)
_lock = threading.Condition()
_subscribers: weakref.WeakSet[JumpListener] = weakref.WeakSet()
SLEEP_RECHECK_S = 1.0  # a plain sleep on a controlled clock re-reads it this often (a lost jump)


class JumpListener(Protocol):
    """Something that waits for a time on the clock and must re-plan when the clock jumps.
    ``reset``: a clock was installed or removed (the time may have moved anywhere, even back)."""

    def on_clock_jump(self, reset: bool) -> None: ...


def now_ms() -> int:
    return _source() // 1_000_000


def now_ms_ceil() -> int:
    """``now_ms`` rounded up: ``now_ms_ceil() + ms`` has surely passed ``ms`` from now, though
    part of the current millisecond is gone (a test clock stands on whole ones: no rounding)."""
    return -(-_source() // 1_000_000)


def real_ms() -> int:
    """Wall-clock epoch ms whatever clock is installed (heartbeats and leases)."""
    return time.time_ns() // 1_000_000


def controlled() -> bool:
    """True while a test clock is installed in this process."""
    return _source is not _REAL


@overload
def left_s(deadline_ms: int, cap: float) -> float: ...
@overload
def left_s(deadline_ms: int, cap: None) -> float | None: ...
def left_s(deadline_ms: int, cap: float | None) -> float | None:
    """Real seconds to wait for the clock to reach ``deadline_ms`` (epoch ms), at most ``cap``
    (None: no cap). On a controlled clock only a jump brings the deadline nearer, and jumps wake
    the waiters, so the wait is the cap alone (never a spin on a deadline that does not come)."""
    left = max(0.0, (deadline_ms - now_ms()) / 1000)
    if left > 0.0 and _source is not _REAL:
        return cap
    return left if cap is None or left < cap else cap


def subscribe(listener: JumpListener) -> None:
    """Have ``listener.on_clock_jump`` called on every jump (held weakly: no unsubscribe needed)."""
    with _lock:
        _subscribers.add(listener)


def use(source: Callable[[], int] | None) -> None:
    """Install ``source`` (epoch nanoseconds) as this process's clock, or the real one for None,
    and wake every waiter to re-plan. Tests only: ``transact.testing.TestClock`` calls it."""
    global _source
    with _lock:
        _source = _REAL if source is None else source
    jumped(reset=True)


def jumped(reset: bool = False) -> None:
    """The installed clock moved: wake plain sleeps and every subscriber."""
    with _lock:
        _lock.notify_all()
        listeners = list(_subscribers)
    for listener in listeners:
        listener.on_clock_jump(reset)


def sleep(seconds: float) -> None:
    """``time.sleep``, on the installed clock (a plain sleep outside any workflow)."""
    if _source is _REAL:
        time.sleep(seconds)
        return
    until = now_ms() + round(seconds * 1000)
    with _lock:
        while _source is not _REAL and now_ms() < until:
            _lock.wait(SLEEP_RECHECK_S)


async def sleep_async(seconds: float) -> None:
    """``asyncio.sleep``, on the installed clock."""
    if _source is _REAL:
        await asyncio.sleep(seconds)
    else:
        await asyncio.to_thread(sleep, seconds)
