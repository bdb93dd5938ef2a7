"""The transactional outbox: ``DBOS.enqueue_in_transaction`` / ``send_in_transaction`` and their
``DBOSClient`` forms write through the caller's own connection and commit or roll back with it.

Queues run with ``queue_poll_seconds=30``: committed work must start on the wake-up its commit
sends (Postgres NOTIFY, SQLite's data_version poll), never on the fallback poll.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.orm import Session

from tests.conftest import PG_ADMIN_URL, spawn, wait_until
from transact import DBOS, ConfigError, DBOSClient, Queue, QueueDeduplicatedError, SetEnqueueOptions, SetWorkflowID
from transact.errors import WorkflowNotFoundError

WORKER_APP = Path(__file__).parent.parent / "crash" / "apps" / "queue_app.py"
ENQUEUER_APP = Path(__file__).parent / "apps" / "outbox_app.py"

runs: list[int] = []
WORKFLOWS: dict[str, Callable[..., Any]] = {}
OPEN: list[Any] = []  # caller connections of the running test, closed before DBOS is destroyed


def native(db_url: str) -> Any:
    """A caller's own connection on the system database, with an application table ``orders``."""
    if db_url.startswith("sqlite:///"):
        conn: Any = sqlite3.connect(db_url[len("sqlite:///") :], timeout=30)
    else:
        conn = psycopg.connect(db_url)
    OPEN.append(conn)  # a failed test must not leave SQLite's write lock held
    conn.execute("CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY)")
    conn.commit()
    return conn


def drop_orders(db_url: str) -> None:
    """Postgres keeps the application table between tests (only Transact's tables are emptied)."""
    conn = native(db_url)
    conn.execute("DROP TABLE orders")
    conn.commit()
    conn.close()


def sa_url(db_url: str) -> str:
    return db_url.replace("postgresql://", "postgresql+psycopg://", 1)


def orders(db_url: str) -> list[str]:
    conn = native(db_url)
    try:
        return sorted(str(r[0]) for r in conn.execute("SELECT id FROM orders").fetchall())
    finally:
        conn.close()


@pytest.fixture
def app(config: dict[str, Any]) -> Iterator[type[DBOS]]:
    DBOS.destroy(destroy_registry=True)
    runs.clear()
    drop_orders(config["system_database_url"])
    Queue("outbox_q")
    Queue("dedup_q")

    @DBOS.workflow(name="outbox_double")
    def double(x: int) -> int:
        runs.append(x)
        return x * 2

    @DBOS.workflow(name="outbox_listen")
    def listen() -> list[Any]:
        return [DBOS.recv("t", timeout_seconds=30), DBOS.recv("t", timeout_seconds=0.3)]

    @DBOS.workflow(name="outbox_in_body")
    def in_body(db_url: str) -> None:
        conn = native(db_url)
        try:
            DBOS.enqueue_in_transaction(conn, "outbox_q", double, 1)
        finally:
            conn.close()
            OPEN.remove(conn)  # made in a worker thread: SQLite refuses a close from another

    WORKFLOWS.update(outbox_double=double, outbox_listen=listen, outbox_in_body=in_body)
    DBOS(config={**config, "queue_poll_seconds": 30})
    DBOS.launch()
    try:
        yield DBOS
    finally:
        for conn in OPEN:
            conn.close()
        OPEN.clear()
        DBOS.destroy(destroy_registry=True)


def wf(name: str) -> Callable[..., Any]:
    return WORKFLOWS[name]


def test_rolled_back_enqueue_leaves_nothing(app: type[DBOS], db_url: str) -> None:
    conn = native(db_url)
    conn.execute("INSERT INTO orders (id) VALUES ('a')")
    with SetWorkflowID("outbox-rollback"):
        handle = DBOS.enqueue_in_transaction(conn, "outbox_q", wf("outbox_double"), 21)
    assert handle.workflow_id == "outbox-rollback"
    conn.rollback()
    conn.close()
    assert DBOS.get_workflow_status("outbox-rollback") is None
    assert orders(db_url) == []
    assert runs == []


