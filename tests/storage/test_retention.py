"""RetentionStore on both drivers: which finished workflows a batch deletes, with everything
recorded for them, what it keeps, and the boundary of the newest N."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from tests.storage.builders import step, wf
from transact.storage import Conflict, Store, Unavailable, open_store
from transact.storage.retention import RETENTION_TURN_KEY
from transact.storage.retention_protocol import RetentionBatch

FINISHED = ("SUCCESS", "ERROR", "CANCELLED", "MAX_RECOVERY_ATTEMPTS_EXCEEDED")
# Every table that holds rows of one workflow (SQLite also keeps workflow_attributes in step with
# the attributes column).
PER_WORKFLOW = {
    "operation_outputs": "workflow_id",
    "notifications": "destination_id",
    "workflow_events": "workflow_id",
    "streams": "workflow_id",
}


def _seed(store: Store, wid: str, status: str, finished_at: int, **fields: Any) -> None:
    """A workflow with two steps, a read and an unread message, an event, a stream and attributes,
    then moved to ``status`` at ``finished_at``."""
    store.workflow_insert(wf(wid, created_at=finished_at - 5, updated_at=finished_at - 5, **fields))
    for fid in (1, 2):
        assert store.step_record(step(wid, fid), executor_id="ex-1") is None

    def unit(tx: Any) -> None:
        for key, consumed in (("k-read", finished_at), (None, None)):
            tx.run(
                "INSERT INTO notifications (destination_id, topic, message, idempotency_key, created_at, consumed_at) "
                "VALUES (?, 't', ?, ?, ?, ?)",
                (wid, b"m", key, finished_at, consumed),
            )
        tx.run(
            "INSERT INTO workflow_events (workflow_id, key, value, updated_at) VALUES (?, 'e', ?, ?)", (wid, b"v", 1)
        )
        tx.run(
            "INSERT INTO streams (workflow_id, key, seq, value, closed) VALUES (?, 's', 0, ?, ?)", (wid, b"v", False)
        )
        tx.run(
            "UPDATE workflow_status SET status = ?, updated_at = ?, attributes = ? WHERE workflow_id = ?",
            (status, finished_at, '{"a":1}', wid),
        )

    store.write(unit)  # type: ignore[attr-defined]


def ids(batch: RetentionBatch | None) -> list[str] | None:
    """The deleted ids, sorted (None: another collector held the lock)."""
    return None if batch is None else sorted(batch.deleted)


# Advisory locks of this test's database (parameter: the key), as pg_locks splits a bigint key.
_ADVISORY = (
    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' "
    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
    "AND (classid::bigint << 32) + objid::bigint = %s"
)


def _await_turn_waiter(admin: Any) -> None:
    """Until a session waits for the collectors' turn (its batch statement has started), or fail."""
    deadline = time.monotonic() + 10
    while not admin.execute(_ADVISORY + " AND NOT granted", (RETENTION_TURN_KEY,)).fetchall():
        assert time.monotonic() < deadline, "no batch came to wait for the turn"
        time.sleep(0.005)


def _left(store: Store) -> dict[str, set[str]]:
    def unit(tx: Any) -> dict[str, set[str]]:
        out = {"workflow_status": {r[0] for r in tx.all("SELECT workflow_id FROM workflow_status")}}
        for table, column in PER_WORKFLOW.items():
            out[table] = {r[0] for r in tx.all(f"SELECT DISTINCT {column} FROM {table}")}
        if store.dialect == "sqlite":
            out["workflow_attributes"] = {r[0] for r in tx.all("SELECT workflow_id FROM workflow_attributes")}
        return out

    return store.read(unit)  # type: ignore[attr-defined,no-any-return]


