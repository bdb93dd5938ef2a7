"""@DBOS.kafka_consumer in one process against a real broker (Tansu): declaration errors, the
message a workflow receives, deduplication of redelivered messages, in-order processing."""

from __future__ import annotations

import dataclasses
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
from transact import DBOS, ConfigError, KafkaMessage, Queue
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


# -- ordering, batch_size, queue_name, message fields ---------------------------------------------
@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"ordering": "global"}, "ordering must be 'partition', 'topic' or None, got 'global'"),
        ({"in_order": True, "ordering": "topic"}, "both in_order=True and ordering='topic'"),
        ({"batch_size": 0}, "batch_size must be a whole number of messages per fetch from 1 to 100000, got 0"),
        ({"batch_size": "10"}, "batch_size must be a whole number.*got '10'"),
        ({"batch_size": True}, "batch_size must be a whole number.*got True"),
        ({"queue_name": ""}, "queue_name must be the name of a queue"),
        ({"queue_name": 3}, "queue_name must be the name of a queue.*got 3"),
    ],
)
def test_invalid_consumer_options_fail_at_the_decorator(registry: None, options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        DBOS.kafka_consumer(GOOD, ["t"], **options)
    assert REGISTRY.kafka_consumers == []


class Tracker:
    """Starts and ends of the consumer's workflows, and how many ran at once at most."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events: list[tuple[str, int, int]] = []
        self.active = 0
        self.most_active = 0

    def begin(self, msg: KafkaMessage) -> None:
        with self.lock:
            self.events.append(("start", msg.partition, msg.offset))
            self.active += 1
            self.most_active = max(self.most_active, self.active)

    def end(self, msg: KafkaMessage) -> None:
        with self.lock:
            self.active -= 1
            self.events.append(("end", msg.partition, msg.offset))

    def ends(self, partition: int | None = None) -> int:
        return sum(kind == "end" and partition in (None, p) for kind, p, _ in self.events)

    def offsets(self, partition: int) -> list[tuple[str, int]]:
        return [(kind, offset) for kind, p, offset in self.events if p == partition]


def fetched(caplog: pytest.LogCaptureFixture) -> list[int]:
    """Sizes of the consumer's fetches, from its debug log."""
    return [
        int(r.getMessage().rsplit(" ", 2)[1])
        for r in caplog.records
        if r.name == "transact.kafka" and r.getMessage().endswith(" messages") and " fetched " in r.getMessage()
    ]


def test_topic_ordering_runs_one_workflow_of_the_topic_at_a_time(
    dbos: type[DBOS], kafka: Broker, db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="transact.kafka")
    topic = kafka.create_topic(partitions=2)
    config = kafka.consumer_config()
    group = str(config["group.id"])
    tracker = Tracker()
    release = threading.Event()

    @DBOS.kafka_consumer(config, [topic], ordering="topic")
    @DBOS.workflow()
    def serial(msg: KafkaMessage) -> None:
        tracker.begin(msg)
        if len(tracker.events) == 1:
            release.wait(30)  # the first workflow holds up the whole topic
        time.sleep(0.01)  # widen the window in which an overlap would show
        tracker.end(msg)

    for partition in (0, 1):
        kafka.produce(topic, [(None, f"{partition}-{i}".encode()) for i in range(6)], partition=partition)
    try:
        # Every message of both partitions is fetched while the first workflow waits: none other
        # started, none other is recorded, and nothing is committed.
        wait_until(lambda: sum(fetched(caplog)) == 12 and tracker.events, timeout=30, what="12 fetched, 1 started")
        assert [kind for kind, _, _ in tracker.events] == ["start"]
        assert len(kafka_rows(db_url)) == 1
        assert kafka.committed(topic, group, 2) == 0
    finally:
        release.set()
    wait_until(lambda: tracker.ends() == 12, timeout=30, interval=0.05, what="12 workflows")
    assert tracker.most_active == 1, "the workflows of one topic never overlap, across its partitions"
    for partition in (0, 1):
        assert tracker.offsets(partition) == [(kind, offset) for offset in range(6) for kind in ("start", "end")]
    wait_until(lambda: kafka.committed(topic, group, 2) == 12, timeout=10, interval=0.1, what="12 commits")


def test_partition_ordering_runs_partitions_side_by_side(dbos: type[DBOS], kafka: Broker) -> None:
    topic = kafka.create_topic(partitions=2)
    config = kafka.consumer_config()
    tracker = Tracker()
    release = threading.Event()

    @DBOS.kafka_consumer(config, [topic], ordering="partition")
    @DBOS.workflow()
    def per_partition(msg: KafkaMessage) -> None:
        tracker.begin(msg)
        if (msg.partition, msg.offset) == (0, 0):
            release.wait(30)  # holds up partition 0 only
        tracker.end(msg)

    # Partition 0's first message is running (and held) before partition 1 gets any, so partition 1
    # can only finish by running beside it, whatever order the consumer is assigned partitions in.
    kafka.produce(topic, [(None, f"0-{i}".encode()) for i in range(5)], partition=0)
    try:
        wait_until(lambda: tracker.offsets(0) == [("start", 0)], timeout=30, what="partition 0's first message")
        kafka.produce(topic, [(None, f"1-{i}".encode()) for i in range(5)], partition=1)
        wait_until(lambda: tracker.ends(1) == 5, timeout=30, what="partition 1 while partition 0 waits")
        assert tracker.offsets(0) == [("start", 0)]
    finally:
        release.set()
    wait_until(lambda: tracker.ends() == 10, timeout=30, interval=0.05, what="10 workflows")
    assert tracker.most_active == 2
    for partition in (0, 1):
        assert tracker.offsets(partition) == [(kind, offset) for offset in range(5) for kind in ("start", "end")]
    wait_until(lambda: kafka.committed(topic, str(config["group.id"]), 2) == 10, timeout=10, what="10 commits")


def test_batch_size_is_the_number_of_messages_per_fetch(
    registry: None, config: dict[str, Any], kafka: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="transact.kafka")
    topic = kafka.create_topic(partitions=1)
    consumer_config = kafka.consumer_config()
    group = str(consumer_config["group.id"])
    seen: list[int] = []

    @DBOS.kafka_consumer(consumer_config, [topic], batch_size=3)
    @DBOS.workflow()
    def handle(msg: KafkaMessage) -> None:
        seen.append(msg.offset)

    kafka.produce(topic, [(None, f"v{i}".encode()) for i in range(10)])  # all there before the first fetch
    DBOS(config=config)
    DBOS.launch()
    wait_until(lambda: kafka.committed(topic, group, 1) == 10, timeout=30, interval=0.1, what="10 commits")
    sizes = fetched(caplog)
    assert sum(sizes) == 10 and max(sizes) == 3, sizes
    wait_until(lambda: len(seen) == 10, timeout=10, what="10 workflows")
    assert sorted(seen) == list(range(10)), "one workflow per message, also in batches"


def test_queue_name_enqueues_each_message_on_the_queue(registry: None, config: dict[str, Any], kafka: Broker) -> None:
    topic = kafka.create_topic(partitions=2)
    consumer_config = kafka.consumer_config()
    group = str(consumer_config["group.id"])
    queue = Queue(f"kafka-{uuid.uuid4().hex[:6]}", concurrency=1)
    tracker = Tracker()

    @DBOS.kafka_consumer(consumer_config, [topic], queue_name=queue.name)
    @DBOS.workflow()
    def queued(msg: KafkaMessage) -> str:
        tracker.begin(msg)
        time.sleep(0.01)
        tracker.end(msg)
        return (msg.value or b"").decode()

    sent = kafka.produce(topic, [(None, f"v{i}".encode()) for i in range(8)])
    DBOS(config=config)
    DBOS.launch()
    wait_until(lambda: kafka.committed(topic, group, 2) == 8, timeout=30, interval=0.1, what="8 commits")
    for i, d in enumerate(sent):
        handle = DBOS.retrieve_workflow(kafka_workflow_id(group, topic, d.partition, d.offset))
        assert handle.get_result(timeout=20) == f"v{i}"
        assert handle.get_status().queue_name == queue.name
    assert tracker.most_active == 1, "the queue's concurrency limit applies to the messages' workflows"


def test_an_unknown_queue_holds_the_consumer_back_with_a_clear_error(
    dbos: type[DBOS], kafka: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    topic = kafka.create_topic(partitions=1)
    config = kafka.consumer_config()
    kafka.produce(topic, [(None, b"waits")])

    @DBOS.kafka_consumer(config, [topic], queue_name="no-such-queue")
    @DBOS.workflow()
    def handle(msg: KafkaMessage) -> None:
        pass

    wait_until(
        lambda: any(
            "waits for queue 'no-such-queue': declare it with Queue(" in r.getMessage() for r in caplog.records
        ),
        timeout=10,
        what="the error naming the queue",
    )
    assert kafka.committed(topic, str(config["group.id"]), 1) == 0


def test_message_carries_every_field_dbos_documents(dbos: type[DBOS], kafka: Broker) -> None:
    assert {f.name for f in dataclasses.fields(KafkaMessage)} >= {
        "topic",
        "partition",
        "offset",
        "key",
        "value",
        "headers",
        "timestamp",
        "latency",
        "leader_epoch",
    }
    topic = kafka.create_topic(partitions=1)
    config = kafka.consumer_config()
    received: list[KafkaMessage] = []

    @DBOS.kafka_consumer(config, [topic])
    @DBOS.workflow()
    def handle(msg: KafkaMessage) -> None:
        received.append(msg)

    before = int(time.time() * 1000) - 60_000
    (d,) = kafka.produce(topic, [(b"k", b"v")], headers=[("h", b"x")])
    wait_until(lambda: received, timeout=30, what="the message")
    msg = received[0]
    assert (msg.topic, msg.partition, msg.offset, msg.key, msg.value) == (topic, 0, d.offset, b"k", b"v")
    assert msg.headers == [("h", b"x")]
    assert msg.timestamp is not None and msg.timestamp >= before
    assert msg.latency is None, "latency is measured by producers only"
    assert msg.leader_epoch is None or msg.leader_epoch >= 0
    # The workflow's recorded input is the same message, every field included.
    status = DBOS.retrieve_workflow(kafka_workflow_id(str(config["group.id"]), topic, 0, d.offset)).get_status()
    assert status.input == ((msg,), {})
