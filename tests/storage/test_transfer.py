"""TransferStore conformance (storage/transfer.py), run on both drivers: the table catalog, export
and import of a workflow tree, and the pages and inserts a copy is made of."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path

import pytest

from tests.conftest import scratch_pg_database
from tests.storage.builders import schedule, step, wf
from transact.storage import Store, open_store
from transact.storage.rows import WorkflowRow
from transact.storage.transfer import KEPT, KNOWN_TABLES, MOVED
from transact.storage.transfer_protocol import TableRows


@pytest.fixture
def other(backend: str, tmp_path: Path) -> Iterator[Store]:
    """A second, empty system database on the same backend."""
    if backend == "sqlite":
        s = open_store(f"sqlite:///{tmp_path / 'other.sqlite'}")
        s.migrate()
        yield s
        s.close()
        return
    for url in scratch_pg_database("transact_transfer_store"):
        s = open_store(url)
        s.migrate()
        yield s
        s.close()


def _tree(store: Store) -> None:
    """p (PENDING) with child c (SUCCESS, grandchild g); steps, an event, a stream, messages."""
    store.workflow_insert(wf("p", inputs=b"\x80in", attributes='{"k":"v"}'))
    store.workflow_insert(wf("c", parent_workflow_id="p", output=b"out"))
    store.workflow_insert(wf("g", status="SUCCESS", parent_workflow_id="c"))
    store.workflow_insert(wf("other"))
    for wid, n in (("p", 3), ("c", 2), ("other", 1)):
        for fid in range(1, n + 1):
            assert store.step_record(step(wid, fid, output=bytes([fid])), executor_id="ex-1") is None
    store.workflow_set_status("c", "SUCCESS", 2)
    store.event_set(workflow_id="p", key="e", value=b"ev", now=5)
    store.stream_append(workflow_id="c", key="s", value=b"1", closed=False)
    store.stream_append(workflow_id="c", key="s", value=None, closed=True)
    store.message_send(destination_id="p", topic="t", message=b"m1", idempotency_key=None, now=6)
    store.message_send(destination_id="other", topic="t", message=b"m2", idempotency_key=None, now=6)


def _without_message_ids(store: Store, rows: TableRows) -> TableRows:
    """Import gives messages new ids (the target's own sequence); everything else is as exported."""
    at = store.transfer_tables()["notifications"].index("message_id")
    return {**rows, "notifications": [r[:at] + r[at + 1 :] for r in rows["notifications"]]}


def test_every_table_of_the_schema_is_known(store: Store) -> None:
    """A migration that adds a table must say whether it moves (transfer.MOVED) or not (KEPT)."""
    tables = store.transfer_tables()
    assert set(tables) - KNOWN_TABLES == set(), "add the new table to storage/transfer.py MOVED or KEPT"
    assert [t.name for t in MOVED] == [name for name in tables if tables[name]]  # copy order first
    assert all(tables[name] == [] for name in KEPT if name in tables)
    # The status row moves with every column the engine knows (and SQLite's seq stays behind).
    assert set(tables["workflow_status"]) == {f.name for f in fields(WorkflowRow)}
    assert "step_key" not in tables["operation_outputs"] and "seq" in tables["streams"]


def test_export_holds_the_tree_and_only_it(store: Store) -> None:
    _tree(store)
    alone = store.transfer_export("p", children=False)
    cols = store.transfer_tables()
    wid = cols["workflow_status"].index("workflow_id")
    assert [r[wid] for r in alone["workflow_status"]] == ["p"]
    assert len(alone["operation_outputs"]) == 3 and len(alone["workflow_events"]) == 1
    assert len(alone["notifications"]) == 1 and alone["streams"] == []
    tree = store.transfer_export("p", children=True)
    assert sorted(r[wid] for r in tree["workflow_status"]) == ["c", "g", "p"]
    assert len(tree["operation_outputs"]) == 5
    closed = cols["streams"].index("closed")
    assert [r[closed] for r in tree["streams"]] == [False, True]  # booleans on both databases
    inputs = cols["workflow_status"].index("inputs")
    assert {r[wid]: r[inputs] for r in tree["workflow_status"]}["p"] == b"\x80in"
    assert store.transfer_export("missing", children=True) == {}


def test_import_refuses_existing_ids_unless_replace(store: Store, other: Store) -> None:
    _tree(store)
    tree = store.transfer_export("p", children=True)
    assert other.transfer_import(tree, replace=False) == []
    assert _without_message_ids(other, other.transfer_export("p", children=True)) == _without_message_ids(store, tree)
    assert other.steps_list("p") == store.steps_list("p")
    # Again: refused as a whole, nothing written twice.
    assert sorted(other.transfer_import(tree, replace=False)) == ["c", "g", "p"]
    assert other.transfer_count("operation_outputs") == 5
    other.message_send(destination_id="p", topic="t", message=b"late", idempotency_key=None, now=9)
    assert sorted(other.transfer_import(tree, replace=True)) == ["c", "g", "p"]
    assert other.transfer_count("notifications") == 1  # the old rows went first
    assert other.transfer_count("operation_outputs") == 5
    assert other.workflow_get("p") == store.workflow_get("p")


def test_pages_and_inserts_copy_every_row_once(store: Store, other: Store) -> None:
    _tree(store)
    store.schedule_create(schedule("nightly", now=3))
    for table in MOVED:
        rows: list[tuple[object, ...]] = []
        cursor = None
        while True:
            page, cursor = store.transfer_page(table.name, cursor, 2)
            rows += page
            if cursor is None:
                break
        assert len(rows) == store.transfer_count(table.name), table.name
        other.transfer_insert(table.name, rows)
        other.transfer_insert(table.name, rows[:1])  # a re-run skips what is there
        assert other.transfer_count(table.name) == store.transfer_count(table.name), table.name
    assert other.transfer_export("p", children=True) == store.transfer_export("p", children=True)
    assert other.schedule_get("nightly") == store.schedule_get("nightly")
    # Message ids were kept and the id sequence moved past them: a new message gets a new id.
    other.message_send(destination_id="other", topic="t", message=b"new", idempotency_key=None, now=7)
    assert other.transfer_count("notifications") == 3
    # Steps of a copied workflow are found by the engine's own reads (SQLite: by the new seq).
    assert other.steps_load("c") == store.steps_load("c")


def test_a_table_that_does_not_move_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="does not move"):
        store.transfer_count("executors")
    with pytest.raises(ValueError, match="do not belong to a workflow"):
        store.transfer_import({"queues": []}, replace=False)