def test_a_batch_deletes_exactly_the_finished_rows_before_the_cutoff(store: Store) -> None:
    for i, status in enumerate(FINISHED):
        _seed(store, f"old-{status}", status, 100 + i)
    _seed(store, "new", "SUCCESS", 1_000)
    _seed(store, "old-pending", "PENDING", 100)
    for status in ("ENQUEUED", "DELAYED"):
        store.workflow_insert(
            wf(f"old-{status}", executor=None, status=status, queue_name="q", created_at=1, updated_at=1)
        )

    batch = store.retention_delete(before=(500, ""), limit=1000)
    assert ids(batch) == sorted(f"old-{s}" for s in FINISHED)
    assert batch is not None and batch.examined == 4 and batch.last == (103, f"old-{FINISHED[-1]}")
    kept = {"new", "old-pending"}
    left = _left(store)
    assert left.pop("workflow_status") == kept | {"old-ENQUEUED", "old-DELAYED"}
    for table, present in left.items():
        assert present == kept, table
    assert store.retention_delete(before=(500, ""), limit=1000) == RetentionBatch([], 0, None)


def test_batches_go_oldest_first_and_stop_at_the_limit(store: Store) -> None:
    for i in range(5):
        store.workflow_insert(wf(f"w{i}", status="SUCCESS", created_at=i, updated_at=10 - i))
    assert ids(store.retention_delete(before=(100, ""), limit=2)) == ["w3", "w4"]
    assert ids(store.retention_delete(before=(100, ""), limit=10)) == ["w0", "w1", "w2"]


def test_a_batch_starts_after_the_position_where_the_last_one_ended(store: Store) -> None:
    for i in range(4):
        store.workflow_insert(wf(f"w{i}", status="SUCCESS", updated_at=10))
    assert ids(store.retention_delete(before=(100, ""), limit=10, after=(10, "w1"))) == ["w2", "w3"]
    assert ids(store.retention_delete(before=(100, ""), limit=10, after=(9, "z"))) == ["w0", "w1"]


def test_a_finished_parent_with_a_running_child_stays(store: Store) -> None:
    store.workflow_insert(wf("parent", status="SUCCESS", updated_at=5))
    store.workflow_insert(wf("child", status="PENDING", parent_workflow_id="parent", updated_at=5))
    store.workflow_insert(wf("done-parent", status="SUCCESS", updated_at=5))
    store.workflow_insert(wf("done-child", status="ERROR", parent_workflow_id="done-parent", updated_at=5))
    batch = store.retention_delete(before=(100, ""), limit=10)
    assert ids(batch) == ["done-child", "done-parent"] and batch is not None and batch.examined == 3
    store.workflow_set_status("child", "SUCCESS", 6)
    assert ids(store.retention_delete(before=(100, ""), limit=10)) == ["child", "parent"]


def test_boundary_of_the_newest_n(store: Store) -> None:
    assert store.retention_boundary(keep=1) is None
    for i in range(5):
        store.workflow_insert(wf(f"w{i}", status="SUCCESS", updated_at=100 + i))
    store.workflow_insert(wf("running", status="PENDING", updated_at=1_000))
    store.workflow_insert(wf("tie", status="ERROR", updated_at=103))
    assert store.retention_boundary(keep=1) == (104, "w4")
    assert store.retention_boundary(keep=2) == (103, "w3")
    assert store.retention_boundary(keep=3) == (103, "tie")
    assert store.retention_boundary(keep=6) == (100, "w0")
    assert store.retention_boundary(keep=7) is None
    # Before (103, "w3"): exactly the four finished before it, the tie at 103 included.
    assert ids(store.retention_delete(before=(103, "w3"), limit=10)) == ["tie", "w0", "w1", "w2"]


