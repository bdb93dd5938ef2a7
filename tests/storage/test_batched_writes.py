"""Group commit's set forms and the lean statement path (migration 0008 and storage/_pgfast.py).

A batch of concurrent checkpoints and finishes goes to Postgres as one statement; every call must
still get its own answer (written, fenced out, conflict), as if it had run alone. The batch is
built by hand here so its composition is certain; the conformance suite covers the same rules
with real concurrent threads on both drivers.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

import psycopg
import pytest

from tests.conftest import wait_until
from transact.engine.ids import new_workflow_id
from transact.storage import Conflict, Store, _pgfast
from transact.storage.fence import fenced_step_params
from transact.storage.postgres_sql import FINISH_MANY, RECORD_STEP, RECORD_STEPS
from transact.storage.rows import StepRow, WorkflowRow
from transact.storage.workflows import _FINISH


def _row(wid: str, executor: str = "ex-1") -> WorkflowRow:
    return WorkflowRow(workflow_id=wid, status="PENDING", name="wf", executor_id=executor, created_at=1, updated_at=1)


def _step_params(wid: str, fid: int, executor: str, output: bytes | None = b"\x80\x04K\x01.") -> tuple[object, ...]:
    step = StepRow(workflow_id=wid, function_id=fid, function_name="s", output=output, started_at=1, completed_at=2)
    return fenced_step_params(step, wid, executor)


def test_one_batch_answers_each_call_on_its_own(store: Store) -> None:
    """Written, fenced out (wrong owner, unknown workflow), duplicate of an earlier call, a
    value too large for the JSON form, a finish and a fenced finish: all in one batch."""
    if store.dialect != "postgres":
        pytest.skip("group commit is the Postgres driver's; SQLite writes one statement at a time")
    from transact.storage.pg_group_commit import GroupCommit, _Request
    from transact.storage.postgres import PostgresStore

    assert isinstance(store, PostgresStore)
    for wid in ("a", "b", "c", "d", "e"):
        store.workflow_insert(_row(wid))
    big = os.urandom(10_000)
    requests = [
        _Request(RECORD_STEP, _step_params("a", 1, "ex-1"), RECORD_STEPS),  # written
        _Request(RECORD_STEP, _step_params("b", 1, "intruder"), RECORD_STEPS),  # not the owner
        _Request(RECORD_STEP, _step_params("ghost", 1, "ex-1"), RECORD_STEPS),  # no such workflow
        _Request(RECORD_STEP, _step_params("a", 1, "ex-1", b"again"), RECORD_STEPS),  # same row again
        _Request(RECORD_STEP, _step_params("c", 1, "ex-1", big), RECORD_STEPS),  # large: goes alone
        _Request(RECORD_STEP, _step_params("c", 2, "ex-1", None), RECORD_STEPS),  # NULL output
        _Request(_FINISH, ("SUCCESS", b"\x01", None, 7, "d", "ex-1"), FINISH_MANY),  # finished
        _Request(_FINISH, ("ERROR", None, b"\x02", 7, "e", "intruder"), FINISH_MANY),  # not the owner
    ]
    group = GroupCommit(store.connect_once)
    try:
        group._execute(requests)
    finally:
        group.close()
    counts = [r.rowcount for r in requests]
    assert counts[1:3] == [0, 0] and counts[4:] == [1, 1, 1, 0]
    # The two calls for row (a, 1): exactly one wins, and the stored value is the winner's.
    assert counts[0] + counts[3] == 1
    winner = requests[0] if counts[0] else requests[3]
    steps_a = store.steps_load("a")
    assert list(steps_a) == [1] and steps_a[1].output == winner.params[3]
    assert store.steps_load("b") == {}
    steps_c = store.steps_load("c")
    assert steps_c[1].output == big and steps_c[2].output is None
    done = store.workflow_get("d")
    assert done is not None and done.status == "SUCCESS" and done.output == b"\x01" and done.updated_at == 7
    untouched = store.workflow_get("e")
    assert untouched is not None and untouched.status == "PENDING" and untouched.error is None


def test_text_keys_and_values_survive_the_json_form(store: Store) -> None:
    """Ids with quotes, backslashes, percent signs and non-ASCII text go through the JSON batch
    and come back as the same keys."""
    if store.dialect != "postgres":
        pytest.skip("group commit is the Postgres driver's")
    from transact.storage.pg_group_commit import GroupCommit, _Request
    from transact.storage.postgres import PostgresStore

    assert isinstance(store, PostgresStore)
    ids = ['q"uote', "back\\slash", "50%_off", "naïve-✓", "x" * 1500]
    for wid in ids:
        store.workflow_insert(_row(wid))
    requests = [_Request(RECORD_STEP, _step_params(wid, 3, "ex-1"), RECORD_STEPS) for wid in ids]
    group = GroupCommit(store.connect_once)
    try:
        group._execute(requests)
    finally:
        group.close()
    assert [r.rowcount for r in requests] == [1] * len(ids)
    for wid in ids:
        assert list(store.steps_load(wid)) == [3]


def test_lean_path_raises_what_psycopg_raises(store: Store) -> None:
    """A constraint violation on the lean path is the same error class (mapped to Conflict), and
    values it cannot encode fall back to psycopg's adapters."""
    if store.dialect != "postgres":
        pytest.skip("the lean path is the Postgres driver's")
    assert _pgfast.encode(["a", 1, None, b"x", True]) is not None
    assert _pgfast.encode([1.5]) is None and _pgfast.encode([["list"]]) is None
    store.workflow_insert(_row("dup"))
    sql = "INSERT INTO workflow_status (workflow_id, status, name, created_at, updated_at) VALUES (?, 'PENDING', 'wf', ?, ?)"
    with pytest.raises(Conflict):
        store.write(lambda tx: tx.run(sql, ("dup", 1, 1)), single=True)
    with psycopg.connect(store.url, autocommit=True, options="-c search_path=transact") as conn:
        with pytest.raises(psycopg.errors.UniqueViolation):
            _pgfast.execute(conn, sql, _pgfast.encode(("dup", 1, 1)) or ([], []))
        # and the connection stays usable afterwards
        assert (
            _pgfast.rowcount(
                _pgfast.execute(
                    conn,
                    "UPDATE workflow_status SET updated_at = ? WHERE workflow_id = ?",
                    _pgfast.encode((2, "dup")) or ([], []),
                )
            )
            == 1
        )


