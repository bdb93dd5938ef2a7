"""In-process wake-ups: ``until`` and ``until_async`` re-read on a hint, time out alike, and a
``Hint`` member and its plain text wake the same waiters."""

from __future__ import annotations

import asyncio
import threading
import time

from transact._lib.states import Hint
from transact.engine.waiters import Waiters


def test_until_twins_return_the_value_a_hint_announces() -> None:
    waiters = Waiters()
    box: dict[str, int] = {}

    def publish_later() -> None:
        time.sleep(0.05)  # gives the reader time to register; correctness does not depend on it
        box["v"] = 7
        waiters.notify("event", "w", "k")  # plain text, as a NOTIFY payload arrives

    threading.Thread(target=publish_later).start()
    started = time.monotonic()
    assert waiters.until(Hint.EVENT, "w", "k", lambda: box.get("v"), timeout=30) == 7
    assert time.monotonic() - started < 20  # woken by the hint, not the 30 s timeout

    box.clear()

    async def read() -> int | None:
        return box.get("v")

    async def main() -> int | None:
        threading.Thread(target=publish_later).start()
        return await waiters.until_async(Hint.EVENT, "w", "k", read, timeout=30)

    assert asyncio.run(main()) == 7


def test_until_twins_give_up_at_the_timeout_or_when_halted() -> None:
    waiters = Waiters()

    async def nothing() -> None:
        return None

    assert waiters.until(Hint.DONE, "w", "", lambda: None, timeout=0.05) is None
    assert asyncio.run(waiters.until_async(Hint.DONE, "w", "", nothing, timeout=0.05)) is None
    assert waiters.until(Hint.DONE, "w", "", lambda: None, timeout=None, halted=lambda: True) is None
    assert asyncio.run(waiters.until_async(Hint.DONE, "w", "", nothing, timeout=None, halted=lambda: True)) is None
