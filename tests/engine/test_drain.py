"""DBOS.drain_queues (+ async): returns once the served queues hold no ENQUEUED or PENDING work,
False at its timeout; only the queues this process listens to count."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from transact import DBOS, ConfigError, DBOSClient, Queue


@pytest.fixture
def app(config: dict[str, Any]) -> Iterator[dict[str, Any]]:
    DBOS.destroy(destroy_registry=True)
    DBOS(config={**config, "queue_poll_seconds": 30})
    yield config
    DBOS.destroy(destroy_registry=True)


def test_drain_waits_for_queued_work_and_times_out_while_blocked(app: dict[str, Any]) -> None:
    gate = threading.Event()
    queue = Queue("drained", concurrency=1)

    @DBOS.workflow()
    def job(x: int) -> int:
        gate.wait(20)
        return x

    DBOS.launch()
    assert DBOS.drain_queues(timeout=5) is True  # nothing queued
    handles = [queue.enqueue(job, i) for i in range(4)]
    assert DBOS.drain_queues(timeout=0.2) is False  # blocked: still PENDING and ENQUEUED
    gate.set()
    assert DBOS.drain_queues(timeout=20) is True
    assert all(h.get_status().status == "SUCCESS" for h in handles)
    with pytest.raises(ConfigError, match="drain_queues timeout"):
        DBOS.drain_queues(timeout=-1)


def test_drain_async_and_only_listened_queues_count(app: dict[str, Any]) -> None:
    served = Queue("served")
    Queue("elsewhere")

    @DBOS.workflow()
    async def job(x: int) -> int:
        return x

    DBOS.listen_queues([served])
    DBOS.launch()
    client = DBOSClient(system_database_url=app["system_database_url"])
    try:
        client.enqueue({"queue_name": "elsewhere", "workflow_name": job.__qualname__}, 1)  # never served here
        handles = [client.enqueue({"queue_name": "served", "workflow_name": job.__qualname__}, i) for i in range(5)]

        async def drained() -> bool:
            return await DBOS.drain_queues_async(timeout=20)

        assert asyncio.run(drained()) is True
        assert sorted(h.get_result() for h in handles) == [0, 1, 2, 3, 4]
        assert len(DBOS.list_queued_workflows(queue_name="elsewhere")) == 1
    finally:
        client.destroy()
