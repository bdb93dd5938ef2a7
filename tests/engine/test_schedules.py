"""Schedules created at run time (DBOS 3.x): create_schedule with a context, a queue and a time
zone; apply_schedules (idempotent, across a fleet); backfill_schedule and trigger_schedule; the
async and DBOSClient forms; and errors that name the bad argument."""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import spawn, wait_until
from transact import DBOS, ConfigError, DBOSClient, Queue, ScheduleNotFoundError
from transact.engine import serialization
from transact.engine.scheduler import tick_workflow_id
from transact.errors import SerializationError
from transact.storage import Store

APP = Path(__file__).parent / "apps" / "apply_app.py"
HOUR = timedelta(hours=1)


class Seen:
    """(scheduled_time, context) of every body run, thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.items: list[tuple[datetime, Any]] = []

    def add(self, scheduled_time: datetime, context: Any) -> None:
        with self._lock:
            self.items.append((scheduled_time, context))

    def all(self) -> list[tuple[datetime, Any]]:
        with self._lock:
            return list(self.items)


def rows(store: Store, name: str) -> dict[str, tuple[str, str | None, tuple[Any, ...]]]:
    """workflow id -> (status, queue name, positional inputs) of every run of a workflow."""
    found = store.read(
        lambda tx: tx.all("SELECT workflow_id, status, queue_name, inputs FROM workflow_status WHERE name = ?", (name,))
    )
    return {str(w): (str(s), q, serialization.loads(bytes(i))[0]) for w, s, q, i in found}


def hour_floor(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


# -- create_schedule ----------------------------------------------------------------------------
def test_created_schedule_passes_its_context_in_its_time_zone(dbos: type[DBOS], store: Store) -> None:
    seen = Seen()

    @DBOS.workflow(name="with_context")
    def with_context(scheduled_time: datetime, context: Any) -> None:
        seen.add(scheduled_time, context)

    DBOS.create_schedule(
        schedule_name="ctx",
        workflow_fn=with_context,
        schedule="* * * * * *",
        context={"region": "emea", "n": 1},
        automatic_backfill=True,
        cron_timezone="Asia/Kolkata",
    )
    wait_until(lambda: len(seen.all()) >= 2, timeout=10, what="two ticks")
    DBOS.pause_schedule("ctx")
    scheduled, context = seen.all()[0]
    assert context == {"region": "emea", "n": 1}
    assert scheduled.tzinfo == timezone(timedelta(hours=5, minutes=30)) or str(scheduled.tzinfo) == "Asia/Kolkata"
    assert tick_workflow_id("ctx", scheduled) in rows(store, "with_context")
    listed = DBOS.get_schedule("ctx") or {}
    assert listed["context"] == {"region": "emea", "n": 1} and listed["automatic_backfill"] is True
    assert listed["cron_timezone"] == "Asia/Kolkata" and listed["queue_name"] is None
    assert listed["status"] == "PAUSED" and listed["dynamic"] is True


def test_queue_name_enqueues_each_run_on_that_queue(dbos: type[DBOS], store: Store) -> None:
    seen = Seen()
    Queue("sched-q")

    @DBOS.workflow(name="queued_tick")
    def queued_tick(scheduled_time: datetime, context: Any) -> None:
        seen.add(scheduled_time, context)

    DBOS.create_schedule(schedule_name="q", workflow_fn=queued_tick, schedule="* * * * * *", queue_name="sched-q")
    wait_until(lambda: seen.all(), timeout=10, what="a queued tick")
    DBOS.pause_schedule("q")
    found = rows(store, "queued_tick")
    assert found and all(queue == "sched-q" for _, queue, _ in found.values())
    assert (DBOS.get_schedule("q") or {})["queue_name"] == "sched-q"
    handle = DBOS.trigger_schedule("q")  # a triggered run goes through the queue too
    assert handle.get_result() is None
    assert rows(store, "queued_tick")[handle.get_workflow_id()][1] == "sched-q"


# -- apply_schedules ----------------------------------------------------------------------------
def test_apply_schedules_creates_updates_and_leaves_others_alone(dbos: type[DBOS]) -> None:
    @DBOS.workflow(name="wf_a")
    def wf_a(scheduled_time: datetime, context: Any) -> None:
        pass

    @DBOS.workflow(name="wf_b")
    def wf_b(scheduled_time: datetime, context: Any) -> None:
        pass

    DBOS.create_schedule(schedule_name="other", workflow_fn=wf_b, schedule="0 3 * * *")
    wanted = [
        {"schedule_name": "a", "workflow_fn": wf_a, "schedule": "0 * * * *", "context": "ctx-a"},
        {"schedule_name": "b", "workflow_fn": "wf_b", "schedule": "0 0 * * *", "cron_timezone": "Europe/Paris"},
    ]
    DBOS.apply_schedules(wanted)
    first = {s["schedule_name"]: s for s in DBOS.list_schedules()}
    assert set(first) == {"a", "b", "other"}
    assert first["a"]["context"] == "ctx-a" and first["b"]["cron_timezone"] == "Europe/Paris"

    DBOS.pause_schedule("a")
    DBOS.apply_schedules(wanted)  # the same list again: nothing changes, the pause is kept
    again = {s["schedule_name"]: s for s in DBOS.list_schedules()}
    assert again["b"]["updated_at"] == first["b"]["updated_at"] and again["a"]["status"] == "PAUSED"

    DBOS.apply_schedules([{**wanted[0], "schedule": "30 * * * *", "context": "ctx-a2", "queue_name": None}])
    changed = DBOS.get_schedule("a") or {}
    assert changed["schedule"] == "30 * * * *" and changed["context"] == "ctx-a2"
    assert {s["schedule_name"] for s in DBOS.list_schedules()} == {"a", "b", "other"}


def test_three_processes_applying_the_same_schedules_fire_each_tick_once(
    db_url: str, tmp_path: Path, store: Store, procs: list[Any]
) -> None:
    def lines() -> list[tuple[datetime, str]]:
        path = tmp_path / "runs.txt"
        text = path.read_text() if path.exists() else ""
        return [(datetime.fromisoformat(t), ctx) for t, ctx, _ in (line.split() for line in text.splitlines())]

    procs.extend(spawn(APP, db_url, str(tmp_path)) for _ in range(3))
    for proc in procs:
        line = proc.stdout.readline()
        assert line.strip() == "waiting", line + (proc.stdout.read() if proc.poll() is not None else "")
    (tmp_path / "go").touch()  # all three apply at once
    for proc in procs:
        assert proc.stdout.readline().strip() == "applied"
    applied_at = datetime.now(timezone.utc)
    wait_until(lambda: len({t for t, _ in lines() if t > applied_at}) >= 3, timeout=30, what="three ticks")
    (tmp_path / "stop").touch()
    for proc in procs:
        proc.wait(timeout=20)
        proc.stdout.close()

    with DBOSClient(db_url) as client:
        assert [s["schedule_name"] for s in client.list_schedules()] == ["fleet", "fleet-hourly"]
    counts = Counter(t for t, _ in lines())
    assert counts and max(counts.values()) == 1, counts  # no tick ran twice
    assert {ctx for _, ctx in lines()} == {"ctx-1"}
    assert len([t for t in counts if t > applied_at]) >= 3
    ticks = sorted(counts)
    assert all(b - a == timedelta(seconds=1) for a, b in itertools.pairwise(ticks)), ticks  # no tick skipped
    assert {wid for wid in rows(store, "fleet_tick")} == {tick_workflow_id("fleet", t) for t in ticks}


# -- backfill and trigger -----------------------------------------------------------------------
def test_backfill_runs_only_the_missing_ticks_and_trigger_runs_now(dbos: type[DBOS], store: Store) -> None:
    seen = Seen()

    @DBOS.workflow(name="hourly")
    def hourly(scheduled_time: datetime, context: Any) -> str:
        seen.add(scheduled_time, context)
        return f"{scheduled_time:%H} {context}"

    DBOS.create_schedule(schedule_name="h", workflow_fn=hourly, schedule="0 * * * *", context="c")
    end = hour_floor(datetime.now(timezone.utc)) - HOUR
    start = end - 3 * HOUR
    (one,) = DBOS.backfill_schedule("h", start + HOUR, start + 2 * HOUR)  # one tick, run first
    assert one.get_result() == f"{start + HOUR:%H} c"
    handles = DBOS.backfill_schedule("h", start, end)  # start included, end excluded
    assert [h.get_workflow_id() for h in handles] == [tick_workflow_id("h", start + n * HOUR) for n in range(3)]
    assert [h.get_result() for h in handles] == [f"{start + n * HOUR:%H} c" for n in range(3)]
    assert sorted(t for t, _ in seen.all()) == [start + n * HOUR for n in range(3)]  # the first tick ran once
    assert DBOS.backfill_schedule("h", start, end) and len(seen.all()) == 3  # nothing left to fill

    DBOS.pause_schedule("h")
    before = datetime.now(timezone.utc)
    triggered = DBOS.trigger_schedule("h")  # paused schedules can be triggered
    assert triggered.get_result().endswith(" c")
    assert before - timedelta(milliseconds=1) <= seen.all()[-1][0] <= datetime.now(timezone.utc)  # ms precision
    assert len(rows(store, "hourly")) == 4


def test_declared_schedule_backfill_and_trigger_pass_the_actual_time(dbos: type[DBOS]) -> None:
    seen = Seen()

    @DBOS.scheduled("0 0 1 1 *")
    @DBOS.workflow(name="yearly")
    def yearly(scheduled_time: datetime, actual_time: datetime) -> None:
        seen.add(scheduled_time, actual_time)

    DBOS.trigger_schedule("yearly").get_result()
    scheduled, actual = seen.all()[0]
    assert isinstance(actual, datetime) and actual >= scheduled
    (handle,) = DBOS.backfill_schedule("yearly", datetime(2020, 1, 1), datetime(2020, 1, 2))  # naive: UTC
    handle.get_result()
    assert seen.all()[1][0] == datetime(2020, 1, 1, tzinfo=timezone.utc)


# -- async and client forms ---------------------------------------------------------------------
def test_async_forms(dbos: type[DBOS]) -> None:
    seen = Seen()

    @DBOS.workflow(name="async_sched")
    async def async_sched(scheduled_time: datetime, context: Any) -> Any:
        seen.add(scheduled_time, context)
        return context

    async def main() -> None:
        await DBOS.create_schedule_async(
            schedule_name="x", workflow_fn=async_sched, schedule="0 * * * *", context=[1, 2]
        )
        await DBOS.apply_schedules_async(
            [{"schedule_name": "y", "workflow_fn": async_sched, "schedule": "0 0 * * *", "context": "y"}]
        )
        assert [s["schedule_name"] for s in await DBOS.list_schedules_async()] == ["x", "y"]
        assert ((await DBOS.get_schedule_async("x")) or {})["context"] == [1, 2]
        await DBOS.pause_schedule_async("x")
        assert [s["schedule_name"] for s in await DBOS.list_schedules_async(status="PAUSED")] == ["x"]
        await DBOS.resume_schedule_async("x")
        handle = await DBOS.trigger_schedule_async("x")
        assert await handle.get_result() == [1, 2]
        end = hour_floor(datetime.now(timezone.utc)) - HOUR
        handles = await DBOS.backfill_schedule_async("y", end - timedelta(days=2), end)
        assert [await h.get_result() for h in handles] == ["y", "y"]
        await DBOS.delete_schedule_async("y")
        assert await DBOS.get_schedule_async("y") is None

    asyncio.run(main())
    assert len(seen.all()) == 3


def test_client_forms(dbos: type[DBOS], db_url: str) -> None:
    seen = Seen()

    @DBOS.workflow(name="client_wf")
    def client_wf(scheduled_time: datetime, context: Any) -> Any:
        seen.add(scheduled_time, context)
        return context

    with DBOSClient(db_url) as client:
        client.create_schedule(schedule_name="c1", workflow_name="client_wf", schedule="0 * * * *", context="one")
        client.apply_schedules([{"schedule_name": "c2", "workflow_name": "client_wf", "schedule": "0 0 * * *"}])
        assert [s["schedule_name"] for s in DBOS.list_schedules()] == ["c1", "c2"]  # the app sees them
        assert (client.get_schedule("c1") or {})["context"] == "one"
        client.pause_schedule("c1")
        assert [s["schedule_name"] for s in client.list_schedules(status="PAUSED")] == ["c1"]
        client.resume_schedule("c1")
        # The application process adopts the runs the client inserted, and runs them.
        assert client.trigger_schedule("c1").get_result(timeout=20) == "one"
        end = hour_floor(datetime.now(timezone.utc))
        handles = client.backfill_schedule("c1", end - 2 * HOUR, end)
        assert [h.get_result(timeout=20) for h in handles] == ["one", "one"]
        client.delete_schedule("c2")
        with pytest.raises(ScheduleNotFoundError):
            client.trigger_schedule("c2")

        async def main() -> None:
            await client.create_schedule_async(schedule_name="c3", workflow_name="client_wf", schedule="0 * * * *")
            await client.apply_schedules_async(
                [{"schedule_name": "c4", "workflow_name": "client_wf", "schedule": "0 * * * *"}]
            )
            assert [s["schedule_name"] for s in await client.list_schedules_async()] == ["c1", "c3", "c4"]
            await client.pause_schedule_async("c3")
            assert ((await client.get_schedule_async("c3")) or {})["status"] == "PAUSED"
            await client.resume_schedule_async("c3")
            handle = await client.trigger_schedule_async("c3")
            assert await handle.get_result(timeout=20) is None
            (one,) = await client.backfill_schedule_async("c4", end - HOUR, end)
            assert await one.get_result(timeout=20) is None
            await client.delete_schedule_async("c4")

        asyncio.run(main())
        assert [s["schedule_name"] for s in client.list_schedules()] == ["c1", "c3"]
    assert len(seen.all()) == 5


# -- bad input ----------------------------------------------------------------------------------
def test_bad_arguments_are_named_and_write_nothing(dbos: type[DBOS], db_url: str) -> None:
    @DBOS.workflow(name="good")
    def good(scheduled_time: datetime, context: Any) -> None:
        pass

    @DBOS.workflow(name="one_arg")
    def one_arg(scheduled_time: datetime) -> None:
        pass

    @DBOS.scheduled("0 * * * *")
    @DBOS.workflow(name="declared")
    def declared(scheduled_time: datetime, actual_time: datetime) -> None:
        pass

    base: dict[str, Any] = {"schedule_name": "s", "workflow_fn": good, "schedule": "0 * * * *"}
    cases: list[tuple[dict[str, Any], type[Exception], str]] = [
        ({"automatic_backfill": "yes"}, ConfigError, "automatic_backfill"),
        ({"queue_name": "no-such-queue"}, ConfigError, "queue_name 'no-such-queue'"),
        ({"queue_name": ""}, ConfigError, "queue_name"),
        ({"cron_timezone": "Nowhere/Land"}, ConfigError, "Nowhere/Land"),
        ({"cron_timezone": "UTC", "timezone": "Europe/Paris"}, ConfigError, "cron_timezone"),
        ({"context": lambda: None}, SerializationError, "context of schedule 's'"),
        ({"workflow_fn": one_arg}, ConfigError, "context: Any"),
        ({"schedule": "sometimes"}, ConfigError, "'sometimes'"),
        ({"schedule_name": " "}, ConfigError, "schedule_name"),
    ]
    for change, error, message in cases:
        with pytest.raises(error, match=message):
            DBOS.create_schedule(**{**base, **change})

    apply_cases: list[tuple[Any, str]] = [
        ("not a list", "list of schedule dicts"),
        ([{"schedule_name": "s", "workflow_fn": good}], "missing key 'schedule'"),
        ([{**base, "cron": "0 * * * *"}], "unknown key 'cron'"),
        ([base, base], "'s' more than once"),
        ([{**base, "schedule_name": "declared"}], "declared in code"),
        ([{**base, "schedule_name": "t"}, {**base, "automatic_backfill": 1}], "automatic_backfill"),
    ]
    for schedules, message in apply_cases:
        with pytest.raises(ConfigError, match=message):
            DBOS.apply_schedules(schedules)

    DBOS.create_schedule(**base)
    with pytest.raises(ConfigError, match=r"'s' already exists.*apply_schedules"):
        DBOS.create_schedule(**base)
    now = datetime.now(timezone.utc)
    with pytest.raises(ConfigError, match=r"start .* must be before end"):
        DBOS.backfill_schedule("s", now, now - HOUR)
    with pytest.raises(ConfigError, match="end must be a datetime"):
        DBOS.backfill_schedule("s", now, "tomorrow")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="shorter range"):
        DBOS.backfill_schedule("s", now - timedelta(days=500), now)
    for action in (lambda: DBOS.trigger_schedule("nope"), lambda: DBOS.backfill_schedule("nope", now - HOUR, now)):
        with pytest.raises(ScheduleNotFoundError, match="'nope'"):
            action()
    with DBOSClient(db_url) as client, pytest.raises(ConfigError, match="workflow_name"):
        client.create_schedule(schedule_name="c", workflow_name="", schedule="0 * * * *")
    assert [s["schedule_name"] for s in DBOS.list_schedules()] == ["declared", "s"]
