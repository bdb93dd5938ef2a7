"""Kafka exactly once across a crash between recording a message's workflow and committing its
offset: real broker (Tansu), a real consumer process that SIGKILLs itself, then a restart."""

from __future__ import annotations

import signal
import uuid
from pathlib import Path

import pytest

from tests.integrations.conftest import Broker
from tests.integrations.kafka_support import (
    App,
    assert_exactly_once,
    assert_in_partition_order,
    kafka_rows,
    produce_keys,
    wait_all_done,
)

pytestmark = pytest.mark.kafka


@pytest.mark.parametrize("in_order", [False, True], ids=["parallel", "in_order"])
def test_crash_between_insert_and_commit_redelivers_and_deduplicates(
    db_url: str, kafka: Broker, side_log: Path, in_order: bool
) -> None:
    topic = kafka.create_topic(partitions=3)
    group = f"g-{uuid.uuid4().hex[:8]}"
    sent = produce_keys(kafka, topic)

    mode = {"IN_ORDER": "1" if in_order else "0"}
    first = App(db_url, kafka, topic, group, side_log, CRASH_BEFORE_COMMIT_AFTER="400", **mode)
    try:
        assert first.proc.wait(60) == -signal.SIGKILL, first.output()
    finally:
        first.stop()
    recorded = len(kafka_rows(db_url))
    committed = kafka.committed(topic, group, 3)
    assert recorded >= 400
    assert committed < recorded, "the crash left recorded workflows whose offsets were not committed"

    second = App(db_url, kafka, topic, group, side_log, **mode)
    try:
        wait_all_done(db_url, kafka, topic, group, 3)
    except AssertionError:
        raise AssertionError(second.output()) from None
    finally:
        second.stop()
    assert_exactly_once(db_url, kafka, topic, group, sent, side_log)
    if in_order:
        assert_in_partition_order(side_log)
