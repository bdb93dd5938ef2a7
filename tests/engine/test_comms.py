"""Durable time and communication: sleep, send/recv, events, streams, on both databases."""

from __future__ import annotations

import asyncio
import threading
import time
from types import SimpleNamespace
from typing import Any

import pytest

from tests.conftest import wait_until
from transact import DBOS, NotInWorkflowError, SetWorkflowID, WorkflowCancelledError, WorkflowNotFoundError
from transact.engine import serialization
from transact.engine import workflow as wf
from transact.engine.clock import now_ms
from transact.errors import TransactError

TOLERANCE_S = 0.05  # clock granularity: a wait may end this much early by the wall clock


def steps(wid: str) -> list[tuple[str, Any]]:
    rows = DBOS._rt().store.steps_load(wid)
    return [(r.function_name, serialization.loads(r.output)) for _, r in sorted(rows.items())]


def replay(wid: str) -> Any:
    """Run a finished workflow again from its checkpoints (what recovery does after a crash)."""
    rt = DBOS._rt()
    rt.store.workflow_set_status(wid, "PENDING", now_ms())
    row = rt.store.workflow_get(wid)
    assert row is not None and wf.resume(rt, row, max_attempts_checked=True)
    return rt.await_result(wid)


def unread(wid: str) -> list[Any]:
    rows = DBOS._rt().store.read(
        lambda tx: tx.all(
            "SELECT message FROM notifications WHERE destination_id = ? AND consumed_at IS NULL ORDER BY message_id",
            (wid,),
        )
    )
    return [serialization.loads(bytes(r[0])) for r in rows]


# -- send / recv --------------------------------------------------------------------------------
def test_messages_sent_before_recv_are_kept_in_order_per_topic(dbos: type[DBOS]) -> None:
    gate = threading.Event()

    @DBOS.step()
    def wait_gate() -> None:
        assert gate.wait(10)

    @DBOS.workflow()
    def receiver() -> list[Any]:
        wait_gate()
        return [DBOS.recv("a", 5), DBOS.recv(None, 5), DBOS.recv("a", 5), DBOS.recv("b", 5)]

    handle = DBOS.start_workflow(receiver)
    DBOS.send(handle.workflow_id, "a1", "a")
    DBOS.send(handle.workflow_id, {"n": 1})
    DBOS.send(handle.workflow_id, "b1", topic="b")
    DBOS.send(handle.workflow_id, "a2", topic="a")
    gate.set()
    assert handle.get_result() == ["a1", {"n": 1}, "a2", "b1"]
    assert unread(handle.workflow_id) == []


def test_recv_waits_for_a_message_sent_later(dbos: type[DBOS]) -> None:
    @DBOS.workflow()
    def receiver() -> Any:
        return DBOS.recv("t", 20)

    handle = DBOS.start_workflow(receiver)
    wait_until(lambda: any(n == "DBOS.recv.deadline" for n, _ in steps(handle.workflow_id)), what="recv waiting")
    DBOS.send(handle.workflow_id, "late", "t")
    assert handle.get_result(timeout=10) == "late"


def test_recv_timeout_returns_none_after_the_timeout_and_not_before(dbos: type[DBOS]) -> None:
    @DBOS.workflow()
    def receiver() -> tuple[Any, float]:
        started = time.time()
        value = DBOS.recv("nothing", 0.6)
        return value, time.time() - started

    value, elapsed = receiver()
    assert value is None
    assert 0.6 - TOLERANCE_S <= elapsed < 0.6 + 2.0


def test_send_with_idempotency_key_is_delivered_once_even_after_it_was_received(dbos: type[DBOS]) -> None:
    @DBOS.workflow()
    def receiver() -> list[Any]:
        first = DBOS.recv("t", 5)
        DBOS.send(DBOS.workflow_id or "", "resend", "t", idempotency_key="k1")  # same key again
        return [first, DBOS.recv("t", 0.3)]

    with SetWorkflowID("idem-receiver"):
        handle = DBOS.start_workflow(receiver)
    DBOS.send("idem-receiver", "once", "t", idempotency_key="k1")
    DBOS.send("idem-receiver", "twice", "t", idempotency_key="k1")
    assert handle.get_result() == ["once", None]
    assert unread("idem-receiver") == []


