"""Kafka exactly once with two consumer processes in one group, one SIGKILLed midway: the
survivor takes over its partitions (redelivery) and its unfinished workflows (recovery)."""

from __future__ import annotations

import os
import signal
import uuid
from pathlib import Path

import pytest

from tests.conftest import wait_until
from tests.integrations.conftest import Broker
from tests.integrations.kafka_support import (
    App,
    N,
    assert_exactly_once,
    effect_pids,
    kafka_rows,
    produce_keys,
    wait_all_done,
)

pytestmark = pytest.mark.kafka


def test_two_consumers_in_one_group_one_killed_midway(db_url: str, kafka: Broker, side_log: Path) -> None:
    topic = kafka.create_topic(partitions=4)
    group = f"g-{uuid.uuid4().hex[:8]}"
    a = App(db_url, kafka, topic, group, side_log)
    # B starts once A has created the database: two processes creating one SQLite file at the
    # same instant can fail in PRAGMA journal_mode=WAL ("database is locked"), a core issue.
    wait_until(lambda: "READY" in a.lines or a.proc.poll() is not None, timeout=30, what="A launched")
    b = App(db_url, kafka, topic, group, side_log)
    try:

        def split() -> bool:
            pa, pb = a.assignment(), b.assignment()
            return bool(pa) and bool(pb) and not (pa & pb) and (pa | pb) == {0, 1, 2, 3}  # type: ignore[operator]

        wait_until(split, timeout=40, interval=0.1, what="both consumers sharing the partitions")
        # Half the messages first, so the kill surely lands midway: both consumers are working.
        sent = produce_keys(kafka, topic, 0, N // 2)
        wait_until(
            lambda: len(kafka_rows(db_url)) >= 300 and effect_pids(side_log) == {a.proc.pid, b.proc.pid},
            timeout=30,
            interval=0.02,
            what="300 workflows, side effects from both consumers",
        )
        os.kill(a.proc.pid, signal.SIGKILL)
        assert a.proc.wait(10) == -signal.SIGKILL
        sent += produce_keys(kafka, topic, N // 2, N)
        wait_all_done(db_url, kafka, topic, group, 4)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- a:\n{a.output()}\n--- b:\n{b.output()}") from None
    finally:
        a.stop()
        b.stop()
    assert_exactly_once(db_url, kafka, topic, group, sent, side_log)
