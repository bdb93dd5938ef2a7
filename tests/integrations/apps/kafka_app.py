"""A consumer process for the Kafka crash tests.

usage: kafka_app.py DB_URL BOOTSTRAP TOPIC GROUP SIDE_EFFECT_LOG

Each message's workflow runs one step that appends "<key> <workflow id> <pid>" to the side-effect
log; IN_ORDER=1 makes it an in-order consumer. With CRASH_BEFORE_COMMIT_AFTER=N the process
SIGKILLs itself inside the offset commit that would bring the committed total to N: the workflows
behind those offsets are recorded but their offsets are not committed, the exact window
exactly-once has to survive.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading

import confluent_kafka

from transact import DBOS, KafkaMessage

db_url, bootstrap, topic, group, side_effects = sys.argv[1:6]

logging.basicConfig(stream=sys.stdout, level=logging.WARNING, format="%(name)s %(message)s")
logging.getLogger("transact.kafka").setLevel(logging.INFO)

crash_after = int(os.environ.get("CRASH_BEFORE_COMMIT_AFTER", "0"))
if crash_after:
    progress: dict[tuple[str, int], int] = {}

    class CrashingConsumer(confluent_kafka.Consumer):  # type: ignore[misc]
        def commit(self, *args: object, **kwargs: object) -> object:
            offsets = kwargs.get("offsets") or []
            for tp in offsets:  # type: ignore[attr-defined]
                progress[(tp.topic, tp.partition)] = tp.offset
            if sum(progress.values()) >= crash_after:
                print(f"CRASHING before committing offsets {offsets}", flush=True)
                os.kill(os.getpid(), signal.SIGKILL)
            return super().commit(*args, **kwargs)

    confluent_kafka.Consumer = CrashingConsumer  # type: ignore[misc]


@DBOS.step()
def side_effect(key: str) -> str:
    line = f"{key} {DBOS.workflow_id} {os.getpid()}\n"
    fd = os.open(side_effects, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())  # one small O_APPEND write: lines never interleave
    finally:
        os.close(fd)
    return key


extra = json.loads(os.environ.get("KAFKA_CONFIG", "{}"))  # session timeouts, from the test
consumer_config = {"bootstrap.servers": bootstrap, "group.id": group, **extra}


@DBOS.kafka_consumer(consumer_config, [topic], in_order=os.environ.get("IN_ORDER") == "1")
@DBOS.workflow()
def process(msg: KafkaMessage) -> str:
    assert msg.key is not None
    return side_effect(msg.key.decode())


DBOS(config={"name": "kafka-app", "system_database_url": db_url, "shutdown_timeout_seconds": 2})
DBOS.launch()
print("READY", flush=True)
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
stop.wait()
DBOS.destroy()
