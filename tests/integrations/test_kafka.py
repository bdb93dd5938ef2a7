"""@DBOS.kafka_consumer in one process against a real broker (Tansu): declaration errors, the
message a workflow receives, deduplication of redelivered messages, in-order processing."""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import spawn, wait_until
from tests.integrations.conftest import SHORT_SESSIONS, Broker
from tests.integrations.kafka_support import kafka_rows
from transact import DBOS, ConfigError, KafkaMessage
from transact.engine.registry import REGISTRY
from transact.integrations.kafka import kafka_workflow_id

pytestmark = pytest.mark.kafka

EXAMPLES = Path(__file__).parents[2] / "examples"
GOOD = {"bootstrap.servers": "127.0.0.1:9", "group.id": "g"}


@pytest.fixture
def registry() -> Iterator[None]:
    DBOS.destroy(destroy_registry=True)
    yield
    DBOS.destroy(destroy_registry=True)


@pytest.mark.parametrize(
    ("config", "topics", "in_order", "message"),
    [
        ({"bootstrap.servers": "x:1"}, ["t"], False, "needs 'group.id'"),
        ({"group.id": "g"}, ["t"], False, "needs 'bootstrap.servers'"),
        ({**GOOD, "group.id": ""}, ["t"], False, "needs 'group.id'"),
        ({**GOOD, "enable.auto.commit": True}, ["t"], False, "must not set 'enable.auto.commit'"),
        ({**GOOD, "enable.auto.commit": "true"}, ["t"], False, "must not set 'enable.auto.commit'"),
        ({**GOOD, "no.such.setting": 1}, ["t"], False, 'No such configuration property: "no.such.setting"'),
        ({**GOOD, "session.timeout.ms": "soon"}, ["t"], False, "session.timeout.ms"),
        ("bootstrap=x", ["t"], False, "config must be a dict"),
        (GOOD, [], False, "non-empty list of topic names"),
        (GOOD, "orders", False, "non-empty list of topic names"),
        (GOOD, ["bad topic"], False, "'bad topic' is not a valid Kafka topic name"),
        (GOOD, [7], False, "7 is not a valid Kafka topic name"),
        (GOOD, ["t"], "yes", "in_order must be True or False"),
    ],
)
def test_invalid_declarations_fail_at_the_decorator(
    registry: None, config: Any, topics: Any, in_order: Any, message: str
) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
        DBOS.kafka_consumer(config, topics, in_order=in_order)
    assert REGISTRY.kafka_consumers == []


def test_consumer_must_be_a_one_argument_workflow(registry: None) -> None:
    def plain(msg: KafkaMessage) -> None:
        pass

    with pytest.raises(ConfigError, match=r"stacked above @DBOS.workflow\(\).*'.*plain' is not a workflow"):
        DBOS.kafka_consumer(GOOD, ["t"])(plain)

    @DBOS.workflow()
    def two(msg: KafkaMessage, other: int) -> None:
        pass

    with pytest.raises(ConfigError, match="must take exactly one argument, the KafkaMessage"):
        DBOS.kafka_consumer(GOOD, ["t"])(two)
    assert REGISTRY.kafka_consumers == []


def test_two_consumers_of_one_topic_in_one_group_are_refused(registry: None) -> None:
    @DBOS.kafka_consumer(GOOD, ["orders", "refunds"])
    @DBOS.workflow()
    def first(msg: KafkaMessage) -> None:
        pass

    with pytest.raises(ConfigError, match=r"both consume topic 'refunds' in group 'g'.*its own 'group\.id'"):

        @DBOS.kafka_consumer(GOOD, ["refunds"])
        @DBOS.workflow()
        def second(msg: KafkaMessage) -> None:
            pass

    @DBOS.kafka_consumer({**GOOD, "group.id": "other"}, ["refunds"])  # another group: fine
    @DBOS.workflow()
    def third(msg: KafkaMessage) -> None:
        pass

    assert [spec.info.name for spec in REGISTRY.kafka_consumers] == [first.__qualname__, third.__qualname__]


def test_missing_confluent_kafka_names_the_extra(registry: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "confluent_kafka", None)  # as if it were not installed
    with pytest.raises(
        ImportError, match=r"needs the confluent-kafka package; install it with pip install 'transact\[kafka\]'"
    ):
        DBOS.kafka_consumer(GOOD, ["t"])
    assert REGISTRY.kafka_consumers == []


