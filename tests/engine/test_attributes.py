"""Workflow attributes: SetWorkflowAttributes and the enqueue option set them at the start,
update_workflow_attributes merges or replaces them (a recorded step inside a workflow),
list_workflows(attributes=...) finds rows holding every given pair exactly (through an index:
EXPLAIN), and non-JSON values are refused at the call, naming the key. Both databases."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from transact import (
    DBOS,
    DBOSClient,
    Queue,
    SetEnqueueOptions,
    SetWorkflowAttributes,
    SetWorkflowID,
    WorkflowNotFoundError,
)
from transact._options import attributes_text
from transact.engine import admin
from transact.errors import ConfigError
from transact.storage import Store, open_store
from transact.storage.rows import WorkflowRow

T0 = 1_700_000_000_000


@pytest.fixture
def store(dbos: type[DBOS], db_url: str) -> Iterator[Store]:
    s = open_store(db_url)
    yield s
    s.close()


@pytest.fixture
def client(dbos: type[DBOS], db_url: str) -> Iterator[DBOSClient]:
    with DBOSClient(db_url) as c:
        yield c


def ids(statuses: list[Any]) -> list[str]:
    return [s.workflow_id for s in statuses]


def attrs(workflow_id: str) -> Any:
    status = DBOS.get_workflow_status(workflow_id)
    assert status is not None
    return status.attributes


def put(store: Store, wid: str, attributes: dict[str, Any] | None, *, at: int = 0, **extra: Any) -> None:
    text = attributes_text(attributes)
    row = WorkflowRow(
        workflow_id=wid, status="SUCCESS", name="a", created_at=T0 + at, updated_at=T0 + at, attributes=text, **extra
    )
    assert store.workflow_insert(row)[1]


# -- setting them at the start --------------------------------------------------------------------
def test_set_workflow_attributes_applies_to_the_next_start_only(dbos: type[DBOS]) -> None:
    @DBOS.workflow()
    def work(x: int) -> int:
        return x

    with SetWorkflowAttributes({"customer": "acme", "tier": 2, "tags": ["a", "b"], "meta": {"x": None}}):
        with SetWorkflowID("first"):
            assert work(1) == 1
        second = DBOS.start_workflow(work, 2)
    assert second.get_result() == 2
    assert attrs("first") == {"customer": "acme", "tier": 2, "tags": ["a", "b"], "meta": {"x": None}}
    assert attrs(second.workflow_id) is None
    with SetWorkflowAttributes({}):
        handle = DBOS.start_workflow(work, 3)
    assert handle.get_result() == 3 and attrs(handle.workflow_id) is None


def test_enqueue_option_and_client_enqueue_carry_attributes(dbos: type[DBOS], client: DBOSClient) -> None:
    queue = Queue("attr-q")

    @DBOS.workflow()
    def job(x: int) -> int:
        return x * 2

    with SetWorkflowAttributes({"a": 1, "b": "outer"}), SetEnqueueOptions(attributes={"b": "option", "c": True}):
        first = queue.enqueue(job, 1)
        second = queue.enqueue(job, 2)  # SetWorkflowAttributes applied to the first start only
    assert first.get_result() == 2 and second.get_result() == 4
    assert attrs(first.workflow_id) == {"a": 1, "b": "option", "c": True}
    assert attrs(second.workflow_id) == {"b": "option", "c": True}

    handle = client.enqueue({"workflow_name": job.__qualname__, "queue_name": "attr-q", "attributes": {"k": 1.5}}, 5)
    assert handle.get_result() == 10
    assert attrs(handle.workflow_id) == {"k": 1.5}
    assert client.retrieve_workflow(handle.workflow_id).get_status().attributes == {"k": 1.5}


def test_non_json_values_are_refused_at_the_call_naming_the_key(dbos: type[DBOS], client: DBOSClient) -> None:
    bad: list[tuple[Any, str]] = [
        ({"when": object()}, "'when'"),
        ({"deep": {"inner": {1, 2}}}, "'deep'"),
        ({"n": float("nan")}, "'n'"),
        ({"list": [1, b"raw"]}, "'list'"),
        ({"obj": {3: "x"}}, "'obj'"),
        ({"nul": "a\x00b"}, "'nul'"),
        ({7: "x"}, "7"),
        (["not", "a", "dict"], "dict"),
    ]
    for value, needle in bad:
        with pytest.raises(ConfigError, match=needle):
            SetWorkflowAttributes(value)
        with pytest.raises(ConfigError, match=needle):
            SetEnqueueOptions(attributes=value)
        with pytest.raises(ConfigError, match=needle):
            DBOS.update_workflow_attributes("any", value)
        with pytest.raises(ConfigError, match=needle):
            DBOS.list_workflows(attributes=value)
        with pytest.raises(ConfigError, match=needle):
            client.enqueue({"workflow_name": "w", "queue_name": "q", "attributes": value})
        with pytest.raises(ConfigError, match=needle):
            client.update_workflow_attributes("any", value)
    with pytest.raises(ConfigError, match="merge"):
        DBOS.update_workflow_attributes("any", {"a": 1}, merge="yes")  # type: ignore[arg-type]
    assert DBOS.list_workflows() == []  # nothing was written


# -- updating them ----------------------------------------------------------------------------------
def test_update_merges_replaces_and_clears(store: Store, client: DBOSClient) -> None:
    put(store, "w", {"a": 1, "b": 2}, at=0)
    before = DBOS.get_workflow_status("w")
    assert before is not None
    DBOS.update_workflow_attributes("w", {"b": 3, "c": [1]})
    assert attrs("w") == {"a": 1, "b": 3, "c": [1]}
    DBOS.update_workflow_attributes("w", {"z": "only"}, merge=False)
    assert attrs("w") == {"z": "only"}
    client.update_workflow_attributes("w", {"y": None})
    assert attrs("w") == {"z": "only", "y": None}
    asyncio.run(DBOS.update_workflow_attributes_async("w", {"x": 1}))
    asyncio.run(client.update_workflow_attributes_async("w", {"v": 2}))
    assert attrs("w") == {"z": "only", "y": None, "x": 1, "v": 2}
    DBOS.update_workflow_attributes("w", None, merge=False)
    assert attrs("w") is None
    DBOS.update_workflow_attributes("w", {"fresh": True})  # a merge into none
    after = DBOS.get_workflow_status("w")
    assert after is not None and after.attributes == {"fresh": True}
    assert after.updated_at == before.updated_at  # a finished row's updated_at is its finish time
    with pytest.raises(WorkflowNotFoundError):
        DBOS.update_workflow_attributes("missing", {"a": 1})
    with pytest.raises(WorkflowNotFoundError):
        client.update_workflow_attributes("missing", {"a": 1})


def test_update_inside_a_workflow_is_a_recorded_step(dbos: type[DBOS], store: Store) -> None:
    put(store, "target", {"n": 0})

    @DBOS.step()
    def after() -> str:
        return "done"

    @DBOS.workflow()
    def tagger() -> str:
        DBOS.update_workflow_attributes("target", {"n": 1, "by": DBOS.workflow_id})
        with contextlib.suppress(WorkflowNotFoundError):
            DBOS.update_workflow_attributes("nobody", {"n": 1})
        return after()

    @DBOS.workflow()
    async def tagger_async() -> str:
        await DBOS.update_workflow_attributes_async("target", {"m": 1})
        return "ok"

    with SetWorkflowID("tagger"):
        assert tagger() == "done"
    assert attrs("target") == {"n": 1, "by": "tagger"}
    steps = DBOS.list_workflow_steps("tagger")
    assert [s["function_name"] for s in steps][:2] == [admin.UPDATE_ATTRIBUTES, admin.UPDATE_ATTRIBUTES]
    assert isinstance(steps[1]["error"], WorkflowNotFoundError)

    # A replay of the recorded updates (a fork reusing them) does not apply them again.
    DBOS.update_workflow_attributes("target", {"n": 99}, merge=False)
    fork = DBOS.fork_workflow("tagger", steps[2]["function_id"])
    assert fork.get_result() == "done"
    assert attrs("target") == {"n": 99}
    assert attrs(fork.workflow_id) is None

    handle = DBOS.start_workflow(tagger_async)
    assert handle.get_result() == "ok"
    assert attrs("target") == {"n": 99, "m": 1}
    assert [s["function_name"] for s in DBOS.list_workflow_steps(handle.workflow_id)] == [admin.UPDATE_ATTRIBUTES]


# -- finding them -----------------------------------------------------------------------------------
def test_list_matches_rows_holding_every_pair_exactly(store: Store, client: DBOSClient) -> None:
    rows: dict[str, dict[str, Any] | None] = {
        "int": {"a": 1, "b": "x"},
        "float": {"a": 1.0},
        "str": {"a": "1"},
        "bool": {"a": True},
        "list": {"a": [1, 2], "b": "x"},
        "nested": {"a": {"k": [1, {"z": None, "y": 0}], "é": "ü\n"}},
        "null": {"a": None},
        "half": {"a": 1.5, "b": "x"},
        "none": None,
    }
    for at, (wid, value) in enumerate(rows.items()):
        put(store, wid, value, at=at)
    assert ids(DBOS.list_workflows(attributes={"a": 1})) == ["int", "float"]
    assert ids(DBOS.list_workflows(attributes={"a": 1, "b": "x"})) == ["int"]
    assert ids(DBOS.list_workflows(attributes={"b": "x"})) == ["int", "list", "half"]
    assert ids(DBOS.list_workflows(attributes={"a": "1"})) == ["str"]
    assert ids(DBOS.list_workflows(attributes={"a": True})) == ["bool"]
    assert ids(DBOS.list_workflows(attributes={"a": [1, 2]})) == ["list"]
    assert ids(DBOS.list_workflows(attributes={"a": [1]})) == []  # equality, not containment
    assert ids(DBOS.list_workflows(attributes={"a": {"é": "ü\n", "k": [1, {"y": 0, "z": None}]}})) == ["nested"]
    assert ids(DBOS.list_workflows(attributes={"a": None})) == ["null"]
    assert ids(DBOS.list_workflows(attributes={"a": 1.5})) == ["half"]
    assert ids(DBOS.list_workflows(attributes={"missing": 1})) == []
    assert len(DBOS.list_workflows(attributes={})) == len(rows)  # no pairs: no filter
    assert ids(DBOS.list_workflows(attributes={"b": "x"}, sort_desc=True, limit=2)) == ["half", "list"]
    assert ids(asyncio.run(DBOS.list_workflows_async(attributes={"a": "1"}))) == ["str"]
    assert ids(client.list_workflows(attributes={"a": 1, "b": "x"})) == ["int"]
    statuses = {s.workflow_id: s.attributes for s in DBOS.list_workflows()}
    assert statuses == rows

    # The index follows updates and deletes.
    DBOS.update_workflow_attributes("str", {"a": 1})
    assert ids(DBOS.list_workflows(attributes={"a": 1})) == ["int", "float", "str"]
    DBOS.update_workflow_attributes("int", None, merge=False)
    assert ids(DBOS.list_workflows(attributes={"a": 1})) == ["float", "str"]
    DBOS.delete_workflow("float")
    assert ids(DBOS.list_workflows(attributes={"a": 1})) == ["str"]
    if store.dialect == "sqlite":  # the side table holds exactly the rows' pairs
        left = store.read(lambda tx: tx.all("SELECT workflow_id, key FROM workflow_attributes ORDER BY 1, 2"))  # type: ignore[attr-defined]
        assert [tuple(r) for r in left] == [
            ("bool", "a"),
            ("half", "a"),
            ("half", "b"),
            ("list", "a"),
            ("list", "b"),
            ("nested", "a"),
            ("null", "a"),
            ("str", "a"),
        ]


def test_list_queued_workflows_filters_by_attributes(store: Store, client: DBOSClient) -> None:
    put(store, "q-a", {"team": "a"}, at=0, queue_name="q")
    put(store, "q-b", {"team": "b"}, at=1, queue_name="q")
    store.write(lambda tx: tx.run("UPDATE workflow_status SET status = 'ENQUEUED'", ()))  # type: ignore[attr-defined]
    assert ids(DBOS.list_queued_workflows(attributes={"team": "b"})) == ["q-b"]
    assert ids(client.list_queued_workflows(attributes={"team": "a"})) == ["q-a"]


def test_attribute_filter_uses_an_index(store: Store) -> None:
    """On 40,000 rows with attributes (20 values), the filter walks workflow_attributes' (key,
    value, created_at) index, newest first, on both databases; never a table scan or a sort."""
    store.admin_insert_synthetic(count=40_000, id_prefix="syn-", names=["n"], statuses=["SUCCESS"], now=T0)
    # Every row gets {"customer": "c<k>"}, k = (created_at / 100) mod 20.
    value = "'{\"customer\": \"c' || CAST(created_at / 100 - (created_at / 2000) * 20 AS TEXT) || '\"}'"
    if store.dialect == "postgres":
        value = f"CAST({value} AS jsonb)"
    store.write(  # type: ignore[attr-defined]
        lambda tx: tx.run(f"UPDATE workflow_status SET attributes = {value}", ())
    )
    store.write(lambda tx: tx.run("ANALYZE", ()))  # type: ignore[attr-defined]
    query = admin.list_query(attributes={"customer": "c3"}, limit=50, sort_desc=True)
    plan = store.workflows_explain(query)
    assert "wa_newest_idx" in plan, plan
    if store.dialect == "postgres":
        assert "Seq Scan" not in plan and "Sort" not in plan, plan
    else:
        assert "SCAN workflow_status" not in plan and "SCAN workflow_attributes" not in plan, plan
        assert "TEMP B-TREE" not in plan, plan
    found = DBOS.list_workflows(attributes={"customer": "c3"}, load_input=False)
    assert found and all(s.attributes == {"customer": "c3"} for s in found)


# -- CLI ----------------------------------------------------------------------------------------------
def test_cli_workflow_list_filters_by_attribute(store: Store, db_url: str) -> None:
    put(store, "gold", {"tier": "gold", "n": 3}, at=0)
    put(store, "silver", {"tier": "silver", "n": 3}, at=1)
    put(store, "text3", {"tier": "gold", "n": "3"}, at=2)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(Path(sys.executable).parent / "transact"), "workflow", "list", "--db", db_url, "--json", *args],
            capture_output=True,
            text=True,
            timeout=60,
        )

    proc = run("--attribute", "tier=gold", "-a", "n=3", "--oldest-first")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert [r["workflow_id"] for r in rows] == ["gold"]
    assert rows[0]["attributes"] == {"tier": "gold", "n": 3}
    proc = run("--attribute", 'n="3"')
    assert [r["workflow_id"] for r in json.loads(proc.stdout)] == ["text3"]
    proc = run("--attribute", "tier")
    assert proc.returncode != 0 and "KEY=VALUE" in proc.stderr
