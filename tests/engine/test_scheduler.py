"""Scheduled workflows: one run per cron tick (across processes too), no replay storm after
downtime unless backfill is asked for, dynamic schedules, and clear errors for bad input."""

from __future__ import annotations

import itertools
import os
import signal
import threading
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import spawn, wait_until
from transact import DBOS, ConfigError, ScheduleNotFoundError
from transact.engine import scheduler as scheduler_module
from transact.engine import serialization
from transact.engine.scheduler import Scheduler, parse_cron, tick_workflow_id
from transact.errors import WorkflowNotRegisteredError
from transact.storage import Store
from transact.storage.rows import ScheduleRow

APP = Path(__file__).parent / "apps" / "sched_app.py"
SECOND = timedelta(seconds=1)


class Runs:
    """What the scheduled workflow bodies saw, one entry per body run (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[tuple[datetime, datetime]] = []

    def add(self, scheduled_time: datetime, actual_time: datetime) -> None:
        with self._lock:
            self._items.append((scheduled_time, actual_time))

    def all(self) -> list[tuple[datetime, datetime]]:
        with self._lock:
            return list(self._items)

    def times(self) -> list[datetime]:
        return sorted(s for s, _ in self.all())

    def after(self, moment: datetime) -> list[datetime]:
        return [t for t in self.times() if t > moment]


def workflow_rows(store: Store, name: str) -> list[tuple[str, str, datetime]]:
    """(workflow id, status, scheduled time from the recorded inputs) of every run of a workflow."""
    rows = store.read(
        lambda tx: tx.all("SELECT workflow_id, status, inputs FROM workflow_status WHERE name = ?", (name,))
    )
    return [(str(wid), str(status), serialization.loads(bytes(inputs))[0][0]) for wid, status, inputs in rows]


def settled(store: Store, name: str, runs: Runs) -> list[tuple[str, str, datetime]]:
    """Wait until every started run finished and the bodies seen match the rows; return the rows."""

    def done() -> list[tuple[str, str, datetime]] | None:
        rows = workflow_rows(store, name)
        if all(status == "SUCCESS" for _, status, _ in rows) and len(rows) == len(runs.all()):
            return rows
        return None

    result: list[tuple[str, str, datetime]] = wait_until(done, timeout=15, what=f"runs of {name} to finish")
    return result


def assert_one_run_per_tick(times: list[datetime]) -> None:
    counts = Counter(times)
    assert [t for t, n in counts.items() if n > 1] == [], "a tick ran twice"
    assert all(t.microsecond == 0 for t in times), times
    ordered = sorted(counts)
    gaps = [(a, b) for a, b in itertools.pairwise(ordered) if b - a != SECOND]
    assert gaps == [], f"ticks missing between {gaps}"


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


def scheduler() -> Scheduler:
    found = DBOS._rt().scheduler
    assert found is not None
    return found


# -- firing -------------------------------------------------------------------------------------
def test_every_second_schedule_runs_once_per_tick_with_its_scheduled_time(dbos: type[DBOS], store: Store) -> None:
    runs = Runs()
    declared_at = now_utc()

    # Declared after launch(): it starts firing at once.
    @DBOS.scheduled("* * * * * *")
    @DBOS.workflow(name="every_second")
    def every_second(scheduled_time: datetime, actual_time: datetime) -> None:
        runs.add(scheduled_time, actual_time)

    wait_until(lambda: len(runs.all()) >= 5, timeout=20, what="5 ticks")
    DBOS.pause_schedule("every_second")
    rows = settled(store, "every_second", runs)

    times = runs.times()
    assert len(times) >= 5
    assert_one_run_per_tick(times)  # 5 consecutive seconds in 5 s: none skipped, none twice
    assert times[0] > declared_at  # no tick from before the schedule existed
    for scheduled, actual in runs.all():
        assert scheduled.tzinfo == timezone.utc
        assert scheduled <= actual < scheduled + 5 * SECOND
    assert sorted(wid for wid, _, _ in rows) == sorted(tick_workflow_id("every_second", t) for t in times)
    assert sorted(t for _, _, t in rows) == times
    assert tick_workflow_id("every_second", times[0]) == f"sched-every_second-{times[0]:%Y-%m-%dT%H:%M:%S}Z"


def test_two_processes_sharing_a_database_run_each_tick_once(db_url: str, tmp_path: Path, store: Store) -> None:
    """Both processes try every tick; one insert wins. Killing one midway shows the other was
    scheduling all along: the ticks go on without a gap."""

    def lines() -> list[tuple[datetime, str]]:
        path = tmp_path / "runs.txt"
        if not path.exists():
            return []
        out = []
        for text in path.read_text().splitlines():
            stamp, pid = text.split()
            out.append((datetime.fromisoformat(stamp), pid))
        return out

    def ticks_after(moment: datetime) -> int:
        return len({t for t, _ in lines() if t > moment})

    procs = [spawn(APP, db_url, str(tmp_path)) for _ in range(2)]
    try:
        for proc in procs:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert line.strip() == "ready", line + (proc.stdout.read() if proc.poll() is not None else "")
        all_ready = now_utc()
        wait_until(lambda: ticks_after(all_ready) >= 5, timeout=30, what="5 ticks with both processes up")
        os.kill(procs[0].pid, signal.SIGKILL)
        procs[0].wait(timeout=10)
        killed_at = now_utc()
        wait_until(lambda: ticks_after(killed_at) >= 2, timeout=30, what="ticks from the survivor")
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
            if proc.stdout is not None:
                proc.stdout.close()

    counts = Counter(t for t, _ in lines())
    assert_one_run_per_tick(list(counts))  # every second from the first tick on, no gap
    # A body runs twice only when its process died mid-run and the survivor recovered it.
    recovered = dict(store.read(lambda tx: tx.all("SELECT workflow_id, recovery_attempts FROM workflow_status", ())))
    twice = {t: n for t, n in counts.items() if n > 1}
    assert all(recovered[tick_workflow_id("every_second", t)] >= n - 1 for t, n in twice.items()), twice
    assert len(twice) <= 1
    assert ticks_after(all_ready) >= 7


def test_restart_skips_missed_ticks_unless_backfill(
    config: dict[str, Any], store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    DBOS.destroy(destroy_registry=True)
    plain, backfilled = Runs(), Runs()

    @DBOS.scheduled("* * * * * *")
    @DBOS.workflow(name="plain")
    def plain_wf(scheduled_time: datetime, actual_time: datetime) -> None:
        plain.add(scheduled_time, actual_time)

    @DBOS.scheduled("* * * * * *", backfill=True)
    @DBOS.workflow(name="backfilled")
    def backfilled_wf(scheduled_time: datetime, actual_time: datetime) -> None:
        backfilled.add(scheduled_time, actual_time)

    try:
        DBOS(config=config)
        DBOS.launch()
        wait_until(lambda: plain.all() and backfilled.all(), timeout=10, what="a first tick of each")
        DBOS.destroy()  # the registry (the code) stays: this is a restart of the same app
        first_run = backfilled.times()[0]
        last_plain = plain.times()[-1]
        # The database as a process that went down 10 ticks before the first run would leave it.
        mark = first_run - 11 * SECOND
        store.write(
            lambda tx: tx.run("UPDATE schedules SET last_tick_at = ?", (int(mark.timestamp() * 1000),)), single=True
        )

        restarted_at = now_utc()
        DBOS(config=config)
        DBOS.launch()
        wait_until(
            lambda: plain.after(restarted_at) and backfilled.after(restarted_at), timeout=10, what="ticks after restart"
        )
        # A running process that stalls (here: its scheduler is held up) past the grace
        # period skips the ticks it owes, unless backfilling: a stall is downtime too.
        monkeypatch.setattr(scheduler_module, "LATE_GRACE_MS", 300)
        with scheduler()._lock:
            stalled_from = now_utc()
            time.sleep(1.6)  # > 1 s + grace: at least one whole tick falls in the skipped span
            stalled_to = now_utc()
        wait_until(
            lambda: plain.after(stalled_to) and backfilled.after(stalled_to), timeout=10, what="ticks after the stall"
        )
        DBOS.pause_schedule("plain")
        DBOS.pause_schedule("backfilled")
        settled(store, "plain", plain)
        settled(store, "backfilled", backfilled)
    finally:
        DBOS.destroy(destroy_registry=True)

    # Backfill: every tick since the mark ran exactly once, those of the first run not again.
    times = backfilled.times()
    assert_one_run_per_tick(times)
    assert times[0] == mark + SECOND
    assert len([t for t in times if t < first_run]) == 10
    # No backfill by default: nothing between the first process's last tick and the restart.
    assert [t for t in plain.times() if last_plain < t <= restarted_at] == []
    assert_one_run_per_tick([t for t in plain.after(restarted_at) if t < stalled_from])
    stalled = [t for t in times if stalled_from < t < stalled_to]
    assert stalled and [t for t in stalled if t not in plain.times()] != []


def test_async_workflow_and_timezone(dbos: type[DBOS], store: Store) -> None:
    runs = Runs()
    kolkata = ZoneInfo("Asia/Kolkata")  # +05:30: ticks still on whole seconds, ids still in UTC

    @DBOS.scheduled("* * * * * *", timezone="Asia/Kolkata")
    @DBOS.workflow(name="async_tz")
    async def async_tz(scheduled_time: datetime, actual_time: datetime) -> None:
        runs.add(scheduled_time, actual_time)

    @DBOS.scheduled("0 9 * * *", timezone="Europe/Paris")
    @DBOS.workflow(name="paris_nine")
    def paris_nine(scheduled_time: datetime, actual_time: datetime) -> None:
        pass

    wait_until(lambda: runs.all(), timeout=10, what="an async tick")
    DBOS.pause_schedule("async_tz")
    rows = settled(store, "async_tz", runs)
    scheduled, actual = runs.all()[0]
    assert scheduled.tzinfo == kolkata and actual.tzinfo == kolkata
    assert rows[0][0] == tick_workflow_id("async_tz", scheduled)
    assert rows[0][0].endswith(f"{scheduled.astimezone(timezone.utc):%H:%M:%S}Z")

    nine = scheduler().next_ticks()["paris_nine"]
    assert (nine.hour, nine.minute, nine.second) == (9, 0, 0) and nine.tzinfo == ZoneInfo("Europe/Paris")
    listed = DBOS.get_schedule("paris_nine") or {}
    assert (listed["schedule"], listed["timezone"]) == ("0 9 * * *", "Europe/Paris")


# -- declaring ----------------------------------------------------------------------------------
def test_declared_before_or_between_dbos_and_launch_either_order_forgotten_with_registry(
    config: dict[str, Any],
) -> None:
    DBOS.destroy(destroy_registry=True)
    runs = Runs()

    @DBOS.scheduled("* * * * * *")
    @DBOS.workflow(name="above")
    def above(scheduled_time: datetime, actual_time: datetime) -> None:
        runs.add(scheduled_time, actual_time)

    @DBOS.workflow(name="below")
    @DBOS.scheduled("0 0 1 1 *")
    def below(scheduled_time: datetime, actual_time: datetime) -> None:
        pass

    try:
        DBOS(config=config)

        @DBOS.scheduled("0 0 1 1 *")
        @DBOS.workflow(name="between")
        def between(scheduled_time: datetime, actual_time: datetime) -> None:
            pass

        DBOS.launch()
        assert set(scheduler().next_ticks()) == {"above", "below", "between"}
        wait_until(lambda: runs.all(), timeout=10, what="a tick of a schedule declared before DBOS()")
        DBOS.destroy(destroy_registry=True)

        DBOS(config=config)
        DBOS.launch()
        # The rows stay in the database, but only processes declaring them in code fire them.
        assert scheduler().next_ticks() == {}
        assert {s["schedule_name"] for s in DBOS.list_schedules()} == {"above", "below", "between"}
    finally:
        DBOS.destroy(destroy_registry=True)


def test_seed_cron_jobs_example_runs_unchanged(dbos: type[DBOS]) -> None:
    def search_hackernews(topic: str) -> list[tuple[str, str]]:
        return []

    def post_to_slack(comment: str, url: str) -> None:
        pass

    @DBOS.scheduled("0 * * * *")  # Run once an hour
    @DBOS.workflow()
    def run_hourly(scheduled_time: datetime, actual_time: datetime):
        results = search_hackernews("serverless")
        for comment, url in results:
            post_to_slack(comment, url)

    name = run_hourly.__qualname__
    (listed,) = DBOS.list_schedules()
    assert (listed["schedule_name"], listed["workflow_name"], listed["schedule"]) == (name, name, "0 * * * *")
    assert listed["status"] == "ACTIVE" and listed["dynamic"] is False
    nxt = scheduler().next_ticks()[name]
    assert (nxt.minute, nxt.second) == (0, 0) and now_utc() < nxt <= now_utc() + timedelta(hours=1)


@pytest.mark.parametrize(
    "cron",
    ["bogus", "* * * *", "* * * * * * *", "61 * * * *", "* 25 * * *", "0 0 30 2 *", "H * * * *", "", "*/0 * * * *"],
)
def test_invalid_cron_is_rejected_at_decoration_showing_the_string(cron: str) -> None:
    with pytest.raises(ConfigError) as info:
        DBOS.scheduled(cron)
    assert repr(cron) in str(info.value)


def test_bad_declarations_are_rejected_at_decoration() -> None:
    with pytest.raises(ConfigError, match="Mars/Olympus"):
        DBOS.scheduled("0 9 * * *", timezone="Mars/Olympus")

    with pytest.raises(ConfigError, match=r"two arguments \(scheduled_time"):

        @DBOS.scheduled("* * * * *")
        @DBOS.workflow(name="no_args")
        def no_args() -> None:
            pass

    with pytest.raises(ConfigError, match="already scheduled"):

        @DBOS.scheduled("* * * * *")
        @DBOS.scheduled("0 * * * *")
        @DBOS.workflow(name="twice")
        def twice(scheduled_time: datetime, actual_time: datetime) -> None:
            pass

    DBOS.destroy(destroy_registry=True)


def test_launch_fails_clearly_when_a_scheduled_function_never_became_a_workflow(config: dict[str, Any]) -> None:
    DBOS.destroy(destroy_registry=True)

    @DBOS.scheduled("0 * * * *")
    def forgot_workflow(scheduled_time: datetime, actual_time: datetime) -> None:
        pass

    try:
        DBOS(config=config)
        with pytest.raises(ConfigError, match=r"forgot_workflow, which is not a workflow; add @DBOS.workflow\(\)"):
            DBOS.launch()
    finally:
        DBOS.destroy(destroy_registry=True)


def test_cron_fields() -> None:
    def next_two(expr: str) -> list[datetime]:
        ticks = parse_cron(expr).ticks_after(
            int(datetime(2030, 1, 1, 10, 0, 7, tzinfo=timezone.utc).timestamp() * 1000)
        )
        return [next(ticks), next(ticks)]

    at = datetime(2030, 1, 1, 10, 0, tzinfo=timezone.utc)
    assert next_two("*/10 * * * * *") == [at + 10 * SECOND, at + 20 * SECOND]  # 6 fields: seconds first
    assert next_two("30 * * * * *") == [at + 30 * SECOND, at + 90 * SECOND]
    assert next_two("*/15 * * * *") == [at + timedelta(minutes=15), at + timedelta(minutes=30)]
    assert next_two("@hourly") == [at + timedelta(hours=1), at + timedelta(hours=2)]
    assert next_two("0 12 * * Sun")[0] == datetime(2030, 1, 6, 12, tzinfo=timezone.utc)  # 2030-01-06 is a Sunday
    assert parse_cron("10-19/2 * * January,Feb *").expr == "10-19/2 * * Jan,Feb *"  # full names accepted
    paris = parse_cron("0 9 * * *", "Europe/Paris").ticks_after(int(at.timestamp() * 1000))
    assert next(paris) == datetime(2030, 1, 2, 8, 0, tzinfo=timezone.utc)  # 09:00 CET


# -- dynamic schedules --------------------------------------------------------------------------
def test_dynamic_create_pause_resume_delete(dbos: type[DBOS], store: Store) -> None:
    control, dyn, gone = Runs(), Runs(), Runs()

    @DBOS.scheduled("* * * * * *")
    @DBOS.workflow(name="control")
    def control_wf(scheduled_time: datetime, actual_time: datetime) -> None:
        control.add(scheduled_time, actual_time)

    @DBOS.workflow(name="dyn_wf")
    def dyn_wf(scheduled_time: datetime, actual_time: datetime) -> None:
        dyn.add(scheduled_time, actual_time)

    @DBOS.workflow(name="gone_wf")
    def gone_wf(scheduled_time: datetime, actual_time: datetime) -> None:
        gone.add(scheduled_time, actual_time)

    def started_after(name: str, moment: datetime) -> list[datetime]:
        """Ticks of a workflow started after ``moment``, once the scheduler has certainly passed
        two more ticks (it inserts each tick's workflow before it moves on to later ticks)."""
        wait_until(lambda: len(control.after(moment)) >= 2, timeout=10, what="two control ticks")
        return [t for _, _, t in workflow_rows(store, name) if t > moment]

    DBOS.create_schedule("dyn", dyn_wf, "* * * * * *", backfill=True)
    DBOS.create_schedule("gone", "gone_wf", "* * * * * *", timezone="UTC")  # by workflow name
    wait_until(lambda: dyn.all() and gone.all(), timeout=10, what="ticks of the dynamic schedules")
    listed = {s["schedule_name"]: s for s in DBOS.list_schedules()}
    assert set(listed) == {"control", "dyn", "gone"}
    assert listed["dyn"]["workflow_name"] == "dyn_wf" and listed["dyn"]["dynamic"] is True
    assert listed["dyn"]["backfill"] is True and listed["dyn"]["last_tick_at"] is not None
    assert listed["control"]["dynamic"] is False and listed["gone"]["timezone"] == "UTC"
    assert [s["schedule_name"] for s in DBOS.list_schedules(workflow_name="dyn_wf")] == ["dyn"]
    assert [s["schedule_name"] for s in DBOS.list_schedules(schedule_name_prefix="dy")] == ["dyn"]

    DBOS.pause_schedule("dyn")
    DBOS.delete_schedule("gone")
    changed_at = now_utc()
    assert [s["schedule_name"] for s in DBOS.list_schedules(status="PAUSED")] == ["dyn"]
    assert DBOS.get_schedule("gone") is None
    assert started_after("dyn_wf", changed_at) == []
    assert started_after("gone_wf", changed_at) == []

    resuming_at = now_utc()
    DBOS.resume_schedule("dyn")
    resumed_at = now_utc()
    wait_until(lambda: len(dyn.after(resumed_at)) >= 2, timeout=10, what="ticks after resume")
    # Even with backfill, the ticks that fell while paused are not replayed.
    assert [t for t in dyn.times() if changed_at < t < resuming_at] == []
    DBOS.pause_schedule("dyn")
    settled(store, "dyn_wf", dyn)
    assert_one_run_per_tick(dyn.after(resumed_at))


def test_dynamic_schedule_errors_write_nothing(dbos: type[DBOS]) -> None:
    @DBOS.workflow(name="good")
    def good(scheduled_time: datetime, actual_time: datetime) -> None:
        pass

    @DBOS.workflow(name="wrong_shape")
    def wrong_shape(x: int) -> None:
        pass

    def plain(scheduled_time: datetime, actual_time: datetime) -> None:
        pass

    DBOS.create_schedule("taken", good, "0 * * * *")
    with pytest.raises(ConfigError, match="'taken' already exists"):
        DBOS.create_schedule("taken", good, "0 * * * *")
    with pytest.raises(ConfigError, match="'every now and then'"):
        DBOS.create_schedule("bad-cron", good, "every now and then")
    with pytest.raises(ConfigError, match="Nowhere/Land"):
        DBOS.create_schedule("bad-tz", good, "0 * * * *", timezone="Nowhere/Land")
    with pytest.raises(WorkflowNotRegisteredError, match="plain"):
        DBOS.create_schedule("not-a-workflow", plain, "0 * * * *")
    with pytest.raises(WorkflowNotRegisteredError, match="'missing'"):
        DBOS.create_schedule("unknown-name", "missing", "0 * * * *")
    with pytest.raises(ConfigError, match="two arguments"):
        DBOS.create_schedule("wrong-shape", wrong_shape, "0 * * * *")
    with pytest.raises(ConfigError, match="schedule_name"):
        DBOS.create_schedule("", good, "0 * * * *")
    for action in (DBOS.pause_schedule, DBOS.resume_schedule, DBOS.delete_schedule):
        with pytest.raises(ScheduleNotFoundError, match="'nope'"):
            action("nope")
    with pytest.raises(ConfigError, match="status"):
        DBOS.list_schedules(status="RUNNING")
    assert [s["schedule_name"] for s in DBOS.list_schedules()] == ["taken"]


def test_declared_schedule_can_be_paused_but_not_deleted(dbos: type[DBOS], config: dict[str, Any]) -> None:
    @DBOS.scheduled("0 * * * *")
    @DBOS.workflow(name="declared")
    def declared(scheduled_time: datetime, actual_time: datetime) -> None:
        pass

    with pytest.raises(ConfigError, match="declared in code"):
        DBOS.delete_schedule("declared")
    DBOS.pause_schedule("declared")
    assert "declared" not in scheduler().next_ticks()
    assert (DBOS.get_schedule("declared") or {})["status"] == "PAUSED"

    DBOS.destroy()  # a redeploy keeps the operator's pause
    DBOS(config=config)
    DBOS.launch()
    assert "declared" not in scheduler().next_ticks()
    DBOS.resume_schedule("declared")
    assert "declared" in scheduler().next_ticks()


def test_schedules_changed_by_another_process_are_picked_up(dbos: type[DBOS], store: Store) -> None:
    runs = Runs()

    @DBOS.workflow(name="operated")
    def operated(scheduled_time: datetime, actual_time: datetime) -> None:
        runs.add(scheduled_time, actual_time)

    # An operator's tool writes straight to the system database; this process was not told.
    now = int(time.time() * 1000)
    assert store.schedule_create(
        ScheduleRow("ops", "operated", "* * * * * *", None, "ACTIVE", False, True, now, now, now)
    )
    wait_until(lambda: runs.all(), timeout=10, what="the new schedule to fire here")

    assert store.schedule_set_state("ops", "PAUSED", int(time.time() * 1000)) is not None
    wait_until(lambda: "ops" not in scheduler().next_ticks(), timeout=10, what="the pause to be noticed")
    noticed = now_utc()
    assert store.schedule_delete("ops")
    wait_until(lambda: len(runs.all()) == len(workflow_rows(store, "operated")), timeout=10)
    assert runs.after(noticed) == []  # ticks picked before the pause was noticed may still finish


def test_schedule_rows_progress_only_forward_and_resume_restarts_it(store: Store) -> None:
    def row(name: str, last: int | None = 1_000) -> ScheduleRow:
        return ScheduleRow(name, "wf", "* * * * *", None, "ACTIVE", True, True, last, 1, 1)

    assert store.schedule_create(row("a_%"))
    assert not store.schedule_create(row("a_%"))  # the name is taken; the first row is untouched
    assert store.schedule_create(row("ab"))
    store.schedule_advance("a_%", 5_000)
    store.schedule_advance("a_%", 3_000)  # a slower process reporting an older tick
    assert (store.schedule_get("a_%") or row("?")).last_tick_at == 5_000
    # Prefixes are literal: '%' and '_' are no wildcards.
    assert [r.schedule_name for r in store.schedule_list(name_prefix="a_")] == ["a_%"]
    assert {r.schedule_name for r in store.schedule_list(name_prefix="a")} == {"a_%", "ab"}

    paused = store.schedule_set_state("a_%", "PAUSED", 7_000)
    assert paused is not None and (paused.state, paused.last_tick_at) == ("PAUSED", 5_000)
    resumed = store.schedule_set_state("a_%", "ACTIVE", 9_000)
    assert resumed is not None and (resumed.state, resumed.last_tick_at) == ("ACTIVE", 9_000)
    again = store.schedule_set_state("a_%", "ACTIVE", 11_000)  # resuming an active one changes nothing
    assert again is not None and again.last_tick_at == 9_000
    assert {r.schedule_name for r in store.schedule_list(state="ACTIVE")} == {"a_%", "ab"}

    declared = store.schedule_declare(
        ScheduleRow("ab", "wf2", "0 * * * *", "UTC", "ACTIVE", False, False, 12_000, 12_000, 12_000)
    )
    # Code redefines the schedule; the operator-facing state and progress survive.
    assert (declared.workflow_name, declared.cron, declared.dynamic, declared.last_tick_at) == (
        "wf2",
        "0 * * * *",
        False,
        1_000,
    )
    assert store.schedule_delete("ab") and not store.schedule_delete("ab")
    assert store.schedule_set_state("ab", "PAUSED", 1) is None