@pytest.mark.parametrize("kind", ["native", "sqlalchemy-connection", "sqlalchemy-session"])
def test_committed_enqueue_runs_once(app: type[DBOS], db_url: str, kind: str) -> None:
    native(db_url).close()  # creates the orders table
    engine = sa.create_engine(sa_url(db_url))
    try:
        if kind == "native":
            conn = native(db_url)
            conn.execute("INSERT INTO orders (id) VALUES ('b')")
            handle = DBOS.enqueue_in_transaction(conn, "outbox_q", wf("outbox_double"), 21)
            assert DBOS.get_workflow_status(handle.workflow_id) is None  # invisible until the commit
            conn.commit()
            conn.close()
        elif kind == "sqlalchemy-connection":
            with engine.begin() as sa_conn:
                sa_conn.execute(sa.text("INSERT INTO orders (id) VALUES ('b')"))
                handle = DBOS.enqueue_in_transaction(sa_conn, "outbox_q", wf("outbox_double"), 21)
        else:
            with Session(engine) as session, session.begin():
                session.execute(sa.text("INSERT INTO orders (id) VALUES ('b')"))
                handle = DBOS.enqueue_in_transaction(session, "outbox_q", wf("outbox_double"), 21)
        assert handle.get_result(timeout=20) == 42
        assert runs == [21]
        assert orders(db_url) == ["b"]
        # The same id again (a retried business transaction) returns the same workflow: it runs once.
        conn = native(db_url)
        with SetWorkflowID(handle.workflow_id):
            again = DBOS.enqueue_in_transaction(conn, "outbox_q", wf("outbox_double"), 21)
        conn.commit()
        conn.close()
        assert again.get_result(timeout=20) == 42
        assert runs == [21]
    finally:
        engine.dispose()


def test_send_in_transaction_received_once_if_committed(app: type[DBOS], db_url: str) -> None:
    handle = DBOS.start_workflow(wf("outbox_listen"))
    conn = native(db_url)
    DBOS.send_in_transaction(conn, handle.workflow_id, "rolled back", "t")
    conn.rollback()
    DBOS.send_in_transaction(conn, handle.workflow_id, "committed", "t")
    conn.commit()
    conn.close()
    assert handle.get_result(timeout=30) == ["committed", None]


def test_client_forms(app: type[DBOS], db_url: str) -> None:
    listener = DBOS.start_workflow(wf("outbox_listen"))  # before the transaction: SQLite has one writer
    with DBOSClient(db_url) as client:
        conn = native(db_url)
        options = {"queue_name": "outbox_q", "workflow_name": "outbox_double", "workflow_id": "outbox-client"}
        handle = client.enqueue_in_transaction(conn, options, 4)
        conn.rollback()
        assert client.get_workflow_status("outbox-client") is None
        handle = client.enqueue_in_transaction(conn, options, 5)
        client.send_in_transaction(conn, listener.workflow_id, "hello", "t")
        conn.commit()
        conn.close()
        assert handle.get_result(timeout=20) == 10
        assert listener.get_result(timeout=30) == ["hello", None]
    assert runs == [5]


def test_message_to_workflow_enqueued_in_same_transaction(app: type[DBOS], db_url: str) -> None:
    conn = native(db_url)
    handle = DBOS.enqueue_in_transaction(conn, "outbox_q", wf("outbox_listen"))
    DBOS.send_in_transaction(conn, handle.workflow_id, "first", "t")
    conn.commit()
    conn.close()
    assert handle.get_result(timeout=30) == ["first", None]


def test_deduplicated_enqueue_leaves_the_transaction_usable(app: type[DBOS], db_url: str) -> None:
    blocker = native(db_url)
    with SetEnqueueOptions(deduplication_id="d1"):
        DBOS.enqueue_in_transaction(blocker, "dedup_q", wf("outbox_listen"))
    blocker.commit()
    conn = native(db_url)
    conn.execute("INSERT INTO orders (id) VALUES ('c')")
    with SetEnqueueOptions(deduplication_id="d1"), pytest.raises(QueueDeduplicatedError):
        DBOS.enqueue_in_transaction(conn, "dedup_q", wf("outbox_double"), 1)
    conn.execute("INSERT INTO orders (id) VALUES ('d')")  # still usable
    conn.commit()
    conn.close()
    blocker.close()
    assert orders(db_url) == ["c", "d"]


def other_database(db_url: str, tmp_path: Path) -> Any:
    conn: Any = sqlite3.connect(tmp_path / "other.sqlite") if db_url.startswith("sqlite:///") else None
    conn = conn or psycopg.connect(PG_ADMIN_URL)
    OPEN.append(conn)
    return conn


