"""Step outcomes stay with their workflow, whatever the physical key.

SQLite keys a step by one integer, ``(workflow seq << 28) + function id`` (its migration 0010);
Postgres by ``(workflow_id, function_id)``. The same reads, forks and deletes must see the same
rows on both, up to the highest step position, and an upgraded SQLite file keeps its steps.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import migrate_up_to
from transact import DBOS
from transact.engine.context import current_workflow
from transact.errors import TransactError
from transact.storage import Conflict, Store, open_store
from transact.storage.rows import MAX_FUNCTION_ID, StepRow, WorkflowRow


def _row(wid: str) -> WorkflowRow:
    return WorkflowRow(workflow_id=wid, status="PENDING", name="wf", executor_id="ex", created_at=1, updated_at=1)


def _step(wid: str, fid: int) -> StepRow:
    return StepRow(workflow_id=wid, function_id=fid, function_name=f"s{fid}", output=f"{wid}:{fid}".encode())


def _record(store: Store, wid: str, fids: list[int]) -> None:
    for fid in fids:
        assert store.step_record(_step(wid, fid), executor_id="ex") is None


def test_steps_stay_with_their_workflow(store: Store) -> None:
    for wid in ("a", "b", "c"):
        store.workflow_insert(_row(wid))
    # interleaved writes, and the highest position next to the next workflow's first
    _record(store, "a", [1, 2])
    _record(store, "b", [1])
    _record(store, "a", [3, MAX_FUNCTION_ID])
    _record(store, "c", [1, 2])

    loaded = store.steps_load_many(["a", "b", "c", "missing"])
    assert sorted(loaded["a"]) == [1, 2, 3, MAX_FUNCTION_ID]
    assert sorted(loaded["b"]) == [1] and sorted(loaded["c"]) == [1, 2] and loaded["missing"] == {}
    assert all(s.output == f"a:{f}".encode() and s.workflow_id == "a" for f, s in loaded["a"].items())
    assert [s.function_id for s in store.steps_list("a")] == [1, 2, 3, MAX_FUNCTION_ID]

    # the same position again: the first outcome is returned, not another workflow's
    existing = store.step_record(
        StepRow(workflow_id="b", function_id=1, function_name="s1", output=b"x"), executor_id="ex"
    )
    assert existing is not None and existing.output == b"b:1"

    # fork: positions below start_step (a start past the key width copies everything)
    forked = WorkflowRow(workflow_id="a-fork", status="ENQUEUED", name="wf", created_at=2, updated_at=2)
    assert store.workflow_fork(forked, source_id="a", start_step=3) == 2
    assert {f: s.output for f, s in store.steps_load("a-fork").items()} == {1: b"a:1", 2: b"a:2"}
    whole = WorkflowRow(workflow_id="a-all", status="ENQUEUED", name="wf", created_at=2, updated_at=2)
    assert store.workflow_fork(whole, source_id="a", start_step=MAX_FUNCTION_ID * 4) == 4

    # delete takes its own steps only
    assert store.workflow_delete("a", with_children=False) == ["a"]
    after = store.steps_load_many(["a", "b", "c", "a-fork", "a-all"])
    assert after["a"] == {} and sorted(after["b"]) == [1] and sorted(after["c"]) == [1, 2]
    assert sorted(after["a-fork"]) == [1, 2] and sorted(after["a-all"]) == [1, 2, 3, MAX_FUNCTION_ID]


def test_a_workflow_past_the_last_step_position_gets_a_clear_error(dbos: type[DBOS]) -> None:
    @DBOS.step()
    def one() -> int:
        return 1

    @DBOS.workflow()
    def long_runner() -> int:
        ctx = current_workflow.get()
        assert ctx is not None
        ctx.function_id = MAX_FUNCTION_ID - 1  # as if it had recorded that many steps
        one()  # the last position
        try:
            one()
        except TransactError as exc:
            assert "step positions" in str(exc) and "child workflows" in str(exc)
            return ctx.function_id
        raise AssertionError("a step past the last position was accepted")

    handle = DBOS.start_workflow(long_runner)
    assert handle.get_result() == MAX_FUNCTION_ID + 1
    assert [s["function_id"] for s in DBOS.list_workflow_steps(handle.workflow_id)] == [MAX_FUNCTION_ID]


@pytest.fixture
def version_9_file(tmp_path: Path) -> Iterator[Path]:
    """A SQLite system database as version 9 left it, with steps, a message and an event."""
    path = tmp_path / "old.sqlite"
    migrate_up_to(f"sqlite:///{path}", 9)
    conn = sqlite3.connect(path)  # version 9's layout, written directly (today's code writes version 10's)
    for wid in ("w1", "w2"):
        conn.execute(
            "INSERT INTO workflow_status (workflow_id, status, name, executor_id, created_at, updated_at) "
            "VALUES (?, 'PENDING', 'wf', 'ex', 1, 1)",
            (wid,),
        )
    for wid, fid in [("w1", 1), ("w1", 2), ("w2", 1)]:
        conn.execute(
            "INSERT INTO operation_outputs (workflow_id, function_id, function_name, output) VALUES (?, ?, ?, ?)",
            (wid, fid, f"s{fid}", f"{wid}:{fid}".encode()),
        )
    conn.execute("INSERT INTO notifications (destination_id, topic, message, created_at) VALUES ('w2', 't', x'00', 1)")
    conn.commit()
    conn.close()
    yield path


def test_sqlite_upgrade_keys_existing_steps(version_9_file: Path) -> None:
    conn = sqlite3.connect(version_9_file)
    rowids = dict(conn.execute("SELECT workflow_id, rowid FROM workflow_status").fetchall())
    conn.close()

    store = open_store(f"sqlite:///{version_9_file}")
    try:
        assert store.migrate() >= 10
        loaded = store.steps_load_many(["w1", "w2"])
        assert {f: s.output for f, s in loaded["w1"].items()} == {1: b"w1:1", 2: b"w1:2"}
        assert {f: s.output for f, s in loaded["w2"].items()} == {1: b"w2:1"}
        keys = store.read(lambda tx: tx.all("SELECT workflow_id, seq FROM workflow_status ORDER BY seq"))
        assert dict(keys) == rowids  # the old rowids, now stable
        steps = store.read(lambda tx: tx.all("SELECT step_key, workflow_id, function_id FROM operation_outputs"))
        assert sorted(steps) == sorted((rowids[w] * 2**28 + f, w, f) for w, f in [("w1", 1), ("w1", 2), ("w2", 1)])
        # the children kept their rows and their foreign keys still hold
        assert store.read(lambda tx: tx.one("SELECT COUNT(*) FROM notifications"))[0] == 1  # type: ignore[index]
        store.workflow_insert(_row("w3"))
        _record(store, "w3", [1])
        assert store.workflow_delete("w2", with_children=False) == ["w2"]
        assert store.read(lambda tx: tx.one("SELECT COUNT(*) FROM notifications"))[0] == 0  # type: ignore[index]
        assert sorted(store.steps_load("w3")) == [1]
    finally:
        store.close()


def test_sqlite_refuses_a_workflow_number_past_the_key_width(tmp_path: Path) -> None:
    """SQLite only: its step keys hold workflow numbers below 2^35 - 1 (Postgres has no such key).
    The highest one still keeps its whole step range (the range's end must not overflow)."""
    path = tmp_path / "full.sqlite"
    store = open_store(f"sqlite:///{path}")
    store.migrate()
    conn = sqlite3.connect(path)
    insert = (
        "INSERT INTO workflow_status (workflow_id, status, name, executor_id, created_at, updated_at, seq) "
        "VALUES (?, 'PENDING', 'wf', 'ex', 1, 1, ?)"
    )
    with pytest.raises(sqlite3.IntegrityError, match="used all 34,359,738,366 workflow numbers"):
        conn.execute(insert, ("over", 2**35 - 1))
    conn.execute(insert, ("last", 2**35 - 2))
    conn.commit()
    conn.close()
    try:
        _record(store, "last", [1, MAX_FUNCTION_ID])
        assert sorted(store.steps_load("last")) == [1, MAX_FUNCTION_ID]
        assert [s.function_id for s in store.steps_list("last")] == [1, MAX_FUNCTION_ID]
        assert store.workflow_delete("last", with_children=False) == ["last"]
        assert store.read(lambda tx: tx.one("SELECT COUNT(*) FROM operation_outputs"))[0] == 0  # type: ignore[index]
    finally:
        store.close()


def test_deleting_a_missing_parent_leaves_its_children_alone(store: Store) -> None:
    store.workflow_insert(_row("parent"))
    child = WorkflowRow(
        workflow_id="child",
        status="PENDING",
        name="wf",
        executor_id="ex",
        parent_workflow_id="parent",
        created_at=1,
        updated_at=1,
    )
    store.workflow_insert(child)
    _record(store, "child", [1, 2])
    assert store.workflow_delete("parent", with_children=False) == ["parent"]
    assert store.workflow_delete("parent", with_children=True) == []  # already gone: nothing happens
    assert sorted(store.steps_load("child")) == [1, 2]
    assert store.workflow_delete("child", with_children=True) == ["child"]
    assert store.steps_load("child") == {}


def test_sqlite_steps_go_with_a_row_deleted_by_hand(tmp_path: Path) -> None:
    """SQLite only (Postgres steps have no cascade since its 0008; workflow_delete removes them):
    a row deleted outside the library takes its steps along, so a reused number starts empty."""
    path = tmp_path / "hand.sqlite"
    store = open_store(f"sqlite:///{path}")
    store.migrate()
    try:
        store.workflow_insert(_row("old"))
        _record(store, "old", [1, 2])
        conn = sqlite3.connect(path)  # foreign keys off, as in the sqlite3 shell
        seq = conn.execute("SELECT seq FROM workflow_status WHERE workflow_id = 'old'").fetchone()[0]
        conn.execute("DELETE FROM workflow_status WHERE workflow_id = 'old'")
        conn.commit()
        conn.close()
        assert store.read(lambda tx: tx.one("SELECT COUNT(*) FROM operation_outputs"))[0] == 0  # type: ignore[index]
        store.workflow_insert(_row("new"))  # the newest row was deleted: its number is reused
        assert store.read(lambda tx: tx.one("SELECT seq FROM workflow_status WHERE workflow_id = 'new'"))[0] == seq  # type: ignore[index]
        assert store.steps_load("new") == {}
        _record(store, "new", [1])
        assert {f: s.output for f, s in store.steps_load("new").items()} == {1: b"new:1"}
    finally:
        store.close()


def test_sqlite_orphans_made_by_hand_do_not_block_launch_or_upgrade(version_9_file: Path) -> None:
    """A row orphaned outside the library (foreign keys are off in the sqlite3 shell) is not the
    migration's doing: the upgrade and later launches go on; what a migration orphans is refused."""
    conn = sqlite3.connect(version_9_file)
    conn.execute("INSERT INTO workflow_events (workflow_id, key, value, updated_at) VALUES ('ghost', 'k', x'00', 1)")
    conn.commit()
    conn.close()
    for _ in range(2):  # the upgrade, then a launch with nothing to apply
        store = open_store(f"sqlite:///{version_9_file}")
        try:
            assert store.migrate() >= 10
            assert sorted(store.steps_load("w1")) == [1, 2]
        finally:
            store.close()


def test_sqlite_a_migration_that_orphans_rows_is_rolled_back(tmp_path: Path) -> None:
    """SQLite migrates with foreign keys off (rebuilding a parent table needs it), so the driver
    checks them itself before committing: a script that orphans rows is refused, nothing applied."""
    store = open_store(f"sqlite:///{tmp_path / 'orphan.sqlite'}")
    store.migrate()
    store.workflow_insert(_row("w"))
    store.message_send(destination_id="w", topic="t", message=b"m", idempotency_key=None, now=1)
    shipped = store.migration_scripts
    bad = "UPDATE workflow_status SET workflow_id = 'renamed' WHERE workflow_id = 'w';"
    store.migration_scripts = lambda: iter([*shipped(), (99, bad)])  # type: ignore[method-assign]
    try:
        with pytest.raises(Conflict, match="without their parent"):
            store.migrate()
        versions = store.read(lambda tx: tx.all("SELECT version FROM schema_version"))
        assert (99,) not in versions
        assert store.read(lambda tx: tx.one("SELECT COUNT(*) FROM workflow_status WHERE workflow_id = 'w'"))[0] == 1  # type: ignore[index]
    finally:
        store.close()
