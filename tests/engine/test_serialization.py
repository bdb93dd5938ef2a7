"""Serializers on both databases: portable JSON written and read by plain SQL, custom serializers for
every stored value, and switching serializers with rows of the old one still in the database."""

from __future__ import annotations

import base64
import json
import sqlite3
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from tests.conftest import wait_until
from transact import (
    DBOS,
    DBOSClient,
    DBOSPortableJSON,
    DefaultSerializer,
    PortableWorkflowError,
    Queue,
    SerializationError,
    Serializer,
    SetWorkflowID,
    WorkflowSerializationFormat,
)
from transact.engine import serialization


class B64Json(Serializer):
    """A custom serializer: base64 of JSON (what an encrypting or compressing one looks like)."""

    def serialize(self, data: Any) -> str:
        return base64.b64encode(json.dumps(data).encode()).decode()

    def deserialize(self, serialized_data: str) -> Any:
        return json.loads(base64.b64decode(serialized_data))

    def name(self) -> str:
        return "b64json"


@pytest.fixture
def fresh(config: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The config of a fresh database; DBOS instances the test makes are destroyed after it."""
    DBOS.destroy(destroy_registry=True)
    try:
        yield config
    finally:
        DBOS.destroy(destroy_registry=True)


def sql(backend: str, url: str, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Plain SQL, as a program without Transact would run it (``{t}``: the tables' schema prefix)."""
    if backend == "sqlite":
        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        try:
            rows = conn.execute(query.format(t=""), params).fetchall()
            conn.commit()
            return rows
        finally:
            conn.close()
    with psycopg.connect(url, autocommit=True) as pg:
        cur = pg.execute(query.format(t="transact.").replace("?", "%s"), params)
        return cur.fetchall() if cur.description else []


def launch(config: dict[str, Any], serializer: Any = None) -> None:
    DBOS.destroy()
    DBOS(config={**config, "serializer": serializer} if serializer is not None else config)
    DBOS.launch()


# -- portable JSON through plain SQL -------------------------------------------------------------
def test_portable_workflow_enqueued_and_read_by_plain_sql(fresh: dict[str, Any], backend: str) -> None:
    @DBOS.step()
    def double(x: int) -> int:
        return 2 * x

    @DBOS.workflow(name="portable_add", serialization_type=WorkflowSerializationFormat.PORTABLE)
    def portable_add(a: int, b: int, *, label: str = "") -> dict[str, Any]:
        return {"sum": double(a + b) // 2, "label": label, "args": [a, b]}

    @DBOS.workflow(name="portable_fail", serialization_type="portable")
    def portable_fail(why: str) -> None:
        raise ValueError(why)

    Queue("from_sql")
    launch(fresh)
    url = fresh["system_database_url"]
    now = int(time.time() * 1000)
    to_blob = "CAST(? AS BLOB)" if backend == "sqlite" else "convert_to(?, 'UTF8')"
    insert = (
        "INSERT INTO {t}workflow_status (workflow_id, status, name, queue_name, inputs, created_at, updated_at) "
        f"VALUES (?, 'ENQUEUED', ?, 'from_sql', {to_blob}, ?, ?)"
    )
    sql(
        backend, url, insert, ("sql-ok", "portable_add", '{"positionalArgs":[2,3],"namedArgs":{"label":"x"}}', now, now)
    )
    sql(backend, url, insert, ("sql-bad", "portable_fail", '{"positionalArgs":["no"],"namedArgs":{}}', now, now))

    as_text = "CAST(output AS TEXT)" if backend == "sqlite" else "convert_from(output, 'UTF8')::json"
    done = "SELECT status, {out} FROM {{t}}workflow_status WHERE workflow_id = ? AND status IN ('SUCCESS', 'ERROR')"
    row = wait_until(lambda: sql(backend, url, done.format(out=as_text), ("sql-ok",)), what="sql-ok finished")[0]
    result = json.loads(row[1]) if isinstance(row[1], str) else row[1]
    assert (row[0], result) == ("SUCCESS", {"sum": 5, "label": "x", "args": [2, 3]})
    assert DBOS.retrieve_workflow("sql-ok").get_result() == {"sum": 5, "label": "x", "args": [2, 3]}

    err_text = as_text.replace("output", "error")
    row = wait_until(lambda: sql(backend, url, done.format(out=err_text), ("sql-bad",)), what="sql-bad finished")[0]
    error = json.loads(row[1]) if isinstance(row[1], str) else row[1]
    assert row[0] == "ERROR" and error["name"] == "ValueError" and error["message"] == "no"
    with pytest.raises(ValueError, match="no"):
        DBOS.retrieve_workflow("sql-bad").get_result()

    # Started from Python: the inputs are portable JSON, so plain SQL reads them (and the result).
    with SetWorkflowID("py-started"):
        assert DBOS.start_workflow(portable_add, 1, 1).get_result()["sum"] == 2
    inputs_text = as_text.replace("output", "inputs")
    row = sql(backend, url, f"SELECT {inputs_text} FROM {{t}}workflow_status WHERE workflow_id = ?", ("py-started",))[0]
    inputs = json.loads(row[0]) if isinstance(row[0], str) else row[0]
    assert inputs == {"positionalArgs": [1, 1], "namedArgs": {}}
    status = DBOS.get_workflow_status("py-started")
    assert status is not None and status.input == ((1, 1), {})


def test_portable_json_values_and_errors() -> None:
    import datetime
    import decimal

    stored = serialization.dumps(
        {"at": datetime.date(2024, 1, 2), "n": decimal.Decimal("1.5")}, what="v", portable=True
    )
    assert stored == b'{"at":"2024-01-02","n":"1.5"}'
    assert serialization.loads(stored) == {"at": "2024-01-02", "n": "1.5"}
    with pytest.raises(SerializationError, match="portable JSON"):
        serialization.dumps(object(), what="the value", portable=True)

    class AppError(Exception):
        code = 42

    error = serialization.loads_error(serialization.dumps_error(AppError("boom"), portable=True))
    assert isinstance(error, PortableWorkflowError)
    assert (error.name, error.message, error.code) == ("AppError", "boom", 42)
    assert DBOSPortableJSON.name() == "portable_json" and DefaultSerializer().name() == "py_pickle"
    assert DefaultSerializer().deserialize(DefaultSerializer().serialize({"a": (1, 2)})) == {"a": (1, 2)}


# -- custom serializers ----------------------------------------------------------------------------
def test_custom_serializer_for_every_stored_value(fresh: dict[str, Any], backend: str) -> None:
    @DBOS.step()
    def shout(text: str) -> str:
        return text.upper()

    @DBOS.workflow(name="chatty")
    def chatty(greeting: str) -> dict[str, Any]:
        loud = shout(greeting)
        DBOS.set_event("loud", {"v": loud})
        DBOS.write_stream("s", [1, loud])
        DBOS.close_stream("s")
        message = DBOS.recv("in", 30)
        return {"got": message, "loud": loud}

    launch(fresh, B64Json())
    url = fresh["system_database_url"]
    with SetWorkflowID("custom-1"):
        handle = DBOS.start_workflow(chatty, "hi")
    with DBOSClient(system_database_url=url, serializer=B64Json()) as client:
        assert client.get_event("custom-1", "loud", 10) == {"v": "HI"}
        client.send("custom-1", {"from": "client"}, "in")
        assert handle.get_result() == {"got": {"from": "client"}, "loud": "HI"}
        assert client.retrieve_workflow("custom-1").get_result() == {"got": {"from": "client"}, "loud": "HI"}
        assert list(client.read_stream("custom-1", "s")) == [[1, "HI"]]
    tagged = b"\x01b64json\x00"
    blobs = [
        *sql(backend, url, "SELECT inputs FROM {t}workflow_status WHERE workflow_id = 'custom-1'"),
        *sql(backend, url, "SELECT output FROM {t}workflow_status WHERE workflow_id = 'custom-1'"),
        *sql(backend, url, "SELECT output FROM {t}operation_outputs WHERE function_name LIKE ?", ("%shout",)),
        *sql(backend, url, "SELECT value FROM {t}workflow_events WHERE workflow_id = 'custom-1'"),
        *sql(backend, url, "SELECT output FROM {t}operation_outputs WHERE function_name = 'DBOS.recv'"),  # the message
        *sql(backend, url, "SELECT value FROM {t}streams WHERE workflow_id = 'custom-1' AND value IS NOT NULL"),
    ]
    assert len(blobs) == 6 and all(bytes(b[0]).startswith(tagged) for b in blobs), blobs


def test_switching_serializers_keeps_old_rows_readable(fresh: dict[str, Any], backend: str) -> None:
    @DBOS.workflow(name="echo")
    def echo(value: Any) -> Any:
        return {"echo": value}

    url = fresh["system_database_url"]
    launch(fresh)  # pickle
    with SetWorkflowID("pickled"):
        echo("old")
    launch(fresh, B64Json())  # switched: pickled rows still decode, new rows use the serializer
    assert DBOS.retrieve_workflow("pickled").get_result() == {"echo": "old"}
    with SetWorkflowID("custom"):
        assert echo("new") == {"echo": "new"}
    (output,) = sql(backend, url, "SELECT output FROM {t}workflow_status WHERE workflow_id = 'custom'")[0]
    assert bytes(output).startswith(b"\x01b64json\x00")

    launch(fresh)  # the custom serializer is gone: its rows fail loudly, naming it; listing shows a placeholder
    assert DBOS.retrieve_workflow("pickled").get_result() == {"echo": "old"}
    with pytest.raises(SerializationError, match=r"serializer 'b64json'.*not configured.*'serializer'"):
        DBOS.retrieve_workflow("custom").get_result()
    (status,) = DBOS.list_workflows(workflow_ids=["custom"])
    assert str(status.output).startswith("<undecodable: SerializationError") and status.input is not None
    assert str(status.input).startswith("<undecodable")
    (status,) = DBOS.list_workflows(workflow_ids=["custom"], load_input=False, load_output=False)
    assert status.input is None and status.output is None
    with DBOSClient(system_database_url=url, serializer=B64Json()) as client:  # a client that has it reads it
        assert client.retrieve_workflow("custom").get_result() == {"echo": "new"}


def test_bad_serializers_are_refused_at_the_call(fresh: dict[str, Any]) -> None:
    from transact.errors import ConfigError

    with pytest.raises(ConfigError, match="serializer"):
        DBOS(config={**fresh, "serializer": object()})
    with pytest.raises(ConfigError, match="serialization_type"):
        DBOS.workflow(serialization_type="yaml")
    serialization.install(None)


def test_portable_per_enqueue(fresh: dict[str, Any], backend: str) -> None:
    from transact import SetEnqueueOptions

    @DBOS.workflow(name="plain_echo")
    def plain_echo(value: Any) -> Any:
        return [value]

    queue = Queue("per_call")
    launch(fresh)
    url = fresh["system_database_url"]
    with SetWorkflowID("enq-portable"), SetEnqueueOptions(serialization_type=WorkflowSerializationFormat.PORTABLE):
        assert queue.enqueue(plain_echo, "a").get_result() == ["a"]
    with SetWorkflowID("enq-native"):
        assert queue.enqueue(plain_echo, "b").get_result() == ["b"]
    with DBOSClient(system_database_url=url) as client:
        options = {"workflow_name": "plain_echo", "queue_name": "per_call", "workflow_id": "client-portable"}
        assert client.enqueue({**options, "serialization_type": "portable"}, "c").get_result() == ["c"]
    query = "SELECT workflow_id, inputs, output FROM {t}workflow_status ORDER BY workflow_id"
    stored = {wid: (bytes(i), bytes(o)) for wid, i, o in sql(backend, url, query)}
    assert stored["enq-portable"] == (b'{"positionalArgs":["a"],"namedArgs":{}}', b'["a"]')
    assert stored["client-portable"] == (b'{"positionalArgs":["c"],"namedArgs":{}}', b'["c"]')
    assert stored["enq-native"][0][0] == 0x80 and stored["enq-native"][1][0] == 0x80  # pickle, as by default