def test_bad_input_errors_clearly(app: type[DBOS], db_url: str, tmp_path: Path) -> None:
    double = wf("outbox_double")
    other = other_database(db_url, tmp_path)
    with pytest.raises(ConfigError, match="not the system database"):
        DBOS.enqueue_in_transaction(other, "outbox_q", double, 1)
    with pytest.raises(ConfigError, match="not the system database"):
        DBOS.send_in_transaction(other, "anything", "m")
    other.close()

    closed = native(db_url)
    closed.close()
    with pytest.raises(ConfigError, match="closed"):
        DBOS.enqueue_in_transaction(closed, "outbox_q", double, 1)

    conn = native(db_url)
    with pytest.raises(ConfigError, match="no queue 'nowhere' is registered"):
        DBOS.enqueue_in_transaction(conn, "nowhere", double, 1)
    with DBOSClient(db_url) as client, pytest.raises(ConfigError, match="no queue 'nowhere' is registered"):
        client.enqueue_in_transaction(conn, {"queue_name": "nowhere", "workflow_name": "outbox_double"}, 1)
    with pytest.raises(ConfigError, match=r"must be a sqlite3\.Connection"):
        DBOS.enqueue_in_transaction(object(), "outbox_q", double, 1)
    with pytest.raises(WorkflowNotFoundError):
        DBOS.send_in_transaction(conn, "no-such-workflow", "m")
    conn.rollback()
    conn.close()

    if db_url.startswith("sqlite:///"):
        auto: Any = sqlite3.connect(db_url[len("sqlite:///") :], isolation_level=None)
    else:
        auto = psycopg.connect(db_url, autocommit=True)
    OPEN.append(auto)
    with pytest.raises(ConfigError, match="autocommit"):
        DBOS.enqueue_in_transaction(auto, "outbox_q", double, 1)
    auto.close()

    with pytest.raises(ConfigError, match="workflow's body"):
        DBOS.start_workflow(wf("outbox_in_body"), db_url).get_result(timeout=20)
    assert runs == []


def test_crash_after_commit_runs_once(db_url: str, tmp_path: Path, procs: list[subprocess.Popen[str]]) -> None:
    """The enqueuer SIGKILLs itself right after its commit; a worker killed mid-run is replaced:
    the committed workflow completes once, its recorded first step never runs twice, and the
    rolled-back one never exists."""
    drop_orders(db_url)
    hold = tmp_path / "hold"
    hold.touch()
    env = {"APP_HEARTBEAT": "0.5"}

    def start_worker() -> subprocess.Popen[str]:
        proc = spawn(WORKER_APP, db_url, str(tmp_path), json.dumps({"concurrency": 1}), env=env)
        procs.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("READY"), line
        return proc

    doomed = start_worker()  # registers queue "shared" and serves it
    enqueuer = spawn(ENQUEUER_APP, db_url)
    out, _ = enqueuer.communicate(timeout=60)
    assert enqueuer.returncode == -9 and "COMMITTED" in out, out
    with DBOSClient(db_url) as client:
        assert client.get_workflow_status("outbox-rolled") is None
        wait_until(lambda: 1 in client.store.steps_load("outbox-crash"), what="the first step recorded")
        doomed.kill()
        doomed.wait()
        hold.unlink()
        start_worker()
        assert client.retrieve_workflow("outbox-crash").get_result(timeout=60) == 50
    assert (tmp_path / "effects.txt").read_text().split()[0::2] == ["5"]
    assert orders(db_url) == ["committed"]


def async_url(db_url: str) -> str:
    if db_url.startswith("sqlite:///"):
        return db_url.replace("sqlite:///", "sqlite+aiosqlite:///", 1)
    return sa_url(db_url)


