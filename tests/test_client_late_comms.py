"""DBOSClient's ``read_stream_offset`` and ``send_to_forks`` (``_client_late_comms.py``) from a
process that never launches, on both databases: forks waiting in ``recv`` in a real worker
subprocess, and a stream whose items this test appends through the store."""

from __future__ import annotations

import asyncio
import subprocess
import threading
from typing import Any

import pytest

from tests import test_client
from tests.conftest import wait_until
from transact import DBOSClient, WorkflowNotFoundError
from transact.engine import serialization

client, worker = test_client.client, test_client.worker  # the same fixtures as the client tests


def _waiting(client: DBOSClient, wid: str) -> bool:
    return any(s["function_name"] == "DBOS.recv.deadline" for s in client.list_workflow_steps(wid))


def test_client_send_to_forks(client: DBOSClient, worker: subprocess.Popen[str]) -> None:
    client.enqueue({"workflow_name": "echo_event", "queue_name": "client-q", "workflow_id": "cf-orig"})
    wait_until(lambda: _waiting(client, "cf-orig"), timeout=60, what="cf-orig waiting in recv")
    client.fork_workflow("cf-orig", 1, new_workflow_id="cf-fork", queue_name="client-q")
    client.fork_workflow("cf-fork", 1, new_workflow_id="cf-fork-fork", queue_name="client-q")
    for wid in ("cf-fork", "cf-fork-fork"):
        wait_until(lambda wid=wid: _waiting(client, wid), timeout=60, what=f"{wid} waiting in recv")

    assert client.send_to_forks("cf-orig", 21, topic="in") == ["cf-orig", "cf-fork", "cf-fork-fork"]
    for wid in ("cf-orig", "cf-fork", "cf-fork-fork"):
        assert client.get_event(wid, "out", timeout_seconds=30) == 42
        assert client.retrieve_workflow(wid).get_result(timeout=30) == 21
    assert asyncio.run(client.send_to_forks_async("cf-orig", 1, "in")) == []  # all finished now
    with pytest.raises(WorkflowNotFoundError, match=r"DBOSClient\.send_to_forks: no workflow with id 'nobody'"):
        client.send_to_forks("nobody", 1)


def test_client_read_stream_offset(client: DBOSClient) -> None:
    # A workflow no process runs (its queue has no worker); its stream is written through the store.
    client.enqueue({"workflow_name": "writer", "queue_name": "idle-q", "workflow_id": "cs-w"})
    store = client.store

    def append(value: Any, closed: bool = False) -> None:
        data = None if closed else serialization.dumps(value, what="item")
        store.stream_append(workflow_id="cs-w", key="s", value=data, closed=closed)

    assert client.read_stream_offset("cs-w", "s") == 0
    append("old-0")
    append("old-1")
    offset = client.read_stream_offset("cs-w", "s")
    assert offset == 2 and asyncio.run(client.read_stream_offset_async("cs-w", "s")) == 2
    got: list[Any] = []
    reader = threading.Thread(target=lambda: got.extend(client.read_stream("cs-w", "s", offset=offset)))
    reader.start()
    append("new-0")
    append(None, closed=True)
    reader.join(timeout=30)
    assert not reader.is_alive() and got == ["new-0"]
    assert client.read_stream_offset("cs-w", "s") == 3
    with pytest.raises(WorkflowNotFoundError, match=r"DBOSClient\.read_stream_offset: no workflow with id 'nobody'"):
        asyncio.run(client.read_stream_offset_async("nobody", "s"))