def test_send_and_recv_inside_a_workflow_are_checkpointed_and_replayed(dbos: type[DBOS]) -> None:
    @DBOS.workflow()
    def echo() -> Any:
        got = DBOS.recv("ping", 5)
        DBOS.send(got["reply_to"], f"pong {got['n']}", "pong")
        return got["n"]

    @DBOS.workflow()
    def caller() -> Any:
        with SetWorkflowID("echo-1"):
            child = DBOS.start_workflow(echo)
        DBOS.send(child.workflow_id, {"reply_to": DBOS.workflow_id, "n": 7}, "ping")
        return DBOS.recv("pong", 5)

    with SetWorkflowID("caller-1"):
        assert caller() == "pong 7"
    assert DBOS.retrieve_workflow("echo-1").get_result() == 7
    # Replaying both from their checkpoints sends nothing twice and receives the same values.
    assert replay("echo-1") == 7
    assert replay("caller-1") == "pong 7"
    assert unread("echo-1") == [] and unread("caller-1") == []
    names = [n for n, _ in steps("echo-1") if n != "DBOS.recv.deadline"]  # recorded only if it had to wait
    assert names == ["DBOS.recv", "DBOS.send"]


def test_send_to_unknown_workflow_is_a_clear_error_and_writes_nothing(dbos: type[DBOS]) -> None:
    with pytest.raises(WorkflowNotFoundError, match="no workflow with id 'ghost' exists"):
        DBOS.send("ghost", "hello")

    @DBOS.workflow()
    def sender() -> None:
        DBOS.send("ghost", "hello")

    with pytest.raises(WorkflowNotFoundError, match="ghost"), SetWorkflowID("sender-1"):
        sender()
    assert steps("sender-1") == []  # the failed send recorded no step
    count = DBOS._rt().store.read(lambda tx: tx.one("SELECT COUNT(*) FROM notifications"))
    assert count is not None and count[0] == 0


def test_bad_input_errors(dbos: type[DBOS]) -> None:
    with pytest.raises(NotInWorkflowError, match=r"DBOS.recv can only be called inside a workflow"):
        DBOS.recv()
    with pytest.raises(NotInWorkflowError, match=r"DBOS.set_event can only be called inside a workflow"):
        DBOS.set_event("k", 1)
    with pytest.raises(NotInWorkflowError, match=r"DBOS.write_stream"):
        DBOS.write_stream("k", 1)
    with pytest.raises(TypeError, match="topic must be a non-empty string"):
        DBOS.send("x", 1, topic=5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="destination_id must be a non-empty string"):
        DBOS.send("", 1)
    with pytest.raises(ValueError, match="topic is 5000 characters long; use at most 2000"):
        DBOS.send("x", 1, topic="t" * 5000)
    with pytest.raises(ValueError, match="seconds must be a finite number of seconds >= 0"):
        DBOS.sleep(-1)
    with pytest.raises(TypeError, match="workflow_id must be a non-empty string"):
        DBOS.read_stream(None, "k")  # type: ignore[arg-type]

    @DBOS.step()
    def recv_in_step() -> Any:
        return DBOS.recv("t", 1)

    @DBOS.workflow()
    def bad_wf(kind: str) -> Any:
        if kind == "step":
            return recv_in_step()
        if kind == "timeout":
            return DBOS.recv("t", timeout_seconds="soon")
        return DBOS.send(DBOS.workflow_id or "", threading.Lock())

    with pytest.raises(NotInWorkflowError, match="cannot be called from inside a step"):
        bad_wf("step")
    with pytest.raises(TypeError, match="timeout_seconds must be a finite number of seconds"):
        bad_wf("timeout")
    with pytest.raises(TransactError, match="cannot be serialized"), SetWorkflowID("unpicklable"):
        bad_wf("lock")
    assert steps("unpicklable") == []


