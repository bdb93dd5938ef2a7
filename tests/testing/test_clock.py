"""TestClock: durable sleeps, timeouts, deadlines, delayed queue work and cron ticks move with a
clock the test advances, on SQLite and Postgres (the plugin's fixtures on the suite's databases)."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from tests.conftest import wait_until
from transact import DBOS, Debouncer, Queue, SetEnqueueOptions, SetWorkflowTimeout
from transact.engine import clock as engine_clock
from transact.engine.scheduler import tick_workflow_id
from transact.errors import ConfigError
from transact.testing import TestClock, wait_for_step, wait_for_workflow

DAY = timedelta(days=1)
UTC = timezone.utc


def ms(when: datetime) -> int:
    return round(when.timestamp() * 1000)


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_a_30_day_sleep_ends_when_the_clock_passes_it(
    transact_clock: TestClock, transact_app: type[DBOS], flavour: str
) -> None:
    @DBOS.workflow()
    def nap_sync(days: int) -> str:
        DBOS.sleep(days * 86_400)
        return f"slept {days}"

    @DBOS.workflow()
    async def nap_async(days: int) -> str:
        await DBOS.sleep_async(days * 86_400)
        return f"slept {days}"

    nap: Any = nap_sync if flavour == "sync" else nap_async
    start = transact_clock.now_ms()
    month, day = DBOS.start_workflow(nap, 30), DBOS.start_workflow(nap, 1)
    wake = wait_for_step(month.workflow_id, "DBOS.sleep", timeout=10)
    wait_for_step(day.workflow_id, "DBOS.sleep", timeout=10)
    assert wake["output"] == start + 30 * 86_400_000  # the stored wake-up time is on the test clock

    transact_clock.advance(DAY)
    assert wait_for_workflow(day.workflow_id, timeout=5).status == "SUCCESS"
    assert month.get_status().status == "PENDING"  # woken by the same jump, but not due yet
    transact_clock.advance(days=29)
    assert wait_for_workflow(month.workflow_id, timeout=5).status == "SUCCESS"
    assert month.get_result() == "slept 30" and day.get_result() == "slept 1"


def test_recv_and_get_event_timeouts_expire_on_advance(transact_clock: TestClock, transact_app: type[DBOS]) -> None:
    @DBOS.workflow()
    def listener() -> tuple[Any, Any]:
        return DBOS.recv("topic", timeout_seconds=3600), DBOS.get_event("nobody", "key", timeout_seconds=7200)

    @DBOS.workflow()
    async def listener_async() -> tuple[Any, Any]:
        got = await DBOS.recv_async("topic", timeout_seconds=3600)
        return got, await DBOS.get_event_async("nobody", "key", timeout_seconds=7200)

    handles = [DBOS.start_workflow(listener), DBOS.start_workflow(listener_async)]
    for handle in handles:
        wait_for_step(handle.workflow_id, "DBOS.recv.deadline", timeout=10)
    transact_clock.advance(hours=1)
    for handle in handles:
        wait_for_step(handle.workflow_id, "DBOS.get_event.deadline", timeout=5)
        assert handle.get_status().status == "PENDING"
    transact_clock.advance(timedelta(hours=2))
    for handle in handles:
        assert wait_for_workflow(handle.workflow_id, timeout=5).status == "SUCCESS"
        assert handle.get_result() == (None, None)

    # A stream read's timeout is on the clock too.
    @DBOS.workflow()
    def writer() -> None:
        DBOS.write_stream("s", 1)
        DBOS.recv("done", timeout_seconds=86_400)

    open_stream = DBOS.start_workflow(writer)
    wait_for_step(open_stream.workflow_id, "DBOS.recv.deadline", timeout=10)
    outcome: list[Any] = []
    values = DBOS.read_stream(open_stream.workflow_id, "s", timeout_seconds=60)  # counts from this call

    def read() -> None:
        try:
            outcome.extend(values)
        except TimeoutError as exc:
            outcome.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    transact_clock.advance(seconds=61)
    reader.join(5)
    assert outcome[:1] == [1] and isinstance(outcome[-1], TimeoutError)
    DBOS.send(open_stream.workflow_id, "bye", "done")

    # Outside a workflow, a plain DBOS.sleep waits for the clock too.
    done = threading.Event()
    sleeper = threading.Thread(target=lambda: (DBOS.sleep(600), done.set()))
    sleeper.start()
    for _ in range(100):  # the thread may not have begun its sleep at the first advance
        transact_clock.advance(minutes=10)
        if done.wait(0.05):
            break
    assert done.is_set()
    sleeper.join(5)


def test_a_workflow_timeout_fires_on_advance(transact_clock: TestClock, transact_app: type[DBOS]) -> None:
    @DBOS.workflow()
    def slow() -> None:
        DBOS.sleep(86_400)

    with SetWorkflowTimeout(60):
        handle = DBOS.start_workflow(slow)
    wait_for_step(handle.workflow_id, "DBOS.sleep", timeout=10)
    status = handle.get_status()
    assert status.status == "PENDING" and status.workflow_deadline_epoch_ms == status.created_at + 60_000
    transact_clock.advance(seconds=61)
    assert wait_for_workflow(handle.workflow_id, timeout=5).status == "CANCELLED"


def test_delayed_enqueue_runs_when_the_clock_reaches_it(transact_clock: TestClock, transact_app: type[DBOS]) -> None:
    queue = Queue("clock-q")

    @DBOS.workflow()
    def job(n: int) -> int:
        return n + 1

    with SetEnqueueOptions(delay_seconds=3600):
        later = queue.enqueue(job, 1)
    with SetEnqueueOptions(delay_seconds=7200):
        much_later = queue.enqueue(job, 2)
    assert later.get_status().status == "DELAYED"
    transact_clock.advance(hours=1)
    assert wait_for_workflow(later.workflow_id, timeout=5).status == "SUCCESS"
    assert much_later.get_status().status == "DELAYED"
    transact_clock.advance(hours=1)
    assert wait_for_workflow(much_later.workflow_id, timeout=5).status == "SUCCESS"
    assert (later.get_result(), much_later.get_result()) == (2, 3)

    # A delay set afterwards and a debounce window are on the clock too.
    with SetEnqueueOptions(delay_seconds=60):
        moved = queue.enqueue(job, 3)
    DBOS.set_workflow_delay(moved.workflow_id, 3 * 3600)
    debouncer = Debouncer.create(job)
    first = debouncer.debounce("key", 600, 10)
    transact_clock.advance(minutes=5)
    pushed = debouncer.debounce("key", 600, 20)  # the window now ends 10 minutes from here
    assert pushed.workflow_id == first.workflow_id
    transact_clock.advance(minutes=6)  # past the first call's window, not the pushed one
    wait_for_workflow(moved.workflow_id, status="DELAYED", timeout=5)
    assert pushed.get_status().status == "DELAYED"
    transact_clock.advance(minutes=4)
    assert wait_for_workflow(pushed.workflow_id, timeout=5).status == "SUCCESS" and pushed.get_result() == 21
    assert moved.get_status().status == "DELAYED"
    transact_clock.advance(hours=3)
    assert wait_for_workflow(moved.workflow_id, timeout=5).status == "SUCCESS" and moved.get_result() == 4


def test_cron_fires_exactly_the_ticks_the_clock_passed(transact_clock: TestClock, transact_app: type[DBOS]) -> None:
    base = datetime(2031, 5, 4, 12, 0, 30, tzinfo=UTC)
    transact_clock.set(base)
    fired: dict[str, list[datetime]] = {"declared": [], "created": []}
    lock = threading.Lock()

    @DBOS.scheduled("* * * * *")
    @DBOS.workflow(name="every_minute")
    def every_minute(scheduled_time: datetime, actual_time: datetime) -> None:
        with lock:
            fired["declared"].append(scheduled_time)

    @DBOS.workflow(name="created_every_minute")
    def created(scheduled_time: datetime, context: Any) -> None:
        with lock:
            fired["created"].append(scheduled_time)

    DBOS.create_schedule("clock-created", created, "* * * * *")

    def runs(name: str, count: int) -> None:
        wait_until(
            lambda: [w.status for w in DBOS.list_workflows(name=name)] == ["SUCCESS"] * count,
            timeout=10,
            what=f"{count} successful runs of {name}",
        )

    transact_clock.advance(minutes=5)  # passes 12:01 .. 12:05 at once: none skipped as late
    expected = [base + timedelta(minutes=m, seconds=-30) for m in range(1, 6)]
    runs("every_minute", 5)
    runs("created_every_minute", 5)
    with lock:
        assert sorted(fired["declared"]) == expected and sorted(fired["created"]) == expected
    ids = sorted(w.workflow_id for w in DBOS.list_workflows(name="every_minute"))
    assert ids == [tick_workflow_id("every_minute", t) for t in expected]

    transact_clock.advance(seconds=59)  # 12:05:30 -> 12:06:29: one more tick each
    runs("every_minute", 6)
    runs("created_every_minute", 6)
    with lock:
        assert sorted(fired["declared"])[-1] == base + timedelta(minutes=5, seconds=30)
        assert len(fired["declared"]) == len(fired["created"]) == 6


def test_the_clock_is_explicit_and_checked() -> None:
    assert not engine_clock.controlled()
    start = datetime(2030, 1, 1, tzinfo=UTC)
    with TestClock(start) as clock:
        assert engine_clock.controlled() and engine_clock.now_ms() == ms(start)
        assert clock.advance(90) == start + timedelta(seconds=90)
        assert clock.advance(timedelta(minutes=1), seconds=30) == start + timedelta(minutes=3)
        assert clock.set(start + DAY) == start + DAY and engine_clock.now_ms() == ms(start + DAY)
        with pytest.raises(ConfigError, match="only moves forward"):
            clock.advance(seconds=-1)
        with pytest.raises(ConfigError, match="only moves forward"):
            clock.set(start)
        with pytest.raises(ConfigError, match="timezone-aware"):
            clock.set(datetime(2031, 1, 1))
        with pytest.raises(ConfigError, match="another TestClock"):
            TestClock().install()
        assert clock.now() == start + DAY  # a refused move leaves it where it was
    assert not engine_clock.controlled() and abs(engine_clock.now_ms() - engine_clock.real_ms()) < 1000
    with pytest.raises(ConfigError, match="timedelta or a number"):
        TestClock().advance("1 day")  # type: ignore[arg-type]