def test_exclusive_batches_report_when_another_collector_holds_the_lock(store: Store) -> None:
    store.workflow_insert(wf("w", status="SUCCESS", updated_at=1))
    if store.sql.collector_session is None:  # type: ignore[attr-defined]
        # SQLite: the write lock serializes collectors; nothing to report
        assert store.retention_delete(before=(10, ""), limit=10, exclusive=True) == RetentionBatch(
            ["w"], 1, (1, "w"), ["w"]
        )
        return
    import psycopg

    from transact.storage.retention import RETENTION_LOCK_KEY

    with psycopg.connect(store.url, options="-c search_path=transact", autocommit=True) as other:  # type: ignore[attr-defined]
        # Another process collecting: it holds the fleet's lock and, mid-batch, the turn. A
        # collector that gives way must not queue for the turn first.
        other.execute("SELECT pg_advisory_lock(%s), pg_advisory_lock(%s)", (RETENTION_LOCK_KEY, RETENTION_TURN_KEY))
        got: list[RetentionBatch | None] = []
        attempt = threading.Thread(
            target=lambda: got.append(store.retention_delete(before=(10, ""), limit=10, exclusive=True)), daemon=True
        )
        attempt.start()
        attempt.join(timeout=15)
        assert not attempt.is_alive(), "the exclusive collector waited for the turn of the one collecting"
        assert got == [None]
        other.execute("SELECT pg_advisory_unlock(%s)", (RETENTION_TURN_KEY,))
        assert store.retention_delete(before=(10, ""), limit=10) == RetentionBatch(
            ["w"], 1, (1, "w"), ["w"]
        )  # explicit calls never give way


def test_a_collection_that_gives_way_holds_the_fleet_lock_until_it_ends(store: Store) -> None:
    # Between one collection's batches another process that gives way still finds it collecting;
    # explicit (not exclusive) collections run beside it, taking turns by batch.
    for n in range(3):
        store.workflow_insert(wf(f"w{n}", status="SUCCESS", updated_at=n + 1))
    with store.retention_collection(exclusive=True) as first:
        assert first is not None
        assert ids(store.retention_delete(before=(10, ""), limit=1, collection=first)) == ["w0"]
        with store.retention_collection(exclusive=True) as second:
            assert second is None or store.sql.collector_session is None  # type: ignore[attr-defined]
        assert ids(store.retention_delete(before=(10, ""), limit=1)) == ["w1"]
        assert ids(store.retention_delete(before=(10, ""), limit=1, exclusive=True)) == (
            None if store.sql.collector_session is not None else ["w2"]  # type: ignore[attr-defined]
        )
    with store.retention_collection(exclusive=True) as third:
        assert third is not None
        assert ids(store.retention_delete(before=(10, ""), limit=10, collection=third)) == (
            ["w2"] if store.sql.collector_session is not None else []  # type: ignore[attr-defined]
        )


def test_a_collection_reconnects_after_its_connection_drops(store: Store) -> None:
    # Its connection killed between batches, a collection connects again, takes the fleet's lock
    # again and goes on; when another process took the lock meanwhile, the batch gives way (None).
    if store.sql.collector_session is None:  # type: ignore[attr-defined]
        pytest.skip("SQLite: a collection has no connection of its own to lose")
    import psycopg

    from transact.storage.retention import RETENTION_LOCK_KEY

    for n in range(3):
        store.workflow_insert(wf(f"w{n}", status="SUCCESS", updated_at=n + 1))
    holder = _ADVISORY + " AND granted AND pid <> pg_backend_pid()"
    with psycopg.connect(store.url, options="-c search_path=transact", autocommit=True) as admin:  # type: ignore[attr-defined]

        def kill_collector() -> None:
            rows = admin.execute(holder, (RETENTION_LOCK_KEY,)).fetchall()
            assert len(rows) == 1, rows
            admin.execute("SELECT pg_terminate_backend(%s, 5000)", (rows[0][0],))

        with store.retention_collection(exclusive=True) as collection:
            assert collection is not None
            first = store.retention_delete(before=(10, ""), limit=1, collection=collection)
            assert first is not None and first.deleted == ["w0"]
            kill_collector()
            second = store.retention_delete(before=(10, ""), limit=1, after=first.last, collection=collection)
            assert second is not None and second.deleted == ["w1"]
            kill_collector()
            admin.execute("SELECT pg_advisory_lock(%s)", (RETENTION_LOCK_KEY,))  # another process collects
            assert store.retention_delete(before=(10, ""), limit=1, after=second.last, collection=collection) is None
            assert not store.outage.ongoing  # type: ignore[attr-defined]  # the reconnect reached the database
        admin.execute("SELECT pg_advisory_unlock(%s)", (RETENTION_LOCK_KEY,))
    assert ids(store.retention_delete(before=(10, ""), limit=10, exclusive=True)) == ["w2"]