# -- events -------------------------------------------------------------------------------------
def test_get_event_waits_until_set_and_in_workflow_is_checkpointed(dbos: type[DBOS]) -> None:
    @DBOS.workflow()
    def publisher() -> None:
        DBOS.set_event("status", "started")
        DBOS.recv("go", 10)
        DBOS.set_event("status", {"done": True})

    @DBOS.workflow()
    def watcher(target: str) -> Any:
        return DBOS.get_event(target, "status", 5)

    handle = DBOS.start_workflow(publisher)
    assert DBOS.get_event(handle.workflow_id, "status", 5) == "started"
    with SetWorkflowID("watcher-1"):
        assert watcher(handle.workflow_id) == "started"
    DBOS.send(handle.workflow_id, None, "go")
    handle.get_result()
    assert DBOS.get_event(handle.workflow_id, "status", 0) == {"done": True}
    # The watcher recorded what it saw: a replay returns it, not the newer value.
    assert replay("watcher-1") == "started"
    assert [n for n, _ in steps("watcher-1")] == ["DBOS.get_event"]


def test_get_event_timeout_returns_none_after_the_timeout_and_not_before(dbos: type[DBOS]) -> None:
    @DBOS.workflow()
    def silent() -> None:
        DBOS.recv("never", 10)

    @DBOS.workflow()
    def watcher(target: str) -> tuple[Any, float]:
        started = time.time()
        return DBOS.get_event(target, "k", 0.5), time.time() - started

    handle = DBOS.start_workflow(silent)
    started = time.time()
    assert DBOS.get_event(handle.workflow_id, "k", 0.5) is None
    assert 0.5 - TOLERANCE_S <= time.time() - started < 0.5 + 2.0
    value, elapsed = watcher(handle.workflow_id)
    assert value is None and 0.5 - TOLERANCE_S <= elapsed < 0.5 + 2.0
    DBOS.send(handle.workflow_id, 1, "never")
    handle.get_result()


def test_get_event_wakes_on_set(dbos: type[DBOS]) -> None:
    results: list[Any] = []

    @DBOS.workflow()
    def publisher() -> None:
        DBOS.recv("go", 10)
        DBOS.set_event("k", "v")

    handle = DBOS.start_workflow(publisher)
    reader = threading.Thread(target=lambda: results.append(DBOS.get_event(handle.workflow_id, "k", 20)))
    reader.start()
    DBOS.send(handle.workflow_id, None, "go")
    reader.join(10)
    assert results == ["v"]


# -- sleep --------------------------------------------------------------------------------------
def test_sleep_records_its_wake_up_time_and_replay_does_not_sleep_again(dbos: type[DBOS]) -> None:
    @DBOS.workflow()
    def sleeper() -> float:
        started = time.time()
        DBOS.sleep(0.4)
        return time.time() - started

    before = now_ms()
    with SetWorkflowID("sleeper-1"):
        assert sleeper() >= 0.4 - TOLERANCE_S
    [(name, wake_at)] = steps("sleeper-1")
    assert name == "DBOS.sleep" and before + 400 <= wake_at <= now_ms()
    assert replay("sleeper-1") < 0.2  # the recorded wake-up time has passed


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_sleep_wakes_when_the_workflow_is_cancelled(dbos: type[DBOS], kind: str) -> None:
    @DBOS.workflow()
    def sleeper() -> None:
        DBOS.sleep(60)

    @DBOS.workflow()
    async def async_sleeper() -> None:
        await DBOS.sleep_async(60)

    if kind == "sync":
        handle: Any = DBOS.start_workflow(sleeper)
        wait_until(lambda: steps(handle.workflow_id), what="sleep recorded")
        started = time.monotonic()
        DBOS._rt().cancel_tree(handle.workflow_id)
        with pytest.raises(WorkflowCancelledError):
            handle.get_result(timeout=10)
    else:

        async def main() -> None:
            handle = await DBOS.start_workflow_async(async_sleeper)
            await asyncio.sleep(0)
            while not await asyncio.to_thread(steps, handle.workflow_id):
                await asyncio.sleep(0.01)
            DBOS._rt().cancel_tree(handle.workflow_id)
            with pytest.raises(WorkflowCancelledError):
                await handle.get_result(timeout=10)

        started = time.monotonic()
        asyncio.run(main())
    assert time.monotonic() - started < 10


