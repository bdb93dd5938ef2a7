"""Exponential back-off with jitter, a cap, an optional deadline and a cancel event.

The one retry pacing used for database outages, reconnecting listeners and consumers, transaction
retries and re-read polls, so every loop backs off alike and stops promptly when told to.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field


@dataclass
class Backoff:
    """Delays ``initial * factor**n``, capped at ``cap``; with ``jitter`` each delay is drawn from
    ``[delay * (1 - jitter), delay * (1 + jitter)]`` so processes retrying together spread out.

    ``budget_s``: total seconds the caller may spend waiting (``expired()`` turns true after it);
    ``cancel``: an event that ends a wait early (``wait()`` then returns False)."""

    initial: float
    cap: float
    factor: float = 2.0
    jitter: float = 0.5
    budget_s: float | None = None
    cancel: threading.Event | None = None
    attempts: int = 0
    _delay: float = field(init=False, repr=False)
    _started: float = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._delay = self.initial
        self._started = time.monotonic()

    def next_delay(self) -> float:
        """The next pause (jittered) and advance the schedule; counts one attempt."""
        self.attempts += 1
        delay = self._delay
        self._delay = min(self._delay * self.factor, self.cap)
        if self.jitter:
            delay *= 1 - self.jitter + 2 * self.jitter * random.random()
        return delay

    def peek(self) -> float:
        """The next un-jittered pause, without advancing."""
        return self._delay

    def reset(self) -> None:
        """Start over from ``initial`` (after a success)."""
        self._delay = self.initial
        self.attempts = 0

    def elapsed(self) -> float:
        return time.monotonic() - self._started

    def expired(self) -> bool:
        return self.budget_s is not None and self.elapsed() >= self.budget_s

    def remaining(self) -> float | None:
        return None if self.budget_s is None else max(0.0, self.budget_s - self.elapsed())

    def wait(self) -> bool:
        """Sleep the next pause (never past the budget). False when cancelled or out of budget."""
        if self.expired():
            return False
        delay = self.next_delay()
        left = self.remaining()
        if left is not None:
            delay = min(delay, left)
        if self.cancel is not None:
            return not self.cancel.wait(delay)
        time.sleep(delay)
        return True

    def should_log(self) -> bool:
        """True on the attempts worth a log line (1st, 10th, then every 50th): outages stay visible
        without flooding the log."""
        return self.attempts in (1, 10) or (self.attempts > 0 and self.attempts % 50 == 0)