def test_each_message_starts_one_workflow_and_redeliveries_start_none(
    registry: None, config: dict[str, Any], kafka: Broker
) -> None:
    topic = kafka.create_topic(partitions=2)
    consumer_config = kafka.consumer_config()
    group = str(consumer_config["group.id"])
    runs: list[KafkaMessage] = []

    @DBOS.kafka_consumer(consumer_config, [topic])  # declared before DBOS() and launch()
    @DBOS.workflow()
    def handle(msg: KafkaMessage) -> str:
        runs.append(msg)
        return (msg.value or b"").decode().upper()

    messages: list[tuple[bytes | None, bytes]] = [(f"k{i}".encode(), f"v{i}".encode()) for i in range(19)]
    messages.append((None, b"no key"))
    before = int(time.time() * 1000) - 60_000
    sent = kafka.produce(topic, messages, headers=[("source", b"test"), ("empty", None)])

    DBOS(config=config)
    DBOS.launch()
    ids = {kafka_workflow_id(group, topic, d.partition, d.offset): d for d in sent}
    wait_until(lambda: kafka.committed(topic, group, 2) == 20, timeout=30, interval=0.1, what="20 commits")
    for wid, delivered in ids.items():
        assert DBOS.retrieve_workflow(wid).get_result(timeout=10) == messages[sent.index(delivered)][1].decode().upper()
    assert len(runs) == 20
    by_offset = {(m.partition, m.offset): m for m in runs}
    for d, (key, value) in zip(sent, messages, strict=True):
        msg = by_offset[(d.partition, d.offset)]
        assert (msg.topic, msg.key, msg.value) == (topic, key, value)
        assert msg.headers == [("source", b"test"), ("empty", None)]
        assert msg.timestamp is not None and msg.timestamp >= before
    DBOS.destroy()

    # Rewind the group as a crash before the commits would have left it: every message comes
    # again, and every start finds its workflow already recorded.
    kafka.rewind(topic, group, 2)
    assert kafka.committed(topic, group, 2) == 0
    DBOS(config=config)
    DBOS.launch()
    wait_until(lambda: kafka.committed(topic, group, 2) == 20, timeout=30, interval=0.1, what="20 commits again")
    assert len(runs) == 20, "no workflow ran twice"
    assert set(kafka_rows(config["system_database_url"])) == set(ids)


def test_in_order_runs_each_partition_one_workflow_at_a_time(dbos: type[DBOS], kafka: Broker, db_url: str) -> None:
    topic = kafka.create_topic(partitions=2)
    config = kafka.consumer_config()
    group = str(config["group.id"])
    lock = threading.Lock()
    events: list[tuple[str, int, int]] = []
    release = threading.Event()

    @DBOS.kafka_consumer(config, [topic], in_order=True)  # declared after launch()
    @DBOS.workflow()
    def ordered(msg: KafkaMessage) -> None:
        with lock:
            events.append(("start", msg.partition, msg.offset))
        if (msg.partition, msg.offset) == (0, 0):
            release.wait(30)  # holds up partition 0 only
        time.sleep(0.01)  # widen the window in which an overlap would show
        with lock:
            events.append(("end", msg.partition, msg.offset))

    for partition in (0, 1):
        kafka.produce(topic, [(None, f"{partition}-{i}".encode()) for i in range(8)], partition=partition)
    try:
        # Partition 1 finishes while partition 0 waits on its first workflow: nothing after it has
        # started, and its offset is not committed until that workflow finishes.
        wait_until(lambda: sum(e[0] == "end" and e[1] == 1 for e in events) == 8, timeout=30, what="partition 1")
        wait_until(lambda: kafka.committed(topic, group, 2) == 8, timeout=10, interval=0.1, what="8 commits")
        assert [e for e in events if e[1] == 0] == [("start", 0, 0)]
        assert set(kafka_rows(db_url)) == {
            kafka_workflow_id(group, topic, p, o) for p, o in [(0, 0), *((1, i) for i in range(8))]
        }
    finally:
        release.set()
    wait_until(lambda: len(events) == 32, timeout=30, interval=0.05, what="16 workflows")
    for partition in (0, 1):
        mine = [(kind, offset) for kind, p, offset in events if p == partition]
        assert mine == [(kind, offset) for offset in range(8) for kind in ("start", "end")]
    wait_until(lambda: kafka.committed(topic, group, 2) == 16, timeout=10, what="16 commits")


