"""The driver surface (DriverStore: storage/_base.py and the drivers) on both databases: migrations,
hints and listening, counters, settings, retries and closing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from tests.conftest import wait_until
from tests.storage.builders import Hints, step, trips, wf
from transact.storage import Store, Unavailable, open_store


def latest_version(store: Store) -> int:
    return max(v for v, _ in store.migration_scripts())


def test_migrate_is_idempotent(store: Store) -> None:
    assert store.migrate() == latest_version(store)
    assert store.migrate() == latest_version(store)


def test_concurrent_launches_migrate_safely(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'race.sqlite'}"
    else:
        base: str = request.getfixturevalue("pg_database")
        url = base.rsplit("/", 1)[0] + f"/{base.rsplit('/', 1)[1]}_race"
        with psycopg.connect(base.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {url.rsplit('/', 1)[1]}")
            conn.execute(f"CREATE DATABASE {url.rsplit('/', 1)[1]}")
    code = "import sys; from transact.storage import open_store; print(open_store(sys.argv[1]).migrate())"
    procs = [subprocess.Popen([sys.executable, "-c", code, url], stdout=subprocess.PIPE, text=True) for _ in range(4)]
    outs = [p.communicate(timeout=60)[0].strip() for p in procs]
    s = open_store(url)
    try:
        assert outs == [str(latest_version(s))] * 4
        assert all(p.returncode == 0 for p in procs)
    finally:
        s.close()
        if backend == "postgres":
            with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {url.rsplit('/', 1)[1]} WITH (FORCE)")


_SQLITE_KEY_COLUMNS = {"workflow_status": ("seq",), "operation_outputs": ("step_key",)}


def test_same_logical_schema_on_both_drivers(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    lite = open_store(f"sqlite:///{tmp_path / 'schema.sqlite'}")
    lite.migrate()
    pg_url: str = request.getfixturevalue("pg_database")
    pg = open_store(pg_url)
    pg.migrate()
    tables = [
        "workflow_status",
        "operation_outputs",
        "notifications",
        "workflow_events",
        "streams",
        "executors",
        "schedules",
    ]
    for table in tables:
        lite_cols = [r[1] for r in lite.read(lambda tx, t=table: tx.all(f"PRAGMA table_info({t})"))]
        # SQLite's physical step keys (its migration 0010) are not part of the logical schema.
        lite_cols = [c for c in lite_cols if c not in _SQLITE_KEY_COLUMNS.get(table, ())]
        pg_cols = [
            r[0]
            for r in pg.read(
                lambda tx, t=table: tx.all(
                    "SELECT column_name FROM information_schema.columns WHERE table_schema = 'transact' AND table_name = ? "
                    "ORDER BY ordinal_position",
                    (t,),
                )
            )
        ]
        assert lite_cols == pg_cols, table
    lite.close()
    pg.close()


def test_migration_scripts_in_version_order(store: Store) -> None:
    versions = [v for v, _ in store.migration_scripts()]
    assert versions == sorted(versions) and versions[0] == 1
    assert all(script.strip() for _, script in store.migration_scripts())


def test_reset_drops_every_table(db_url: str) -> None:
    s = open_store(db_url)
    try:
        s.migrate()
        s.reset()
        assert s.schema_version() == 0
        assert s.migrate() == latest_version(s)
        assert s.workflow_get("any") is None
    finally:
        s.close()


def test_identity(store: Store, backend: str) -> None:
    assert store.dialect == backend
    assert store.pushes_wakeups is (backend == "postgres")
    assert store.url.startswith("sqlite:///" if backend == "sqlite" else "postgresql://")


def test_settings_are_settable(store: Store) -> None:
    store.retry_timeout_s = 1.5
    store.group_commit = False
    store.workflow_insert(wf("w1"))  # without group commit: each write alone
    assert store.step_record(step("w1", 1), executor_id="ex-1") is None
    assert store.retry_timeout_s == 1.5 and store.group_commit is False


def test_round_trip_counters(store: Store) -> None:
    before = store.round_trips
    _, n = trips(store, lambda: store.workflow_get("w1"))
    assert n == 1 and store.round_trips - before >= 1


def test_hints_go_to_the_handler_until_it_is_removed(store: Store) -> None:
    hints = Hints(store)
    store.hint("queue", "q")
    store.hint("msg", "w", "topic")
    assert hints.take() == [("queue", "q", ""), ("msg", "w", "topic")]
    store.set_hint_handler(None)
    store.hint("queue", "q")
    assert hints.take() == []


def test_listening_delivers_other_processes_commits(store: Store, db_url: str) -> None:
    """Postgres delivers the specific hint; SQLite's poller the catch-all ``*`` (re-read)."""
    store.workflow_insert(wf("dest"))
    listener = open_store(db_url)
    try:
        hints = Hints(listener)
        listener.start_listening()
        wanted = ("msg", "dest", "t") if store.pushes_wakeups else ("*", "", "")

        def send_and_look() -> bool:
            # (again on every poll: SQLite's poller may take its first reading after a commit)
            store.message_send(destination_id="dest", topic="t", message=b"m", idempotency_key=None, now=1)
            return wanted in hints.seen

        wait_until(send_and_look, 10, interval=0.05, what=f"hint {wanted}")
    finally:
        listener.close()


def test_own_finish_is_hinted_once(db_url: str) -> None:
    """A finish this process wrote is hinted when written; the driver's echo of it (Postgres
    NOTIFY) is skipped. Another process's finish arrives through the listener."""
    mine, theirs = open_store(db_url), open_store(db_url)
    try:
        mine.migrate()
        for wid in ("own", "foreign"):
            mine.workflow_insert(wf(wid))
        hints = Hints(mine)
        mine.start_listening()
        mine.workflow_finish(workflow_id="own", executor_id="ex-1", status="SUCCESS", output=None, error=None, now=2)
        theirs.workflow_finish(
            workflow_id="foreign", executor_id="ex-1", status="SUCCESS", output=None, error=None, now=2
        )
        if mine.pushes_wakeups:  # notifications arrive in commit order: ours would come first
            wait_until(lambda: ("done", "foreign", "") in hints.seen, 10, what="the foreign finish")
        else:
            commits = iter(range(10**6))

            def commit_and_look() -> bool:
                # (a new value each time: SQLite's poller may take its first reading after a commit)
                theirs.event_set(workflow_id="foreign", key="k", value=b"v", now=next(commits))
                return ("*", "", "") in hints.seen

            wait_until(commit_and_look, 10, interval=0.05, what="the poller's hint")
        assert hints.seen.count(("done", "own", "")) == 1
    finally:
        mine.close()
        theirs.close()


def test_outages_are_retried_until_success_or_close(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    store.workflow_insert(wf("w1"))
    real = store._single  # type: ignore[attr-defined]
    failures = {"left": 3}

    def flaky(fn: object) -> object:
        if failures["left"]:
            failures["left"] -= 1
            raise Unavailable("simulated outage")
        return real(fn)

    monkeypatch.setattr(store, "_single", flaky)
    got = store.workflow_get("w1")
    assert got is not None and failures["left"] == 0
    failures["left"] = 10**6
    store.retry_timeout_s = 0.2
    with pytest.raises(Unavailable):
        store.workflow_get("w1")  # the budget runs out
    store.retry_timeout_s = None
    store.close()
    with pytest.raises(Unavailable):
        store.workflow_get("w1")  # closed: no more retries


def test_close_stops_listening(db_url: str) -> None:
    s = open_store(db_url)
    s.migrate()
    s.start_listening()
    s.close()
    again = open_store(db_url)
    try:
        assert again.schema_version() > 0
    finally:
        again.close()
