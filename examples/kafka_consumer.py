"""Kafka event processing, exactly once: every message starts one durable workflow.

Each message's workflow id is derived from the consumer group, topic, partition and offset, and
the offset is committed only after that workflow is recorded. If the process dies anywhere, the
restarted consumer gets the uncommitted messages again, finds their workflows already recorded
(and resumes them if unfinished), and starts nothing twice.

Run it against a broker (SQLite file ./order-processor.sqlite, or set TRANSACT_SYSTEM_DATABASE_URL):

    pip install 'transact[kafka]'
    KAFKA_BOOTSTRAP=localhost:9092 python examples/kafka_consumer.py
    echo '{"order_id": 1, "sku": "lamp", "quantity": 2}' | kcat -P -b localhost:9092 -t orders

KAFKA_TOPIC and KAFKA_GROUP choose the topic (default ``orders``) and the consumer group;
KAFKA_CONFIG adds consumer settings as JSON, e.g. '{"session.timeout.ms": 6000}'.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
from typing import Any

from transact import DBOS, KafkaMessage

config = {
    "bootstrap.servers": os.environ.get("KAFKA_BOOTSTRAP", "localhost:9092"),
    "group.id": os.environ.get("KAFKA_GROUP", "order-processor"),
    **json.loads(os.environ.get("KAFKA_CONFIG", "{}")),  # any other consumer setting
}
topic = os.environ.get("KAFKA_TOPIC", "orders")


@DBOS.step()
def reserve_stock(sku: str, quantity: int) -> str:
    """Stand-in for a call to an inventory service."""
    return f"reserved {quantity} x {sku}"


@DBOS.step()
def notify_warehouse(order_id: int, reservation: str) -> None:
    DBOS.logger.info("order %s: %s, warehouse notified", order_id, reservation)


@DBOS.kafka_consumer(config, [topic])
@DBOS.workflow()
def process_order(msg: KafkaMessage) -> dict[str, Any]:
    order = json.loads(msg.value or b"{}")
    reservation = reserve_stock(order["sku"], order["quantity"])
    notify_warehouse(order["order_id"], reservation)
    return {"order_id": order["order_id"], "reservation": reservation}


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    DBOS(config={"name": "order-processor"})
    DBOS.launch()
    print(f"consuming {topic!r} as group {config['group.id']!r}; Ctrl-C to stop", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        DBOS.destroy()  # finishes the current batch, commits, leaves the group