def test_closing_the_store_stops_a_collection_on_its_own_connection(store: Store, db_url: str) -> None:
    # The collection's connection is not the pool's: the store's close must still end it.
    if store.sql.collector_session is None:  # type: ignore[attr-defined]
        pytest.skip("SQLite: a collection's batches run on the store's own connections, closed with it")
    for n in range(2):
        store.workflow_insert(wf(f"w{n}", status="SUCCESS", updated_at=n + 1))
    closing = open_store(db_url)
    try:
        with closing.retention_collection() as collection:
            assert collection is not None
            first = closing.retention_delete(before=(10, ""), limit=1, collection=collection)
            assert first is not None and first.deleted == ["w0"]
            closing.close()
            with pytest.raises(Unavailable, match="closed"):
                closing.retention_delete(before=(10, ""), limit=1, after=first.last, collection=collection)
    finally:
        closing.close()
    assert ids(store.retention_delete(before=(10, ""), limit=10)) == ["w1"]


def test_ids_with_quotes_commas_braces_and_backslashes_are_collected_with_their_rows(store: Store) -> None:
    # A batch passes its ids as one parameter (a text[] literal on Postgres, JSON on SQLite).
    odd = ['a"b', "c,d", "{e}", "f\\g", "NULL", " h ", "", "é"]
    for i, wid in enumerate(odd):
        _seed(store, wid, "SUCCESS", 100 + i)
    _seed(store, "keep", "SUCCESS", 1_000)
    assert ids(store.retention_delete(before=(500, ""), limit=1000)) == sorted(odd)
    left = _left(store)
    for table, present in left.items():
        assert present == {"keep"}, table


@pytest.mark.parametrize("via", ["retention_sweep", "a later batch"])
def test_the_sweep_removes_rows_written_for_a_workflow_after_its_delete(store: Store, via: str) -> None:
    # A write whose existence check read the row just before the delete committed lands after it.
    # Postgres has no foreign keys on these tables: such rows are possible, and the sweep after the
    # commit deletes them, by itself or inside a later batch's transaction (even one that finds
    # nothing to delete). SQLite's foreign keys refuse them outright.
    _seed(store, "gone", "SUCCESS", 100)
    batch = store.retention_delete(before=(500, ""), limit=10)
    assert ids(batch) == ["gone"]

    def late(tx: Any) -> None:
        tx.run(
            "INSERT INTO notifications (destination_id, topic, message, created_at) VALUES ('gone', 't', ?, 1)", (b"m",)
        )
        tx.run("INSERT INTO workflow_events (workflow_id, key, value, updated_at) VALUES ('gone', 'e', ?, 1)", (b"v",))
        tx.run(
            "INSERT INTO streams (workflow_id, key, seq, value, closed) VALUES ('gone', 's', 0, ?, ?)", (b"v", False)
        )

    if store.sql.owned_deletes:  # type: ignore[attr-defined]
        store.write(late)  # type: ignore[attr-defined]
        store.write(  # type: ignore[attr-defined]
            lambda tx: tx.run(
                "INSERT INTO operation_outputs (workflow_id, function_id, function_name) VALUES ('gone', 1, 'f')"
            )
        )
        left = _left(store)
        assert not left.pop("workflow_status") and all(present == {"gone"} for present in left.values())
    else:
        with pytest.raises(Conflict):
            store.write(late)  # type: ignore[attr-defined]
    if via == "retention_sweep":
        store.retention_sweep(["gone"])
    else:
        assert store.retention_delete(before=(500, ""), limit=10, sweep_also=["gone"]) == RetentionBatch([], 0, None)
    assert all(not present for present in _left(store).values())


