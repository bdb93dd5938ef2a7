"""Helpers for the Kafka process tests: a consumer subprocess, the workflow rows, and the one
assertion every test ends with (exactly one workflow per message)."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import threading
from collections import Counter
from pathlib import Path

from tests.conftest import spawn, wait_until
from tests.integrations.conftest import APPS, SHORT_SESSIONS, Broker, Delivered
from transact.integrations.kafka import kafka_workflow_id
from transact.storage import open_store

N = 1000
APP = APPS / "kafka_app.py"


def kafka_rows(db_url: str) -> dict[str, tuple[str, int, str | None]]:
    """workflow id -> (status, recovery attempts, executor) for every Kafka workflow."""
    store = open_store(db_url)
    try:
        rows = store.read(
            lambda tx: tx.all(
                "SELECT workflow_id, status, recovery_attempts, executor_id FROM workflow_status "
                "WHERE workflow_id LIKE ?",
                ("kafka:%",),
            )
        )
    finally:
        store.close()
    return {str(r[0]): (str(r[1]), int(r[2]), r[3]) for r in rows}


class App:
    """A consumer subprocess whose output is collected by a thread (so its pipe never fills)."""

    def __init__(self, db_url: str, kafka: Broker, topic: str, group: str, log: Path, **env: str) -> None:
        env = {"KAFKA_CONFIG": json.dumps(SHORT_SESSIONS), **env}
        self.proc = spawn(APP, db_url, kafka.bootstrap, topic, group, str(log), env=env)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip())

    def assignment(self) -> set[int] | None:
        """Partitions of the latest assignment (None before the first one)."""
        latest: set[int] | None = None
        for line in self.lines:
            if " assigned: " in line:
                part = line.split(" assigned: ", 1)[1]
                latest = {int(p) for p in re.findall(r"\[(\d+)\]", part)}
            elif " revoked " in line:
                latest = set()
        return latest

    def output(self) -> str:
        return "\n".join(self.lines[-40:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(5)


def produce_keys(kafka: Broker, topic: str, start: int = 0, stop: int = N) -> list[Delivered]:
    """Messages keyed "start" .. "stop - 1"."""
    return kafka.produce(topic, [(str(i).encode(), f"value-{i}".encode()) for i in range(start, stop)])


def effect_pids(log: Path) -> set[int]:
    """The processes whose steps wrote side effects so far."""
    if not log.exists():
        return set()
    return {int(line.split()[2]) for line in log.read_text().splitlines() if line.count(" ") == 2}


def wait_all_done(db_url: str, kafka: Broker, topic: str, group: str, partitions: int) -> None:
    """Until every offset is committed and every workflow has finished."""
    wait_until(lambda: kafka.committed(topic, group, partitions) == N, timeout=60, interval=0.2, what="all offsets")
    wait_until(
        lambda: sum(s == "SUCCESS" for s, _, _ in kafka_rows(db_url).values()) >= N,
        timeout=40,
        interval=0.1,
        what="all workflows finished",
    )


def assert_in_partition_order(log: Path) -> None:
    """Side effects of one partition happened in offset order (in_order consumers)."""
    last: dict[str, int] = {}
    for line in log.read_text().splitlines():
        _, partition, offset = line.split()[1].rsplit(":", 2)
        assert int(offset) >= last.get(partition, -1), f"partition {partition}: offset {offset} ran out of order"
        last[partition] = int(offset)


def assert_exactly_once(db_url: str, kafka: Broker, topic: str, group: str, sent: list[Delivered], log: Path) -> None:
    expected = {d.key.decode(): kafka_workflow_id(group, topic, d.partition, d.offset) for d in sent if d.key}
    rows = kafka_rows(db_url)
    assert set(rows) == set(expected.values()), "one workflow per message, no more, no fewer"
    assert {status for status, _, _ in rows.values()} == {"SUCCESS"}
    effects = [line.split() for line in log.read_text().splitlines()]
    assert {key for key, _, _ in effects} == set(expected), "every message's side effect ran"
    for key, workflow_id, _ in effects:
        assert workflow_id == expected[key], f"message {key} was processed by {workflow_id}"
    # A step is at-least-once: it runs again only if its workflow was recovered after a crash.
    repeated = [key for key, count in Counter(key for key, _, _ in effects).items() if count > 1]
    for key in repeated:
        assert rows[expected[key]][1] >= 1, f"message {key} ran twice without a recovery"