@pytest.mark.parametrize("kind", ["sqlalchemy-async-connection", "sqlalchemy-async-session", "psycopg-async"])
def test_async_forms_commit_or_roll_back_with_the_caller(app: type[DBOS], db_url: str, kind: str) -> None:
    if kind == "psycopg-async" and db_url.startswith("sqlite"):
        pytest.skip("a psycopg connection cannot open a SQLite database")
    native(db_url).close()  # creates the orders table
    listener = DBOS.start_workflow(wf("outbox_listen"))  # before the transaction: SQLite has one writer
    double = wf("outbox_double")

    async def business(conn: Any, order: str, commit: bool, client: DBOSClient) -> str:
        with SetWorkflowID(f"async-{kind}-{order}"):
            handle = await DBOS.enqueue_in_transaction_async(conn, "outbox_q", double, 8)
        await DBOS.send_in_transaction_async(conn, listener.workflow_id, order, "t")
        options = {"queue_name": "outbox_q", "workflow_name": "outbox_double", "workflow_id": f"client-{kind}-{order}"}
        await client.enqueue_in_transaction_async(conn, options, 9)
        await client.send_in_transaction_async(conn, listener.workflow_id, f"client-{order}", "t")
        return handle.workflow_id

    async def scenario() -> list[str]:
        ids = []
        with DBOSClient(db_url) as client:
            for order, commit in (("x", False), ("y", True)):
                sql = sa.text(f"INSERT INTO orders (id) VALUES ('{order}')")
                if kind == "psycopg-async":
                    pconn = await psycopg.AsyncConnection.connect(db_url)
                    await pconn.execute(sql.text)
                    ids.append(await business(pconn, order, commit, client))
                    await (pconn.commit() if commit else pconn.rollback())
                    await pconn.close()
                    continue
                engine = create_async_engine(async_url(db_url))
                try:
                    if kind == "sqlalchemy-async-connection":
                        async with engine.connect() as aconn:
                            await aconn.execute(sql)
                            ids.append(await business(aconn, order, commit, client))
                            await (aconn.commit() if commit else aconn.rollback())
                    else:
                        async with AsyncSession(engine) as session:
                            await session.execute(sql)
                            ids.append(await business(session, order, commit, client))
                            await (session.commit() if commit else session.rollback())
                finally:
                    await engine.dispose()
        return ids

    rolled_back, committed = asyncio.run(scenario())
    assert DBOS.get_workflow_status(rolled_back) is None
    assert DBOS.retrieve_workflow(committed).get_result(timeout=20) == 16
    assert DBOS.retrieve_workflow(f"client-{kind}-y").get_result(timeout=20) == 18
    assert DBOS.get_workflow_status(f"client-{kind}-x") is None
    assert sorted(listener.get_result(timeout=30)) == ["client-y", "y"]  # the rolled-back ones never arrive
    assert orders(db_url) == ["y"]
    assert sorted(runs) == [8, 9]


def test_async_form_refuses_a_synchronous_connection(app: type[DBOS], db_url: str) -> None:
    conn = native(db_url)
    with pytest.raises(ConfigError, match="AsyncConnection or AsyncSession"):
        asyncio.run(DBOS.enqueue_in_transaction_async(conn, "outbox_q", wf("outbox_double"), 1))
    conn.rollback()


def test_return_existing_gives_the_deduplication_holder(app: type[DBOS], db_url: str) -> None:
    blocker = native(db_url)
    with SetEnqueueOptions(deduplication_id="d2"):
        holder = DBOS.enqueue_in_transaction(blocker, "dedup_q", wf("outbox_listen"))
    blocker.commit()
    blocker.close()
    with DBOSClient(db_url) as client:  # before the transaction: SQLite has one writer
        conn = native(db_url)
        with SetEnqueueOptions(deduplication_id="d2", duplication_policy="return_existing"):
            again = DBOS.enqueue_in_transaction(conn, "dedup_q", wf("outbox_double"), 1)
        assert again.workflow_id == holder.workflow_id
        options = {"queue_name": "dedup_q", "workflow_name": "outbox_double", "deduplication_id": "d2"}
        same = client.enqueue_in_transaction(conn, {**options, "duplication_policy": "return_existing"}, 1)
        assert same.workflow_id == holder.workflow_id
        with pytest.raises(QueueDeduplicatedError):
            client.enqueue_in_transaction(conn, options, 1)
        with pytest.raises(ConfigError, match="duplication_policy"):
            client.enqueue_in_transaction(conn, {**options, "duplication_policy": "sometimes"}, 1)
    conn.commit()
    conn.close()
    DBOS.send(holder.workflow_id, "done", "t")
    assert holder.get_result(timeout=30) == ["done", None]
    assert runs == []