def test_a_collection_waits_its_turn_behind_another_collectors_batch(store: Store) -> None:
    # Collectors take turns by batch instead of locking rows: a batch waits while another runs.
    store.workflow_insert(wf("w", status="SUCCESS", updated_at=1))
    hold = threading.Event()
    release = threading.Event()

    def other_batch(tx: Any) -> None:
        lock = store.sql.claim_lock  # type: ignore[attr-defined]
        if lock is not None:  # SQLite: this write transaction itself holds the database's write lock
            tx.run(lock, (RETENTION_TURN_KEY,))
        hold.set()
        assert release.wait(10)

    holder = threading.Thread(target=lambda: store.write(other_batch))  # type: ignore[attr-defined]
    holder.start()
    assert hold.wait(10)
    result: list[RetentionBatch | None] = []
    collector = threading.Thread(target=lambda: result.append(store.retention_delete(before=(10, ""), limit=10)))
    collector.start()
    if store.sql.collector_session is not None:  # type: ignore[attr-defined]
        import psycopg

        with psycopg.connect(store.url, autocommit=True) as admin:  # type: ignore[attr-defined]
            _await_turn_waiter(admin)  # its statement has started and waits inside for the turn
    else:
        collector.join(0.3)  # a bounded look: it must still be waiting
    assert collector.is_alive() and result == []
    release.set()
    holder.join(10)
    collector.join(10)
    assert result == [RetentionBatch(["w"], 1, (1, "w"), ["w"])]


def test_a_batch_that_waited_for_the_turn_deletes_only_candidates_as_it_found_them(store: Store) -> None:
    # On Postgres a batch reads its candidates after taking the turn, but from a snapshot taken
    # before it: a candidate deleted meanwhile is not deleted again, and one that ran and finished
    # again meanwhile (a newer completion) is kept.
    if store.sql.collector_session is None:  # type: ignore[attr-defined]
        pytest.skip("SQLite: a batch is one write transaction; nothing changes while it waits")
    import psycopg

    for n, wid in enumerate(("moved", "gone", "old")):
        _seed(store, wid, "SUCCESS", 100 + n)
    result: list[RetentionBatch | None] = []
    with psycopg.connect(store.url, autocommit=True, options="-c search_path=transact") as other:  # type: ignore[attr-defined]
        other.execute("BEGIN")
        other.execute("SELECT pg_advisory_xact_lock(%s)", (RETENTION_TURN_KEY,))  # another batch runs
        collector = threading.Thread(target=lambda: result.append(store.retention_delete(before=(500, ""), limit=10)))
        collector.start()
        _await_turn_waiter(other)
        other.execute("UPDATE workflow_status SET updated_at = 400 WHERE workflow_id = 'moved'")
        for table, column in (("workflow_status", "workflow_id"), *PER_WORKFLOW.items()):
            other.execute(f"DELETE FROM {table} WHERE {column} = 'gone'")  # another collection's batch
        other.execute("COMMIT")
        collector.join(10)
    assert not collector.is_alive()
    assert result == [RetentionBatch(["old"], 3, (102, "old"), ["old"])]
    left = _left(store)
    assert left["workflow_status"] == {"moved"} and left["operation_outputs"] == {"moved"}


def test_the_sweep_keeps_the_rows_of_a_new_workflow_that_reuses_a_deleted_id(store: Store) -> None:
    # Once deleted, an id is free: a workflow started with it before the sweep keeps its rows.
    _seed(store, "again", "SUCCESS", 100)
    assert ids(store.retention_delete(before=(500, ""), limit=10)) == ["again"]
    _seed(store, "again", "SUCCESS", 1_000)
    store.retention_sweep(["again"])
    assert all(present == {"again"} for present in _left(store).values())
    assert ids(store.retention_delete(before=(500, ""), limit=10, sweep_also=["again"])) == []
    assert all(present == {"again"} for present in _left(store).values())


