"""``transact._lib.backoff.Backoff``: growth, cap, jitter bounds, reset, budget, cancellation, log pacing."""

from __future__ import annotations

import random
import threading
import time

import pytest

from transact._lib.backoff import Backoff

GENEROUS_S = 5.0  # far below the 30 s un-jittered delays used to prove a wait ended early


def test_delays_grow_by_factor_from_initial_and_stop_at_cap() -> None:
    b = Backoff(initial=0.1, cap=1.0, factor=2.0, jitter=0)
    delays = [b.next_delay() for _ in range(8)]
    assert delays == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0, 1.0])
    assert b.attempts == 8


def test_other_factor_and_peek_does_not_advance() -> None:
    b = Backoff(initial=1.0, cap=50.0, factor=3.0, jitter=0)
    assert b.peek() == pytest.approx(1.0)
    assert b.peek() == pytest.approx(1.0)
    assert b.attempts == 0
    assert [b.next_delay() for _ in range(5)] == pytest.approx([1.0, 3.0, 9.0, 27.0, 50.0])
    assert b.peek() == pytest.approx(50.0)


@pytest.mark.parametrize("jitter", [0.1, 0.5, 0.9])
def test_jitter_keeps_each_delay_within_bounds(jitter: float) -> None:
    random.seed(12345)
    b = Backoff(initial=0.5, cap=8.0, factor=2.0, jitter=jitter)
    seen_low = seen_high = False
    for _ in range(2000):
        if b.attempts >= 8:
            b.reset()
        base = b.peek()
        got = b.next_delay()
        assert base * (1 - jitter) <= got <= base * (1 + jitter), (base, got)
        seen_low |= got < base
        seen_high |= got > base
    # jitter actually spreads delays on both sides of the schedule
    assert seen_low and seen_high


def test_jitter_does_not_change_the_underlying_schedule() -> None:
    random.seed(7)
    b = Backoff(initial=0.1, cap=0.4, factor=2.0, jitter=0.5)
    bases = []
    for _ in range(5):
        bases.append(b.peek())
        b.next_delay()
    assert bases == pytest.approx([0.1, 0.2, 0.4, 0.4, 0.4])


def test_reset_restarts_schedule_and_attempts() -> None:
    b = Backoff(initial=0.1, cap=10.0, factor=2.0, jitter=0)
    for _ in range(5):
        b.next_delay()
    assert b.attempts == 5
    assert b.peek() == pytest.approx(3.2)
    b.reset()
    assert b.attempts == 0
    assert b.peek() == pytest.approx(0.1)
    assert b.next_delay() == pytest.approx(0.1)
    assert b.attempts == 1


def test_no_budget_never_expires() -> None:
    b = Backoff(initial=0.01, cap=0.01)
    assert b.budget_s is None
    assert not b.expired()
    assert b.remaining() is None


def test_budget_expires_and_wait_returns_false() -> None:
    # Un-jittered delay of 30 s: only the 0.05 s budget can end the waits quickly.
    b = Backoff(initial=30.0, cap=30.0, jitter=0, budget_s=0.05)
    assert not b.expired()
    start = time.monotonic()
    deadline = start + GENEROUS_S
    results = []
    while time.monotonic() < deadline:
        ok = b.wait()
        results.append(ok)
        if not ok:
            break
    elapsed = time.monotonic() - start
    assert results and results[-1] is False, results
    assert b.expired()
    assert b.remaining() == 0.0
    assert elapsed < GENEROUS_S
    # once expired, wait() refuses immediately
    t0 = time.monotonic()
    assert b.wait() is False
    assert time.monotonic() - t0 < 1.0


def test_wait_sleeps_and_returns_true_without_cancel_or_budget() -> None:
    b = Backoff(initial=0.01, cap=0.01, jitter=0)
    t0 = time.monotonic()
    assert b.wait() is True
    assert time.monotonic() - t0 >= 0.009
    assert b.attempts == 1


def test_wait_returns_true_when_cancel_event_stays_clear() -> None:
    b = Backoff(initial=0.01, cap=0.01, jitter=0, cancel=threading.Event())
    assert b.wait() is True


def test_wait_returns_false_promptly_when_cancel_already_set() -> None:
    cancel = threading.Event()
    cancel.set()
    b = Backoff(initial=30.0, cap=30.0, jitter=0, cancel=cancel)
    t0 = time.monotonic()
    assert b.wait() is False
    assert time.monotonic() - t0 < GENEROUS_S


def test_wait_returns_false_promptly_when_cancelled_from_thread() -> None:
    cancel = threading.Event()
    b = Backoff(initial=30.0, cap=30.0, jitter=0, cancel=cancel)
    timer = threading.Timer(0.05, cancel.set)
    t0 = time.monotonic()
    timer.start()
    try:
        result = b.wait()
    finally:
        timer.cancel()
        timer.join(GENEROUS_S)
    elapsed = time.monotonic() - t0
    assert result is False
    assert elapsed < GENEROUS_S


@pytest.mark.parametrize(
    ("attempts", "expected"),
    [
        (0, False),
        (1, True),
        (2, False),
        (9, False),
        (10, True),
        (11, False),
        (49, False),
        (50, True),
        (51, False),
        (100, True),
        (150, True),
    ],
)
def test_should_log(attempts: int, expected: bool) -> None:
    b = Backoff(initial=0.01, cap=0.01)
    b.attempts = attempts
    assert b.should_log() is expected


def test_should_log_follows_next_delay_attempt_count() -> None:
    b = Backoff(initial=0.0, cap=0.0, jitter=0)
    logged = []
    for _ in range(100):
        b.next_delay()
        if b.should_log():
            logged.append(b.attempts)
    assert logged == [1, 10, 50, 100]
