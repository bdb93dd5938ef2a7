"""ScheduleStore conformance (storage/schedules.py), run on both drivers."""

from __future__ import annotations

from dataclasses import replace

from tests.storage.builders import Hints, schedule, trips
from transact.storage import Conflict, Store


def test_create_refuses_a_taken_name(store: Store) -> None:
    hints = Hints(store)
    created, n = trips(store, lambda: store.schedule_create(schedule("s1")))
    assert created and n == 1 and hints.take() == [("schedule", "s1", "")]
    assert store.schedule_create(replace(schedule("s1"), cron="0 * * * *")) is False
    got = store.schedule_get("s1")
    assert got is not None and got.cron == "* * * * *"


def test_declare_follows_the_code_but_keeps_state_and_progress(store: Store) -> None:
    stored, n = trips(store, lambda: store.schedule_declare(replace(schedule("s1"), dynamic=False)))
    assert n == 1 and stored.dynamic is False and stored.backfill is False
    store.schedule_set_state("s1", "PAUSED", 5)
    store.schedule_advance("s1", 40)
    again = store.schedule_declare(replace(schedule("s1", workflow="other", now=9), cron="0 * * * *", dynamic=False))
    assert again.workflow_name == "other" and again.cron == "0 * * * *" and again.updated_at == 9
    assert again.state == "PAUSED" and again.last_tick_at == 40 and again.created_at == 1


def test_get(store: Store) -> None:
    missing, n = trips(store, lambda: store.schedule_get("s1"))
    assert missing is None and n == 1
    store.schedule_create(schedule("s1"))
    assert store.schedule_get("s1") == schedule("s1")


def test_list_filters_in_name_order(store: Store) -> None:
    store.schedule_create(schedule("b-one", workflow="x"))
    store.schedule_create(schedule("a-two", workflow="y", state="PAUSED"))
    store.schedule_create(schedule("b-three", workflow="y"))
    everything, n = trips(store, store.schedule_list)
    assert [s.schedule_name for s in everything] == ["a-two", "b-one", "b-three"] and n == 1
    assert [s.schedule_name for s in store.schedule_list(state="ACTIVE")] == ["b-one", "b-three"]
    assert [s.schedule_name for s in store.schedule_list(workflow_name="y", name_prefix="b-")] == ["b-three"]
    assert store.schedule_list(name_prefix="c") == []


def test_pause_and_resume(store: Store) -> None:
    store.schedule_create(schedule("s1"))
    store.schedule_advance("s1", 10)
    hints = Hints(store)
    paused = store.schedule_set_state("s1", "PAUSED", 20)
    assert paused is not None and paused.state == "PAUSED" and paused.last_tick_at == 10
    resumed = store.schedule_set_state("s1", "ACTIVE", 30)
    assert resumed is not None and resumed.state == "ACTIVE" and resumed.last_tick_at == 30  # no backfill
    active = store.schedule_set_state("s1", "ACTIVE", 40)  # already active: progress kept
    assert active is not None and active.last_tick_at == 30
    assert hints.take() == [("schedule", "s1", "")] * 3
    assert store.schedule_set_state("missing", "PAUSED", 1) is None


def test_delete(store: Store) -> None:
    store.schedule_create(schedule("s1"))
    hints = Hints(store)
    deleted, n = trips(store, lambda: store.schedule_delete("s1"))
    assert deleted and n == 1 and hints.take() == [("schedule", "s1", "")]
    assert store.schedule_delete("s1") is False and store.schedule_get("s1") is None


def test_advance_only_moves_forward(store: Store) -> None:
    store.schedule_create(schedule("s1"))
    _, n = trips(store, lambda: store.schedule_advance("s1", 50))
    store.schedule_advance("s1", 20)
    got = store.schedule_get("s1")
    assert n == 1 and got is not None and got.last_tick_at == 50


def test_apply_creates_redefines_and_leaves_equal_rows_alone(store: Store) -> None:
    hints = Hints(store)
    store.schedule_declare(replace(schedule("declared"), dynamic=False))
    hints.take()
    wanted = [replace(schedule("b"), context=b"ctx", queue_name="q"), schedule("a")]
    assert store.schedule_apply(wanted) == ["a", "b"]
    assert sorted(hints.take()) == [("schedule", "a", ""), ("schedule", "b", "")]
    got = store.schedule_get("b")
    assert got is not None and got.context == b"ctx" and got.queue_name == "q"
    store.schedule_set_state("a", "PAUSED", 5)
    store.schedule_advance("a", 40)
    hints.take()
    assert store.schedule_apply(wanted) == [] and hints.take() == []  # the same rows: nothing written
    assert store.schedule_apply([replace(schedule("a", now=9), cron="0 * * * *", context=b"new")]) == ["a"]
    a = store.schedule_get("a")
    assert a is not None and a.cron == "0 * * * *" and a.context == b"new" and a.updated_at == 9
    assert a.state == "PAUSED" and a.last_tick_at == 40  # state and progress are kept
    try:
        store.schedule_apply([schedule("c"), schedule("declared")])
    except Conflict:
        pass
    else:
        raise AssertionError("applying over a declared schedule must fail")
    assert store.schedule_get("c") is None  # nothing of a refused apply is written