def test_a_batch_reports_which_deleted_workflows_may_still_take_a_step(store: Store) -> None:
    # A checkpoint's fence needs the workflow PENDING (or CANCELLED, for a cancelled run's last
    # step): one that finished before ``settled_before`` and was not cancelled takes no late step.
    for wid, status, at in (("old", "SUCCESS", 10), ("old-err", "ERROR", 11), ("old-cancel", "CANCELLED", 12)):
        store.workflow_insert(wf(wid, status=status, updated_at=at))
    store.workflow_insert(wf("recent", status="SUCCESS", updated_at=200))
    batch = store.retention_delete(before=(500, ""), limit=10, settled_before=100)
    assert batch is not None and sorted(batch.deleted) == ["old", "old-cancel", "old-err", "recent"]
    assert sorted(batch.unsettled) == ["old-cancel", "recent"]
    store.workflow_insert(wf("next", status="SUCCESS", updated_at=10))
    batch = store.retention_delete(before=(500, ""), limit=10)  # no bound given: all of them
    assert batch is not None and batch.unsettled == ["next"]


def test_a_sweep_may_take_the_steps_of_only_some_of_its_workflows(store: Store) -> None:
    # The steps list is narrowed; messages, events and streams are swept for every id.
    for wid in ("a", "b"):
        _seed(store, wid, "SUCCESS", 100)
    assert ids(store.retention_delete(before=(500, ""), limit=10)) == ["a", "b"]
    if not store.sql.owned_deletes:  # type: ignore[attr-defined]
        return  # SQLite: the keys refuse rows of a workflow that does not exist (asserted above)

    def late(tx: Any, function_id: int) -> None:
        for wid in ("a", "b"):
            tx.run(
                "INSERT INTO operation_outputs (workflow_id, function_id, function_name) VALUES (?, ?, 'f')",
                (wid, function_id),
            )
            tx.run(
                "INSERT INTO notifications (destination_id, topic, message, created_at) VALUES (?, 't', ?, 1)",
                (wid, b"m"),
            )

    store.write(lambda tx: late(tx, 1))  # type: ignore[attr-defined]
    store.retention_sweep(["a", "b"], steps_of=["a"])
    left = _left(store)
    assert left["operation_outputs"] == {"b"} and not left["notifications"]
    store.write(lambda tx: late(tx, 2))  # type: ignore[attr-defined]
    store.retention_delete(before=(500, ""), limit=10, sweep_also=["a", "b"], sweep_also_steps=["b"])
    left = _left(store)
    assert left["operation_outputs"] == {"a"} and not left["notifications"]


def test_a_batch_is_one_statement_where_the_dialect_folds_it(store: Store) -> None:
    # Postgres: one autocommit statement on the collection's own connection (the turn taken inside
    # it); the same rows go as statement by statement (SQLite), an earlier batch's late rows swept
    # in the same statement.
    for wid in ("a", "b", "c"):
        _seed(store, wid, "SUCCESS", 100)
    store.workflow_insert(wf("kept", status="SUCCESS", updated_at=900))
    first = store.retention_delete(before=(500, ""), limit=2)
    assert first is not None and sorted(first.deleted) == ["a", "b"] and first.last == (100, "b")
    if store.sql.owned_deletes:  # type: ignore[attr-defined]
        store.write(  # type: ignore[attr-defined]
            lambda tx: tx.run(
                "INSERT INTO streams (workflow_id, key, seq, value, closed) VALUES ('a', 'late', 0, ?, ?)",
                (b"v", False),
            )
        )
    with store.retention_collection() as collection:
        before = store.round_trips  # type: ignore[attr-defined]
        second = store.retention_delete(
            before=(500, ""), limit=2, after=first.last, sweep_also=first.deleted, collection=collection
        )
        trips = store.round_trips - before  # type: ignore[attr-defined]
    assert second is not None and second.deleted == ["c"] and second.examined == 1 and second.last == (100, "c")
    left = _left(store)
    assert left["workflow_status"] == {"kept"}
    assert all(not left[table] for table in PER_WORKFLOW), left
    if store.sql.retention_batch is not None:  # type: ignore[attr-defined]
        assert trips == 1
