"""One conformance suite for both drivers: migrations, the fenced checkpoint write, adoption."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import psycopg
import pytest

from transact.storage import OwnershipLost, Store, WorkflowNotPending, open_store
from transact.storage.rows import ExecutorRow, StepRow, WorkflowRow


def row(wid: str, executor: str | None = "ex-1", status: str = "PENDING") -> WorkflowRow:
    return WorkflowRow(workflow_id=wid, status=status, name="wf", executor_id=executor, created_at=1, updated_at=1)


def step(wid: str, fid: int, output: bytes = b"x") -> StepRow:
    return StepRow(workflow_id=wid, function_id=fid, function_name="s", output=output)


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


def test_insert_is_idempotent(store: Store) -> None:
    stored, inserted = store.workflow_insert(row("w1"))
    assert inserted and stored.workflow_id == "w1"
    again, inserted = store.workflow_insert(row("w1", executor="ex-2"))
    assert not inserted and again.executor_id == "ex-1"


def test_step_record_is_fenced(store: Store) -> None:
    store.workflow_insert(row("w1"))
    assert store.step_record(step("w1", 1), executor_id="ex-1") is None
    # the same position again returns what was recorded first
    existing = store.step_record(step("w1", 1, b"other"), executor_id="ex-1")
    assert existing is not None and existing.output == b"x"
    with pytest.raises(OwnershipLost):
        store.step_record(step("w1", 2), executor_id="ex-2")
    store.workflow_cancel("w1", 2)
    with pytest.raises(WorkflowNotPending) as info:
        store.step_record(step("w1", 2), executor_id="ex-1")
    assert info.value.status == "CANCELLED"
    assert set(store.steps_load("w1")) == {1}


def test_finish_is_fenced_and_retry_safe(store: Store) -> None:
    store.workflow_insert(row("w1"))
    with pytest.raises(OwnershipLost):
        store.workflow_finish(workflow_id="w1", executor_id="ex-2", status="SUCCESS", output=b"1", error=None, now=2)
    store.workflow_finish(workflow_id="w1", executor_id="ex-1", status="SUCCESS", output=b"1", error=None, now=2)
    # a retried finish whose first attempt committed is accepted
    store.workflow_finish(workflow_id="w1", executor_id="ex-1", status="SUCCESS", output=b"1", error=None, now=3)
    got = store.workflow_get("w1")
    assert got is not None and got.status == "SUCCESS" and got.output == b"1"


def test_only_one_adopter_wins(store: Store) -> None:
    for i in range(20):
        store.workflow_insert(row(f"w{i}", executor="dead"))
    wins: dict[str, list[str]] = {"a": [], "b": []}

    def adopt(me: str) -> None:
        for i in range(20):
            if store.workflow_adopt(workflow_id=f"w{i}", from_executor="dead", to_executor=me, now=5) is not None:
                wins[me].append(f"w{i}")

    threads = [threading.Thread(target=adopt, args=(me,)) for me in wins]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(wins["a"] + wins["b"], key=lambda w: int(w[1:])) == [f"w{i}" for i in range(20)]
    assert not set(wins["a"]) & set(wins["b"])
    for i in range(20):
        got = store.workflow_get(f"w{i}")
        assert got is not None and got.recovery_attempts == 1


def test_cancel_reaches_descendants(store: Store) -> None:
    store.workflow_insert(row("p"))
    store.workflow_insert(
        WorkflowRow(workflow_id="c", status="PENDING", name="wf", parent_workflow_id="p", created_at=1, updated_at=1)
    )
    store.workflow_insert(
        WorkflowRow(workflow_id="g", status="ENQUEUED", name="wf", parent_workflow_id="c", created_at=1, updated_at=1)
    )
    assert sorted(store.workflow_cancel("p", 9)) == ["c", "g", "p"]
    assert store.workflow_cancel("p", 10) == []


def test_concurrent_checkpoints_keep_their_own_fence(store: Store) -> None:
    """Many threads checkpoint at once (on Postgres they share group-commit batches): each write
    succeeds or misses on its own merits, never because of a neighbour in the batch."""
    n = 60
    for i in range(n):
        store.workflow_insert(row(f"w{i}"))
    outcomes: dict[int, str] = {}
    barrier = threading.Barrier(n)

    def checkpoint(i: int) -> None:
        barrier.wait()
        owner = "ex-1" if i % 3 else "intruder"  # every third writer does not own its workflow
        try:
            for fid in (1, 2, 3):
                store.step_record(step(f"w{i}", fid), executor_id=owner)
            store.workflow_finish(
                workflow_id=f"w{i}", executor_id=owner, status="SUCCESS", output=b"1", error=None, now=5
            )
            outcomes[i] = "ok"
        except OwnershipLost:
            outcomes[i] = "fenced"

    threads = [threading.Thread(target=checkpoint, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for i in range(n):
        got = store.workflow_get(f"w{i}")
        assert got is not None
        if i % 3:
            assert outcomes[i] == "ok" and got.status == "SUCCESS"
            assert sorted(store.steps_load(f"w{i}")) == [1, 2, 3]
        else:
            assert outcomes[i] == "fenced" and got.status == "PENDING"
            assert store.steps_load(f"w{i}") == {}


def test_orphans_with_no_live_executor_include_owned_work(store: Store) -> None:
    """With nobody alive, every PENDING workflow is an orphan, owned or not (an empty NOT IN
    list once turned into NOT IN (NULL), which matches nothing)."""
    store.workflow_insert(row("owned", executor="dead-ex"))
    store.workflow_insert(row("unowned", executor=None))
    assert sorted(r.workflow_id for r in store.workflows_orphaned([], 10)) == ["owned", "unowned"]
    assert [r.workflow_id for r in store.workflows_orphaned(["dead-ex"], 10)] == ["unowned"]


def test_an_executor_is_forgotten_only_once_idle(store: Store) -> None:
    store.executor_register(
        ExecutorRow(
            executor_id="gone",
            hostname="h",
            pid=1,
            process_token="t",
            app_version=None,
            started_at=1,
            last_seen_at=1,
            state="RUNNING",
        )
    )
    store.workflow_insert(row("left-behind", executor="gone"))
    assert store.executor_delete("gone", only_if_idle=True) is False
    store.workflow_finish(
        workflow_id="left-behind", executor_id="gone", status="SUCCESS", output=b"1", error=None, now=2
    )
    assert store.executor_delete("gone", only_if_idle=True) is True
    assert [e.executor_id for e in store.executor_list()] == []