def test_delete_removes_steps_without_a_foreign_key(store: Store) -> None:
    """Migration 0008 drops the step table's foreign key on Postgres: deleting a workflow still
    deletes its checkpoints, on both drivers."""
    store.workflow_insert(_row("gone"))
    store.step_record(StepRow(workflow_id="gone", function_id=1, function_name="s", output=b"1"), executor_id="ex-1")
    assert store.workflow_delete("gone", with_children=False) == ["gone"]
    count = store.read(lambda tx: tx.one("SELECT COUNT(*) FROM operation_outputs WHERE workflow_id = ?", ("gone",)))
    assert count is not None and count[0] == 0


def test_workflow_ids_are_unique_time_ordered_uuids_even_across_fork() -> None:
    ids = {new_workflow_id() for _ in range(5000)}
    assert len(ids) == 5000
    assert all(uuid.UUID(i).version == 7 and uuid.UUID(i).variant == uuid.RFC_4122 for i in list(ids)[:50])
    # time-ordered: an id made a few milliseconds later sorts after (text and bytes alike)
    first = new_workflow_id()
    wait_until(lambda: time.time_ns() // 1_000_000 > int(first.replace("-", "")[:12], 16), timeout=5, what="a new ms")
    later = new_workflow_id()
    assert first < later and uuid.UUID(first).bytes < uuid.UUID(later).bytes
    assert abs(int(later.replace("-", "")[:12], 16) - time.time_ns() // 1_000_000) < 60_000  # Unix milliseconds
    code = (
        "import os, sys\n"
        "from transact.engine.ids import new_workflow_id\n"
        "new_workflow_id()\n"
        "r, w = os.pipe()\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    os.write(w, new_workflow_id().encode()); os._exit(0)\n"
        "os.waitpid(pid, 0)\n"
        "child = os.read(r, 100).decode()\n"
        "print(child != new_workflow_id())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "True"