def test_async_workflow_consumer(dbos: type[DBOS], kafka: Broker) -> None:
    topic = kafka.create_topic(partitions=1)
    config = kafka.consumer_config()
    seen: list[bytes | None] = []

    @DBOS.kafka_consumer(config, [topic])
    @DBOS.workflow()
    async def handle(msg: KafkaMessage) -> int:
        seen.append(msg.value)
        return msg.offset

    sent = kafka.produce(topic, [(None, b"a"), (None, b"b"), (None, b"c")])
    wait_until(lambda: kafka.committed(topic, str(config["group.id"]), 1) == 3, timeout=30, what="3 commits")
    for d in sent:
        assert (
            DBOS.retrieve_workflow(kafka_workflow_id(str(config["group.id"]), topic, 0, d.offset)).get_result(
                timeout=10
            )
            == d.offset
        )
    assert sorted(seen) == [b"a", b"b", b"c"]


def test_example_kafka_consumer_processes_each_order_once(db_url: str, kafka: Broker, tmp_path: Path) -> None:
    topic = kafka.create_topic(partitions=2, prefix="orders")
    group = f"orders-{uuid.uuid4().hex[:8]}"
    orders = [{"order_id": i, "sku": f"sku-{i}", "quantity": i + 1} for i in range(6)]
    sent = kafka.produce(topic, [(None, json.dumps(order).encode()) for order in orders])
    env = {
        "TRANSACT_SYSTEM_DATABASE_URL": db_url,
        "KAFKA_BOOTSTRAP": kafka.bootstrap,
        "KAFKA_TOPIC": topic,
        "KAFKA_GROUP": group,
        "KAFKA_CONFIG": json.dumps(SHORT_SESSIONS),
    }
    app = spawn(EXAMPLES / "kafka_consumer.py", env=env, cwd=tmp_path)
    try:
        wait_until(lambda: kafka.committed(topic, group, 2) == 6, timeout=30, interval=0.1, what="6 commits")
        ids = {kafka_workflow_id(group, topic, d.partition, d.offset) for d in sent}
        wait_until(lambda: {s for s, _, _ in kafka_rows(db_url).values()} == {"SUCCESS"}, timeout=10)
        assert set(kafka_rows(db_url)) == ids
    finally:
        app.send_signal(signal.SIGTERM)
        output, _ = app.communicate(timeout=20)
    assert app.returncode == 0, output
    for order in orders:
        assert f"order {order['order_id']}: reserved {order['quantity']} x sku-{order['order_id']}, warehouse" in output


def test_busy_process_pauses_and_resumes_its_partitions(
    registry: None, config: dict[str, Any], kafka: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    topic = kafka.create_topic(partitions=2)
    consumer_config = kafka.consumer_config()
    group = str(consumer_config["group.id"])
    release = threading.Event()

    @DBOS.kafka_consumer(consumer_config, [topic])
    @DBOS.workflow()
    def slow(msg: KafkaMessage) -> None:
        release.wait(30)

    DBOS(config={**config, "max_workflow_threads": 4})
    DBOS.launch()
    caplog.set_level(logging.INFO, logger="transact.kafka")
    kafka.produce(topic, [(None, b"first")] * 6)
    wait_until(lambda: kafka.committed(topic, group, 2) == 6, timeout=30, interval=0.1, what="6 commits")
    kafka.produce(topic, [(None, b"second")] * 6)  # arrives while every workflow thread is busy
    release.set()
    wait_until(lambda: kafka.committed(topic, group, 2) == 12, timeout=30, interval=0.1, what="12 commits")
    rows = kafka_rows(config["system_database_url"])
    wait_until(lambda: {s for s, _, _ in kafka_rows(config["system_database_url"]).values()} == {"SUCCESS"})
    assert len(rows) == 12
    assert not [r for r in caplog.records if "revoked" in r.getMessage()], "the consumer stayed in its group"
