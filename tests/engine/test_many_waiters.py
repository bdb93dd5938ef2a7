"""10,000 async workflows blocked at once (half in ``recv_async``, half in ``sleep_async``) in one
process hold a bounded number of threads and database connections, and all wake correctly: the
receivers when their message arrives, the sleepers when their time is up."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from typing import Any

import psycopg
import pytest

from transact import DBOS

N = 10_000
SLEEP_S = 3.0
CHUNK = 500
MAX_EXTRA_THREADS = 24
MAX_CONNECTIONS = 24


def connections(db_url: str) -> int:
    """Open connections to the system database: server sessions (Postgres) or file handles (SQLite)."""
    if db_url.startswith("sqlite"):
        path = os.path.realpath(db_url.removeprefix("sqlite:///"))
        fds = os.listdir("/proc/self/fd")
        return sum(1 for fd in fds if _target(fd) == path)
    dbname = db_url.rsplit("/", 1)[1]
    with psycopg.connect(db_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (dbname,)
        ).fetchone()
    assert row is not None
    return int(row[0])


def _target(fd: str) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return ""


def blocked(db_url: str) -> int:
    """Workflows that recorded their first step (recv's deadline or sleep's wake-up time)."""
    rt = DBOS._rt()
    row = rt.store.read(lambda tx: tx.one("SELECT count(DISTINCT workflow_id) FROM operation_outputs"))
    assert row is not None
    return int(row[0])


def statuses() -> dict[str, int]:
    rows = DBOS._rt().store.read(lambda tx: tx.all("SELECT status, count(*) FROM workflow_status GROUP BY status"))
    return {str(status): int(count) for status, count in rows}


@pytest.mark.timeout(300)  # 10,000 workflows on a loaded machine; the test keeps its own deadlines
def test_ten_thousand_waiting_workflows_stay_bounded_and_all_wake(dbos: type[DBOS], db_url: str) -> None:
    @DBOS.workflow()
    async def receiver(i: int) -> Any:
        return await DBOS.recv_async("wake", timeout_seconds=600)  # past the test's own deadlines

    @DBOS.workflow()
    async def sleeper(i: int, seconds: float) -> int:
        await DBOS.sleep_async(seconds)
        return i

    threads_before = threading.active_count()
    conns_before = connections(db_url)
    samples: list[tuple[int, int]] = []

    async def wait_blocked(count: int, deadline: float) -> None:
        while (seen := await asyncio.to_thread(blocked, db_url)) < count:
            assert time.monotonic() < deadline, f"only {seen} of {count} workflows blocked"
            samples.append((threading.active_count(), connections(db_url)))
            await asyncio.sleep(0.2)
        samples.append((threading.active_count(), connections(db_url)))

    async def main() -> tuple[list[Any], list[Any], dict[str, float]]:
        started = time.monotonic()
        receivers: list[Any] = []
        sleepers: list[Any] = []
        for first in range(0, N // 2, CHUNK):  # concurrent starts share commits
            chunk = range(first, min(first + CHUNK, N // 2))
            receivers += await asyncio.gather(*(DBOS.start_workflow_async(receiver, i) for i in chunk))
        deadline = started + 120  # a loaded CI machine needed more than 60 s on Postgres
        await wait_blocked(N // 2, deadline)
        # The sleepers all wake at about the same time, after every workflow is blocked. Starting and
        # blocking them is the same work as the receivers' just measured, so twice that time plus a
        # margin leaves room for a machine that slows down meanwhile (it may be shared).
        wake_at = time.monotonic() + SLEEP_S + 2 * (time.monotonic() - started)
        for first in range(0, N // 2, CHUNK):
            chunk = range(first, min(first + CHUNK, N // 2))
            seconds = wake_at - time.monotonic()
            sleepers += await asyncio.gather(*(DBOS.start_workflow_async(sleeper, i, seconds) for i in chunk))
        await wait_blocked(N, time.monotonic() + 120)
        blocked_after = time.monotonic() - started
        # Every workflow waits; none has been woken yet.
        assert statuses() == {"PENDING": N}, f"{time.monotonic() - wake_at:.1f} s past the sleepers' time"
        await DBOS.send_bulk_async([(h.workflow_id, f"msg-{i}", "wake") for i, h in enumerate(receivers)])
        got = await asyncio.gather(*(h.get_result(timeout=60) for h in receivers))
        samples.append((threading.active_count(), connections(db_url)))
        slept = await asyncio.gather(*(h.get_result(timeout=60) for h in sleepers))
        return got, slept, {"all blocked": blocked_after, "all woken": time.monotonic() - started}

    got, slept, times = asyncio.run(main())
    assert statuses() == {"SUCCESS": N}
    assert got == [f"msg-{i}" for i in range(N // 2)]
    assert slept == list(range(N // 2))
    peak_threads = max(t for t, _ in samples)
    peak_conns = max(c for _, c in samples)
    assert peak_threads - threads_before <= MAX_EXTRA_THREADS, (threads_before, samples)
    assert peak_conns - conns_before <= MAX_CONNECTIONS, (conns_before, samples)
    print(f"threads {threads_before} -> peak {peak_threads}; connections {conns_before} -> peak {peak_conns}; {times}")


def test_message_from_another_connection_wakes_its_receiver_at_once(dbos: type[DBOS], db_url: str) -> None:
    """Receivers do not wake on SQLite's "*": a message another process commits reaches them as
    its own hint (the poller), well before the safety-net poll."""
    from transact import DBOSClient

    @DBOS.workflow()
    def receiver() -> Any:
        return DBOS.recv("t", timeout_seconds=30)

    handle = DBOS.start_workflow(receiver)
    rows = wait_until_blocked(handle.workflow_id)
    assert rows == 1
    with DBOSClient(db_url) as client:
        sent = time.monotonic()
        client.send(handle.workflow_id, "hello", "t")
        assert handle.get_result(timeout=10) == "hello"
    assert time.monotonic() - sent < 1.5  # the first safety-net poll would come after 2 s


def wait_until_blocked(workflow_id: str) -> int:
    from tests.conftest import wait_until

    store = DBOS._rt().store
    return int(wait_until(lambda: len(store.steps_load(workflow_id)), what="recv to record its deadline"))
