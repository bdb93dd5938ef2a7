"""Enqueue and send from plain SQL: the Postgres system database functions ``enqueue_workflow`` and
``send_message`` write rows a launched application runs exactly like a client's (portable JSON
arguments, queue rules, deduplication, priorities, partitions, deadlines, ownership), from any
session or from a trigger inside the caller's transaction. Every call here runs with
``search_path = public``: the functions find the system tables on their own."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from tests.conftest import wait_until
from transact import (
    DBOS,
    DBOSClient,
    DBOSConfiguredInstance,
    Queue,
    QueueDeduplicatedError,
)
from transact.storage import grant_app_role


@pytest.fixture
def pg(config: dict[str, Any], backend: str) -> Iterator[dict[str, Any]]:
    """The config of a fresh Postgres system database; DBOS instances are destroyed after."""
    if backend == "sqlite":
        pytest.skip("SQLite has no stored functions: a program on the file INSERTs the row itself")
    DBOS.destroy(destroy_registry=True)
    try:
        yield config
    finally:
        DBOS.destroy(destroy_registry=True)


def sql(url: str, query: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> list[tuple[Any, ...]]:
    """One autocommitted statement from a session whose search_path lacks the system schema."""
    with psycopg.connect(url, autocommit=True, options="-c search_path=public") as conn:
        cur = conn.execute(query, params)
        return cur.fetchall() if cur.description else []


def enqueue(url: str, args: str, values: dict[str, Any] | None = None, **named: Any) -> str:
    """``transact.enqueue_workflow(<args>, key => %(key)s, ...)`` for each ``named``; ``values``
    fills placeholders in ``args``. Returns the workflow id."""
    spelled = ", ".join([args, *(f"{k} => %({k})s" for k in named)])
    return str(sql(url, f"SELECT transact.enqueue_workflow({spelled})", {**(values or {}), **named})[0][0])


def finished(url: str, workflow_id: str) -> tuple[str, Any] | None:
    """(status, output or error as JSON) once the workflow has finished, read by SQL."""
    rows = sql(
        url,
        "SELECT status, convert_from(COALESCE(output, error), 'UTF8')::json FROM transact.workflow_status "
        "WHERE workflow_id = %s AND status IN ('SUCCESS', 'ERROR', 'CANCELLED')",
        (workflow_id,),
    )
    return (rows[0][0], rows[0][1]) if rows else None


def status_of(url: str, workflow_id: str) -> str:
    return str(sql(url, "SELECT status FROM transact.workflow_status WHERE workflow_id = %s", (workflow_id,))[0][0])


def launch(config: dict[str, Any]) -> None:
    DBOS(config=config)
    DBOS.launch()


def test_enqueued_by_sql_runs_with_its_arguments_and_sql_reads_the_result(pg: dict[str, Any]) -> None:
    url = pg["system_database_url"]

    @DBOS.step()
    def double(x: int) -> int:
        return 2 * x

    @DBOS.workflow(name="sqlfn_add")
    def add(a: int, b: Any, *, label: str = "none", extra: Any = None) -> dict[str, Any]:
        return {"sum": double(a) // 2 + b["n"], "label": label, "extra": extra}

    # A poll of a minute: only the insert's NOTIFY can start the workflows within the deadlines.
    Queue("sqlfn_q", polling_interval_sec=60)
    launch(pg)
    wid = enqueue(
        url,
        "'sqlfn_add', 'sqlfn_q', ARRAY['2', '{\"n\": 3}']::json[], '{\"label\": \"x\", \"extra\": [1, null]}'",
        workflow_id="sql-add",
    )
    assert wid == "sql-add"
    assert wait_until(lambda: finished(url, wid), timeout=15, what="sql-add finished") == (
        "SUCCESS",
        {"sum": 5, "label": "x", "extra": [1, None]},
    )
    assert DBOS.retrieve_workflow(wid).get_result() == {"sum": 5, "label": "x", "extra": [1, None]}
    status: Any = DBOS.get_workflow_status(wid)
    assert status.input == ((2, {"n": 3}), {"label": "x", "extra": [1, None]})
    assert (status.queue_name, status.application_name) == ("sqlfn_q", pg["name"])  # the queue's owner

    # Named arguments only, and the defaults (no arguments at all); ids generated are UUIDv7.
    only_named = enqueue(url, "'sqlfn_add', 'sqlfn_q'", named_args=json.dumps({"a": 1, "b": {"n": 1}}))
    assert wait_until(lambda: finished(url, only_named), what="named finished") == (
        "SUCCESS",
        {"sum": 2, "label": "none", "extra": None},
    )
    assert len(only_named) == 36 and only_named[14] == "7"
    no_args = enqueue(url, "'sqlfn_add', 'sqlfn_q'")
    state, error = wait_until(lambda: finished(url, no_args), what="no-args finished")
    assert state == "ERROR" and error["name"] == "TypeError" and "missing" in error["message"]


def test_class_instance_workflows_run_on_the_instance_the_row_names(pg: dict[str, Any]) -> None:
    url = pg["system_database_url"]

    @DBOS.dbos_class(class_name="SqlGreeter")
    class Greeter(DBOSConfiguredInstance):
        def __init__(self, word: str) -> None:
            self.word = word
            super().__init__(config_name=word)

        @DBOS.workflow(name="sqlfn_greet")
        def greet(self, who: str) -> str:
            return f"{self.word} {who}"

    Greeter("hello"), Greeter("bye")
    Queue("sqlfn_class")
    launch(pg)
    wid = enqueue(
        url,
        "'sqlfn_greet', 'sqlfn_class', ARRAY['\"sql\"']::json[]",
        class_name="SqlGreeter",
        config_name="bye",
    )
    assert wait_until(lambda: finished(url, wid), what="greet finished") == ("SUCCESS", "bye sql")


def test_deduplication_id_refuses_a_second_active_workflow_as_the_client_does(pg: dict[str, Any]) -> None:
    url = pg["system_database_url"]  # migrated, nothing launched: the first stays ENQUEUED
    first = enqueue(url, "'sqlfn_any', 'sqlfn_dedup'", deduplication_id="order-7")
    with pytest.raises(psycopg.errors.UniqueViolation, match="already has an active workflow with deduplication id"):
        enqueue(url, "'sqlfn_any', 'sqlfn_dedup'", deduplication_id="order-7")
    with DBOSClient(url) as client, pytest.raises(QueueDeduplicatedError):
        client.enqueue({"workflow_name": "sqlfn_any", "queue_name": "sqlfn_dedup", "deduplication_id": "order-7"})
    # The same id again returns the existing workflow (never a second run); another workflow
    # under that id is refused.
    assert enqueue(url, "'sqlfn_any', 'sqlfn_dedup'", workflow_id=first, deduplication_id="order-7") == first
    with pytest.raises(psycopg.errors.UniqueViolation, match="already belongs to workflow 'sqlfn_any'"):
        enqueue(url, "'sqlfn_other', 'sqlfn_dedup'", workflow_id=first)
    count = sql(url, "SELECT count(*) FROM transact.workflow_status WHERE queue_name = 'sqlfn_dedup'")
    assert count == [(1,)]


def test_priority_order_and_partitions_are_honoured(pg: dict[str, Any]) -> None:
    url = pg["system_database_url"]
    order: list[str] = []

    @DBOS.workflow(name="sqlfn_tag")
    def tag(name: str) -> str:
        order.append(name)
        return name

    @DBOS.workflow(name="sqlfn_hold")
    def hold(name: str) -> Any:
        return [name, DBOS.recv("go", timeout_seconds=60)]

    # Enqueued before the application registers the queues: all wait, then run by priority.
    for name, priority in (("low", 9), ("high", 1), ("mid", 5), ("top", 0)):
        enqueue(url, "'sqlfn_tag', 'sqlfn_prio', ARRAY[to_json(%(n)s::text)]", {"n": name}, priority=priority)
    Queue("sqlfn_prio", worker_concurrency=1, priority_enabled=True)
    Queue("sqlfn_parts", partition_queue=True, partition_concurrency=1)
    launch(pg)
    wait_until(lambda: len(order) == 4, what="four priority workflows ran")
    assert order == ["top", "high", "mid", "low"]

    a1, a2, b1 = (
        enqueue(url, "'sqlfn_hold', 'sqlfn_parts', ARRAY[to_json(%(n)s::text)]", {"n": n}, queue_partition_key=k)
        for n, k in (("a1", "a"), ("a2", "a"), ("b1", "b"))
    )

    # One at a time per partition: one of partition a's waits while b1 runs beside the other.
    def one_a_running() -> bool:
        states = {status_of(url, a1), status_of(url, a2)}
        return states == {"PENDING", "ENQUEUED"} and status_of(url, b1) == "PENDING"

    wait_until(one_a_running, what="one of a1, a2 running beside b1")
    running, waiting = (a1, a2) if status_of(url, a1) == "PENDING" else (a2, a1)
    assert status_of(url, waiting) == "ENQUEUED"  # still: the partition's only slot is taken
    sql(url, "SELECT transact.send_message(%s, '\"ok\"', 'go')", (running,))
    assert wait_until(lambda: finished(url, running), what="first of a finished")[1][1] == "ok"
    wait_until(lambda: status_of(url, waiting) == "PENDING", what="second of a running")
    for wid in (waiting, b1):
        sql(url, "SELECT transact.send_message(%s, '{\"n\": 1}', 'go')", (wid,))
    assert wait_until(lambda: finished(url, b1), what="b1 finished") == ("SUCCESS", ["b1", {"n": 1}])
    assert wait_until(lambda: finished(url, waiting), what="second of a finished")[1][1] == {"n": 1}
    status: Any = DBOS.get_workflow_status(a2)
    assert status.queue_partition_key == "a"

    # The registered queues' rules, as Queue.enqueue applies them.
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="does not have priorities"):
        enqueue(url, "'sqlfn_tag', 'sqlfn_parts'", priority=1, queue_partition_key="a")
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="is partitioned: pass queue_partition_key"):
        enqueue(url, "'sqlfn_hold', 'sqlfn_parts'")
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="is not partitioned"):
        enqueue(url, "'sqlfn_tag', 'sqlfn_prio'", queue_partition_key="a")


def test_send_message_topics_idempotency_and_unknown_destination(pg: dict[str, Any]) -> None:
    url = pg["system_database_url"]

    @DBOS.workflow(name="sqlfn_inbox")
    def inbox() -> list[Any]:
        return [DBOS.recv("t", timeout_seconds=60), DBOS.recv("t", timeout_seconds=60), DBOS.recv(timeout_seconds=60)]

    Queue("sqlfn_inbox_q")
    launch(pg)
    wid = enqueue(url, "'sqlfn_inbox', 'sqlfn_inbox_q'")
    send = "SELECT transact.send_message(%s, %s::json, %s, %s)"
    sql(url, send, (wid, '{"first": true}', "t", "k1"))
    sql(url, send, (wid, '"repeat"', "t", "k1"))  # the key was used: nothing is sent
    sql(url, send, (wid, "[2]", "t", "k2"))
    sql(url, "SELECT transact.send_message(%s, '3')", (wid,))  # no topic: the default one
    assert wait_until(lambda: finished(url, wid), what="inbox finished") == ("SUCCESS", [{"first": True}, [2], 3])
    with pytest.raises(psycopg.errors.NoDataFound, match="workflow 'no-such-workflow' does not exist"):
        sql(url, "SELECT transact.send_message('no-such-workflow', '1')")
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="topic contains a line break"):
        sql(url, send, (wid, "1", "a\nb", None))


def test_a_trigger_enqueues_in_the_callers_transaction_and_the_workflow_runs_once(pg: dict[str, Any]) -> None:
    url = pg["system_database_url"]
    table = f"sqlfn_orders_{os.getpid()}"
    runs: list[int] = []
    lock = threading.Lock()

    @DBOS.step()
    def charge(order_id: int) -> None:
        with lock:
            runs.append(order_id)

    @DBOS.workflow(name="sqlfn_process_order")
    def process_order(order_id: int, item: str) -> str:
        charge(order_id)
        return f"{order_id}:{item}"

    Queue("sqlfn_orders")
    launch(pg)
    sql(url, f"CREATE TABLE {table} (id SERIAL PRIMARY KEY, item TEXT NOT NULL)")
    try:
        sql(
            url,
            f"CREATE FUNCTION {table}_enqueue() RETURNS trigger AS $$ BEGIN "
            "PERFORM transact.enqueue_workflow('sqlfn_process_order', 'sqlfn_orders', "
            "ARRAY[to_json(NEW.id), to_json(NEW.item)], workflow_id => 'order-' || NEW.id); "
            "RETURN NULL; END $$ LANGUAGE plpgsql",
        )
        sql(url, f"CREATE TRIGGER enqueue AFTER INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION {table}_enqueue()")
        with psycopg.connect(url, options="-c search_path=public") as conn:  # one transaction, rolled back
            conn.execute(f"INSERT INTO {table} (item) VALUES ('lost')")
            conn.rollback()
        with psycopg.connect(url, options="-c search_path=public") as conn:  # one transaction, committed
            (order_id,) = conn.execute(f"INSERT INTO {table} (item) VALUES ('book') RETURNING id").fetchone() or (0,)
            conn.execute("SELECT 1")  # the caller's other work in the same transaction
        wid = f"order-{order_id}"
        assert wait_until(lambda: finished(url, wid), what="order finished") == ("SUCCESS", f"{order_id}:book")
        assert runs == [order_id]
        rows = sql(url, "SELECT workflow_id FROM transact.workflow_status WHERE name = 'sqlfn_process_order'")
        assert rows == [(wid,)]  # the rolled-back insert enqueued nothing
    finally:
        sql(url, f"DROP TABLE IF EXISTS {table}")
        sql(url, f"DROP FUNCTION IF EXISTS {table}_enqueue()")


def test_unknown_names_wait_as_a_clients_rows_do(pg: dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    url = pg["system_database_url"]
    # A queue nobody registered yet: accepted, and run once an application declares it.
    early = enqueue(url, "'sqlfn_late', 'sqlfn_not_yet', ARRAY['1']::json[]")
    assert status_of(url, early) == "ENQUEUED"

    @DBOS.workflow(name="sqlfn_late")
    def late(x: int) -> int:
        return x + 1

    Queue("sqlfn_not_yet")
    caplog.set_level(logging.ERROR, logger="transact")
    launch(pg)
    assert wait_until(lambda: finished(url, early), what="early finished") == ("SUCCESS", 2)
    # A workflow this application does not have: returned to the queue, still ENQUEUED.
    missing = enqueue(url, "'sqlfn_no_such_workflow', 'sqlfn_not_yet'")
    wait_until(lambda: missing in caplog.text and "not registered in this process" in caplog.text, what="give-back")
    wait_until(lambda: status_of(url, missing) == "ENQUEUED", what="returned to the queue")  # logged, then released
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="workflow_name must be a non-empty string"):
        enqueue(url, "'', 'sqlfn_not_yet'")
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="named_args must be a JSON object"):
        enqueue(url, "'sqlfn_late', 'sqlfn_not_yet'", named_args="[1]")


def test_timeouts_deadlines_and_app_versions(pg: dict[str, Any]) -> None:
    url = pg["system_database_url"]

    @DBOS.workflow(name="sqlfn_wait")
    def wait() -> Any:
        return DBOS.recv("never", timeout_seconds=60)

    Queue("sqlfn_timed")
    # Pinned: this process runs only rows of its version (a row naming none included, as a client's).
    launch({**pg, "application_version": "v1", "pin_app_version": True})
    timed = enqueue(url, "'sqlfn_wait', 'sqlfn_timed'", app_version="v1", timeout_ms=300)
    past = enqueue(url, "'sqlfn_wait', 'sqlfn_timed'", app_version="v1", deadline_epoch_ms=int(time.time() * 1000))
    other_version = enqueue(url, "'sqlfn_wait', 'sqlfn_timed'", app_version="v2", timeout_ms=300)
    unversioned = enqueue(url, "'sqlfn_wait', 'sqlfn_timed'", timeout_ms=300)
    last = enqueue(url, "'sqlfn_wait', 'sqlfn_timed'", app_version="v1", timeout_ms=300)
    for wid in (timed, past, last):
        assert wait_until(lambda w=wid: finished(url, w), what=f"{wid} timed out")[0] == "CANCELLED"  # type: ignore[misc]
    # Enqueued before the last v1 row, which has run: the v2 row and the one naming no version wait.
    assert status_of(url, other_version) == status_of(url, unversioned) == "ENQUEUED"
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="timeout_ms must be >= 0"):
        enqueue(url, "'sqlfn_wait', 'sqlfn_timed'", timeout_ms=-1)


def test_the_app_role_may_call_the_functions(pg: dict[str, Any]) -> None:
    url = pg["system_database_url"]
    role = f"transact_sqlfn_{os.getpid()}"
    sql(url, f"DROP ROLE IF EXISTS {role}")
    sql(url, f"CREATE ROLE {role} NOLOGIN")
    try:
        grant_app_role(url, role)
        with psycopg.connect(url, autocommit=True, options="-c search_path=public") as conn:
            conn.execute(f"SET ROLE {role}")
            (wid,) = conn.execute("SELECT transact.enqueue_workflow('sqlfn_any', 'sqlfn_role')").fetchone() or ("",)
            conn.execute("SELECT transact.send_message(%s, '1')", (wid,))
            conn.execute("RESET ROLE")
        assert status_of(url, wid) == "ENQUEUED"
        assert sql(url, "SELECT count(*) FROM transact.notifications WHERE destination_id = %s", (wid,)) == [(1,)]
    finally:
        sql(url, f"DROP OWNED BY {role}")
        sql(url, f"DROP ROLE IF EXISTS {role}")