def test_sleeper_cancelled_from_another_process_stops(dbos: type[DBOS], backend: str) -> None:
    """Postgres pushes the cancellation (NOTIFY): the sleeper stops at once. SQLite sleepers do not
    re-read on every foreign commit: the sleeper stops at its wake-up, before its next step counts."""
    ran: list[str] = []

    @DBOS.step()
    def after() -> None:
        ran.append("after")

    @DBOS.workflow()
    def sleeper() -> None:
        DBOS.sleep(1.5)
        after()

    handle = DBOS.start_workflow(sleeper)
    wait_until(lambda: steps(handle.workflow_id), what="sleep recorded")
    started = time.monotonic()
    # A plain UPDATE, as another process would commit it: no local hint in this process.
    DBOS._rt().store.write(
        lambda tx: tx.run(
            "UPDATE workflow_status SET status = 'CANCELLED' WHERE workflow_id = ?", (handle.workflow_id,)
        ),
        single=True,
    )
    with pytest.raises(WorkflowCancelledError):
        handle.get_result(timeout=10)
    if backend == "postgres":
        assert time.monotonic() - started < 1.0
    assert [n for n, _ in steps(handle.workflow_id)] == ["DBOS.sleep"]  # `after` never counted


def test_thousand_async_sleepers_hold_no_threads(dbos: type[DBOS]) -> None:
    n, seconds = 1000, 1.5

    @DBOS.workflow()
    async def sleeper(i: int) -> int:
        await DBOS.sleep_async(seconds)
        return i

    async def main() -> tuple[list[int], int, int, str]:
        baseline = threading.active_count()
        peak = baseline
        handles = [await DBOS.start_workflow_async(sleeper, i) for i in range(n)]
        gathered = asyncio.ensure_future(asyncio.gather(*(h.get_result(timeout=60) for h in handles)))
        while not gathered.done():
            peak = max(peak, threading.active_count())
            await asyncio.wait([gathered], timeout=0.05)
        return gathered.result(), baseline, peak, handles[0].workflow_id

    started = time.monotonic()
    results, baseline, peak, first = asyncio.run(main())
    elapsed = time.monotonic() - started
    assert results == list(range(n))
    assert elapsed >= seconds - TOLERANCE_S
    assert peak - baseline <= 16 and peak < 64, (baseline, peak)
    assert [n for n, _ in steps(first)] == ["DBOS.sleep"]


def test_seed_background_task_example(dbos: type[DBOS]) -> None:
    """The seed's "Background Tasks" example, verbatim apart from the import and test scaffolding."""
    sent: list[tuple[str, int, float]] = []
    app = SimpleNamespace(post=lambda path: lambda fn: fn)

    def days_to_seconds(days: int) -> float:
        return days * 0.3  # a "day" is 0.3 s in this test

    @DBOS.step()
    def send_reminder_email(to_email: str, days: int) -> None:
        sent.append((to_email, days, time.monotonic()))

    # ---- as in the seed ----
    @DBOS.workflow()
    def schedule_reminder(to_email: str, days_to_wait: int):  # type: ignore[no-untyped-def]
        DBOS.sleep(days_to_seconds(days_to_wait))
        send_reminder_email(to_email, days_to_wait)

    @app.post("/email")  # type: ignore[misc]
    def email_endpoint(request):  # type: ignore[no-untyped-def]
        DBOS.start_workflow(schedule_reminder, request.email, request.days)

    # ---- end of the seed ----
    called = time.monotonic()
    email_endpoint(SimpleNamespace(email="ada@example.com", days=2))
    assert sent == []  # the endpoint returned at once; the reminder waits in the background
    wait_until(lambda: sent, timeout=10, what="the reminder")
    assert sent[0][:2] == ("ada@example.com", 2) and sent[0][2] - called >= 0.6 - TOLERANCE_S


