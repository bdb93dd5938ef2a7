"""The engine's clock: epoch milliseconds. SQL never reads the time itself, so drivers agree."""

from __future__ import annotations

import time


def now_ms() -> int:
    return time.time_ns() // 1_000_000