# -- streams ------------------------------------------------------------------------------------
def test_stream_is_read_in_order_until_closed_and_writes_replay_once(dbos: type[DBOS]) -> None:
    @DBOS.workflow()
    def writer(n: int) -> str:
        for i in range(n):
            DBOS.write_stream("nums", i)
        DBOS.close_stream("nums")
        DBOS.close_stream("nums")  # closing twice is harmless
        DBOS.recv("hold", 10)
        return "done"

    with SetWorkflowID("writer-1"):
        handle = DBOS.start_workflow(writer, 50)
    assert list(DBOS.read_stream("writer-1", "nums")) == list(range(50))  # ends at the close
    DBOS.send("writer-1", None, "hold")
    assert handle.get_result() == "done"
    assert replay("writer-1") == "done"
    assert list(DBOS.read_stream("writer-1", "nums")) == list(range(50))


def test_stream_ends_when_the_writer_ends_without_closing(dbos: type[DBOS]) -> None:
    @DBOS.workflow()
    def writer() -> None:
        DBOS.write_stream("s", "a")
        DBOS.recv("go", 10)
        DBOS.write_stream("s", "b")

    handle = DBOS.start_workflow(writer)
    got: list[Any] = []
    reader = threading.Thread(target=lambda: got.extend(DBOS.read_stream(handle.workflow_id, "s")))
    reader.start()
    wait_until(lambda: got == ["a"], what="the first value")
    DBOS.send(handle.workflow_id, None, "go")
    reader.join(10)
    assert not reader.is_alive() and got == ["a", "b"]


def test_stream_errors(dbos: type[DBOS]) -> None:
    @DBOS.workflow()
    def closer() -> None:
        DBOS.close_stream("s")
        DBOS.write_stream("s", 1)

    with (
        pytest.raises(TransactError, match="stream 's' of workflow 'closer-1' is already closed"),
        SetWorkflowID("closer-1"),
    ):
        closer()
    with pytest.raises(WorkflowNotFoundError):
        next(iter(DBOS.read_stream("nobody", "s")))


# -- async variants -----------------------------------------------------------------------------
def test_async_variants(dbos: type[DBOS]) -> None:
    @DBOS.workflow()
    async def worker() -> list[Any]:
        await DBOS.set_event_async("ready", True)
        got = await DBOS.recv_async("in", 10)
        timed_out = await DBOS.recv_async("in", 0.2)
        for i in range(3):
            await DBOS.write_stream_async("out", got + i)
        await DBOS.close_stream_async("out")
        await DBOS.sleep_async(0.1)
        return [got, timed_out]

    async def main() -> tuple[Any, list[Any], Any]:
        handle = await DBOS.start_workflow_async(worker)
        assert await DBOS.get_event_async(handle.workflow_id, "ready", 10) is True
        await DBOS.send_async(handle.workflow_id, 10, "in")
        values = [v async for v in DBOS.read_stream_async(handle.workflow_id, "out")]
        return await handle.get_result(timeout=10), values, handle.workflow_id

    result, values, wid = asyncio.run(main())
    assert result == [10, None] and values == [10, 11, 12]
    names = [n for n, _ in steps(wid) if not n.endswith(".deadline")]
    assert names == [
        "DBOS.set_event",
        "DBOS.recv",
        "DBOS.recv",
        *["DBOS.write_stream"] * 3,
        "DBOS.close_stream",
        "DBOS.sleep",
    ]
