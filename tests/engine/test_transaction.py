"""@DBOS.transaction: outcome row in the same transaction, replay, errors, conflicts, config."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import create_engine, text

from tests.conftest import fresh_postgres, pg_url, scratch_pg_database
from transact import DBOS, SerializationError, SetWorkflowID
from transact.engine import workflow as wf
from transact.engine.clock import now_ms
from transact.errors import ConfigError, DatabaseUnavailableError, NotInWorkflowError
from transact.storage.app_outcomes import AppDatabase, sqlalchemy_url

USER_TABLES = (
    "CREATE TABLE items (wid TEXT, name TEXT)",
    "CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)",
    "INSERT INTO counter (id, n) VALUES (1, 0)",
)


# -- fixtures -------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def pg_app_database() -> Iterator[str]:
    """An application database apart from the system one (same server), per pytest process."""
    yield from scratch_pg_database("transact_app")


def fresh_app(url: str) -> str:
    """Recreate the user's tables and forget every outcome row."""
    engine = create_engine(sqlalchemy_url(url))
    with engine.begin() as conn:
        for table in ("items", "counter"):
            conn.execute(text(f"DROP TABLE IF EXISTS {table}"))
        for statement in USER_TABLES:
            conn.execute(text(statement))
    engine.dispose()
    app = AppDatabase(url)
    app.migrate()
    app.reset_outcomes()
    app.close()
    return url


@pytest.fixture
def app_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if backend == "sqlite":
        return fresh_app(f"sqlite:///{tmp_path / 'app.sqlite'}")
    return fresh_app(request.getfixturevalue("pg_app_database"))


def launch(config: dict[str, Any], app: str | None) -> type[DBOS]:
    DBOS.destroy(destroy_registry=True)
    DBOS(config={**config, "application_database_url": app} if app else config)
    DBOS.launch()
    return DBOS


@pytest.fixture
def tdbos(config: dict[str, Any], app_url: str) -> Iterator[type[DBOS]]:
    try:
        yield launch(config, app_url)
    finally:
        DBOS.destroy(destroy_registry=True)


# -- helpers --------------------------------------------------------------------------------------
def query(url: str, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
    engine = create_engine(sqlalchemy_url(url))
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql), params or {})]
    finally:
        engine.dispose()


def outcomes(url: str) -> list[tuple[Any, ...]]:
    table = "transact.transaction_outputs" if url.startswith("postgres") else "transact_transaction_outputs"
    return query(url, f"SELECT workflow_id, function_id, function_name, error IS NULL FROM {table} ORDER BY 1, 2")


def items(url: str) -> list[tuple[Any, ...]]:
    return query(url, "SELECT wid, name FROM items ORDER BY name")


def steps(wid: str) -> list[tuple[str, Any, Any]]:
    return [(s["function_name"], s["output"], s["error"]) for s in DBOS.list_workflow_steps(wid)]


def replay(wid: str, *, forget_steps_from: int | None = None) -> Any:
    """Run a finished workflow again as recovery would. ``forget_steps_from``: delete the system
    checkpoints from that step on, as if the process died after the application commit."""
    rt = DBOS._rt()
    if forget_steps_from is not None:
        rt.store.write(
            lambda tx: tx.run(
                "DELETE FROM operation_outputs WHERE workflow_id = ? AND function_id >= ?", (wid, forget_steps_from)
            ),
            single=True,
        )
    rt.store.workflow_set_status(wid, "PENDING", now_ms())
    row = rt.store.workflow_get(wid)
    assert row is not None and wf.resume(rt, row, max_attempts_checked=True)
    return rt.await_result(wid)


# -- behaviour ------------------------------------------------------------------------------------
def test_writes_and_outcome_row_commit_together(tdbos: type[DBOS], app_url: str) -> None:
    @DBOS.transaction()
    def add_item(name: str) -> tuple[str | None, int | None]:
        DBOS.sql_session.execute(
            text("INSERT INTO items (wid, name) VALUES (:w, :n)"), {"w": DBOS.workflow_id, "n": name}
        )
        return DBOS.workflow_id, DBOS.step_id

    @DBOS.workflow()
    def wf_items() -> list[Any]:
        return [add_item("a"), add_item("b")]

    with SetWorkflowID("txn-1"):
        assert wf_items() == [("txn-1", 1), ("txn-1", 2)]
    assert items(app_url) == [("txn-1", "a"), ("txn-1", "b")]
    name = add_item.__qualname__
    assert outcomes(app_url) == [("txn-1", 1, name, True), ("txn-1", 2, name, True)]
    assert [(name.rsplit(".", 1)[-1], out) for name, out, _ in steps("txn-1")] == [
        ("add_item", ("txn-1", 1)),
        ("add_item", ("txn-1", 2)),
    ]


def test_sql_session_outside_a_transaction_is_a_clear_error(tdbos: type[DBOS]) -> None:
    with pytest.raises(NotInWorkflowError, match=r"@DBOS.transaction"):
        DBOS.sql_session  # noqa: B018

    @DBOS.workflow()
    def wf_no_session() -> None:
        DBOS.sql_session  # noqa: B018

    with pytest.raises(NotInWorkflowError):
        wf_no_session()


def test_exception_rolls_back_and_the_workflow_sees_it(tdbos: type[DBOS], app_url: str) -> None:
    @DBOS.transaction()
    def failing() -> None:
        DBOS.sql_session.execute(text("INSERT INTO items (wid, name) VALUES ('x', 'never')"))
        raise ValueError("no such account")

    @DBOS.workflow()
    def wf_fail() -> str:
        try:
            failing()
        except ValueError as exc:
            return f"caught {exc}"
        return "not raised"

    with SetWorkflowID("txn-err"):
        assert wf_fail() == "caught no such account"
    assert items(app_url) == []
    assert [row[1:] for row in outcomes(app_url)] == [(1, failing.__qualname__, False)]
    ((_, output, error),) = steps("txn-err")
    assert output is None and isinstance(error, ValueError) and str(error) == "no such account"
    # Replay raises the recorded error again without running the function.
    assert replay("txn-err") == "caught no such account"
    assert items(app_url) == []


def test_replay_returns_the_recorded_result_without_running(tdbos: type[DBOS], app_url: str) -> None:
    calls: list[int] = []

    @DBOS.transaction()
    def add_item() -> int:
        calls.append(1)
        DBOS.sql_session.execute(text("INSERT INTO items (wid, name) VALUES ('r', :n)"), {"n": f"n{len(calls)}"})
        return len(calls)

    @DBOS.workflow()
    def wf_replay() -> int:
        return add_item() * 10

    with SetWorkflowID("txn-replay"):
        assert wf_replay() == 10
    assert replay("txn-replay") == 10  # from the system checkpoint
    assert calls == [1] and items(app_url) == [("r", "n1")]


@pytest.mark.parametrize("first", [True, False], ids=["txn-first", "after-a-step"])
def test_commit_without_checkpoint_replays_from_the_outcome_row(tdbos: type[DBOS], app_url: str, first: bool) -> None:
    """The process died after the application commit but before the system checkpoint."""
    calls: list[int] = []

    @DBOS.step()
    def before() -> None:
        pass

    @DBOS.transaction()
    def add_item() -> int:
        calls.append(1)
        DBOS.sql_session.execute(text("INSERT INTO items (wid, name) VALUES ('c', :n)"), {"n": f"n{len(calls)}"})
        return len(calls)  # differs per run: replay must return the first run's value

    @DBOS.workflow()
    def wf_crash() -> int:
        if not first:
            before()
        return add_item()

    with SetWorkflowID("txn-crash"):
        assert wf_crash() == 1
    txn_step = 1 if first else 2
    assert replay("txn-crash", forget_steps_from=txn_step) == 1
    assert items(app_url) == [("c", "n1")]
    assert [row[1] for row in outcomes(app_url)] == [txn_step]
    assert steps("txn-crash")[-1][1] == 1  # checkpointed again, with the recorded value
    if not first:
        assert calls == [1]  # a resumed workflow reads the outcome row before running


def test_recorded_error_wins_over_a_later_success(tdbos: type[DBOS], app_url: str) -> None:
    runs: list[int] = []

    @DBOS.transaction()
    def flaky() -> str:
        runs.append(1)
        DBOS.sql_session.execute(text("INSERT INTO items (wid, name) VALUES ('f', 'row')"))
        if len(runs) == 1:
            raise RuntimeError("first run fails")
        return "ok"

    @DBOS.workflow()
    def wf_flaky() -> str:
        try:
            return flaky()
        except RuntimeError as exc:
            return str(exc)

    with SetWorkflowID("txn-flaky"):
        assert wf_flaky() == "first run fails"
    assert replay("txn-flaky", forget_steps_from=1) == "first run fails"
    assert items(app_url) == []


def test_unpicklable_result_rolls_back_and_raises(tdbos: type[DBOS], app_url: str) -> None:
    @DBOS.transaction()
    def returns_a_lock() -> Any:
        DBOS.sql_session.execute(text("INSERT INTO items (wid, name) VALUES ('u', 'x')"))
        return threading.Lock()

    @DBOS.workflow()
    def wf_unpicklable() -> None:
        returns_a_lock()

    with pytest.raises(SerializationError, match="returns_a_lock"):
        wf_unpicklable()
    assert items(app_url) == []


def test_fifty_concurrent_serializable_increments(tdbos: type[DBOS], app_url: str) -> None:
    @DBOS.transaction(isolation_level="SERIALIZABLE")
    def increment() -> int:
        session = DBOS.sql_session
        n = session.execute(text("SELECT n FROM counter WHERE id = 1")).scalar_one()
        session.execute(text("UPDATE counter SET n = :n WHERE id = 1"), {"n": n + 1})
        return int(n) + 1

    @DBOS.workflow()
    def wf_inc() -> int:
        return increment()

    handles = [DBOS.start_workflow(wf_inc) for _ in range(50)]
    seen = sorted(h.get_result() for h in handles)
    assert seen == list(range(1, 51))  # each increment saw a distinct value: none lost, none doubled
    assert query(app_url, "SELECT n FROM counter") == [(50,)]
    assert len(outcomes(app_url)) == 50


def test_serialization_conflict_is_retried(tdbos: type[DBOS], app_url: str, backend: str) -> None:
    attempts: list[int] = []

    def interfere() -> None:
        """On the first attempt only, another connection writes what this transaction touches."""
        if backend == "postgres":
            with psycopg.connect(app_url, autocommit=True) as other:
                other.execute("UPDATE counter SET n = n + 100 WHERE id = 1")
        else:
            other = sqlite3.connect(app_url.removeprefix("sqlite:///"), timeout=0)
            try:
                other.execute("UPDATE counter SET n = n + 100 WHERE id = 1")  # we hold the lock
            finally:
                other.close()

    @DBOS.transaction(isolation_level="SERIALIZABLE")
    def increment() -> int:
        attempts.append(1)
        session = DBOS.sql_session
        n = session.execute(text("SELECT n FROM counter WHERE id = 1")).scalar_one()
        if len(attempts) == 1:
            interfere()
        session.execute(text("UPDATE counter SET n = :n WHERE id = 1"), {"n": n + 1})
        return int(n) + 1

    @DBOS.workflow()
    def wf_conflict() -> int:
        return increment()

    result = wf_conflict()
    assert len(attempts) == 2
    if backend == "postgres":  # the concurrent write committed; the retry builds on it
        assert result == 101 and query(app_url, "SELECT n FROM counter") == [(101,)]
    else:  # the other writer was refused ("database is locked") inside our transaction
        assert result == 1 and query(app_url, "SELECT n FROM counter") == [(1,)]
    assert len(outcomes(app_url)) == 1


def test_dropped_connection_is_retried(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """Postgres only: a server-side disconnect (SQLite has no connection to lose)."""
    app = fresh_app(request.getfixturevalue("pg_app_database"))
    attempts: list[int] = []

    @DBOS.transaction()
    def add_item(name: str) -> int:
        attempts.append(1)
        DBOS.sql_session.execute(text("INSERT INTO items (wid, name) VALUES ('drop', :n)"), {"n": name})
        if len(attempts) % 2 == 1:  # the first attempt of each call loses its connection
            DBOS.sql_session.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))
        return len(attempts)

    @DBOS.workflow()
    def wf_drop() -> int:
        return add_item("in-workflow")

    try:
        launch({"name": "drop", "system_database_url": f"sqlite:///{tmp_path / 's.sqlite'}"}, app)
        assert wf_drop() == 2
        assert add_item("plain") == 4  # outside a workflow: retried too, COMMIT was never sent
        assert items(app) == [("drop", "in-workflow"), ("drop", "plain")]
    finally:
        DBOS.destroy(destroy_registry=True)


def test_outside_a_workflow_it_is_a_plain_transaction(tdbos: type[DBOS], app_url: str) -> None:
    @DBOS.transaction()
    def add_item(name: str, fail: bool = False) -> str:
        DBOS.sql_session.execute(text("INSERT INTO items (wid, name) VALUES ('plain', :n)"), {"n": name})
        if fail:
            raise KeyError(name)
        return name.upper()

    assert add_item("a") == "A"
    with pytest.raises(KeyError):
        add_item("b", fail=True)
    assert items(app_url) == [("plain", "a")]
    assert outcomes(app_url) == []


def test_isolation_levels(tdbos: type[DBOS], backend: str) -> None:
    def make(level: Any) -> Any:
        @DBOS.transaction(isolation_level=level)
        def current() -> str:
            if backend == "sqlite":
                return "sqlite"
            return str(DBOS.sql_session.execute(text("SHOW transaction_isolation")).scalar_one())

        return current

    seen = [make(level)() for level in ("SERIALIZABLE", "REPEATABLE READ", "READ COMMITTED")]
    if backend == "postgres":
        assert seen == ["serializable", "repeatable read", "read committed"]
    else:
        assert seen == ["sqlite"] * 3  # SQLite transactions are always serializable


def test_user_session_commit_cannot_split_the_transaction(tdbos: type[DBOS], app_url: str) -> None:
    @DBOS.transaction()
    def commits_then_fails() -> None:
        DBOS.sql_session.execute(text("INSERT INTO items (wid, name) VALUES ('s', 'early')"))
        DBOS.sql_session.commit()
        raise RuntimeError("after commit")

    @DBOS.workflow()
    def wf_split() -> None:
        commits_then_fails()

    with pytest.raises(RuntimeError, match="after commit"):
        wf_split()
    assert items(app_url) == []


def test_nested_transaction_joins_the_outer_one(tdbos: type[DBOS], app_url: str) -> None:
    @DBOS.transaction()
    def inner() -> None:
        DBOS.sql_session.execute(text("INSERT INTO items (wid, name) VALUES ('n', 'inner')"))

    @DBOS.transaction()
    def outer(fail: bool) -> int | None:
        inner()
        if fail:
            raise ValueError("outer fails")
        return DBOS.step_id

    @DBOS.workflow()
    def wf_nested(fail: bool) -> int | None:
        return outer(fail)

    with pytest.raises(ValueError):
        wf_nested(True)
    assert items(app_url) == []
    assert wf_nested(False) == 1  # the inner call is part of step 1, not a step of its own
    assert items(app_url) == [("n", "inner")]


def test_async_workflow_calls_a_transaction(tdbos: type[DBOS], app_url: str) -> None:
    @DBOS.transaction()
    def add_item() -> int | None:
        DBOS.sql_session.execute(text("INSERT INTO items (wid, name) VALUES ('async', 'a')"))
        return DBOS.step_id

    @DBOS.workflow()
    async def wf_async() -> int | None:
        return add_item()

    assert asyncio.run(wf_async()) == 1
    assert items(app_url) == [("async", "a")] and len(outcomes(app_url)) == 1


def test_the_application_database_can_be_the_system_database(config: dict[str, Any]) -> None:
    url = fresh_app(config["system_database_url"])
    try:
        DBOS.destroy(destroy_registry=True)
        DBOS(config={**config, "database_url": url})  # the alias of application_database_url
        DBOS.launch()

        @DBOS.transaction()
        def add_item() -> str:
            DBOS.sql_session.execute(text("INSERT INTO items (wid, name) VALUES ('same', 'x')"))
            return "done"

        @DBOS.workflow()
        def wf_same() -> str:
            return add_item()

        with SetWorkflowID("txn-same"):
            assert wf_same() == "done"
        assert items(url) == [("same", "x")]
        assert [row[:2] for row in outcomes(url)] == [("txn-same", 1)]
        assert [s[1] for s in steps("txn-same")] == ["done"]
    finally:
        DBOS.destroy(destroy_registry=True)


@pytest.mark.parametrize("system", ["sqlite", "postgres"])
def test_system_and_application_databases_of_different_kinds(
    system: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if system == "sqlite":
        sys_url = f"sqlite:///{tmp_path / 'system.sqlite'}"
        app = fresh_app(request.getfixturevalue("pg_app_database"))
    else:
        sys_url = request.getfixturevalue("pg_database")
        fresh_postgres(sys_url)
        app = fresh_app(f"sqlite:///{tmp_path / 'app.sqlite'}")
    try:
        launch({"name": "mixed", "system_database_url": sys_url, "shutdown_timeout_seconds": 2}, app)

        @DBOS.transaction()
        def add_item() -> str:
            DBOS.sql_session.execute(text("INSERT INTO items (wid, name) VALUES ('mixed', :n)"), {"n": system})
            return system

        @DBOS.workflow()
        def wf_mixed() -> str:
            return add_item()

        with SetWorkflowID("txn-mixed"):
            assert wf_mixed() == system
        assert replay("txn-mixed", forget_steps_from=1) == system
        assert items(app) == [("mixed", system)]
    finally:
        DBOS.destroy(destroy_registry=True)


def test_concurrent_launch_migrations(app_url: str) -> None:
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def migrate() -> None:
        app = AppDatabase(app_url)
        try:
            barrier.wait()
            app.migrate()
        except BaseException as exc:
            errors.append(exc)
        finally:
            app.close()

    # start from a database without the outcome table
    table = "transact.transaction_outputs" if app_url.startswith("postgres") else "transact_transaction_outputs"
    engine = create_engine(sqlalchemy_url(app_url))
    with engine.begin() as conn:
        conn.execute(text(f"DROP TABLE IF EXISTS {table}"))
    engine.dispose()
    threads = [threading.Thread(target=migrate) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert outcomes(app_url) == []


# -- bad input ------------------------------------------------------------------------------------
def test_bad_declarations_fail_at_decoration() -> None:
    with pytest.raises(ConfigError, match="isolation_level must be one of"):
        DBOS.transaction(isolation_level="SNAPSHOT")  # type: ignore[call-overload]
    with pytest.raises(ConfigError, match="isolation_level must be one of"):
        DBOS.transaction("READ UNCOMMITTED")  # type: ignore[call-overload]

    async def coro() -> None:
        pass

    with pytest.raises(ConfigError, match="cannot decorate async def"):
        DBOS.transaction()(coro)
    # the short forms all decorate
    for form in (DBOS.transaction, DBOS.transaction(), DBOS.transaction("READ COMMITTED")):
        assert callable(form(lambda: None))


def test_without_an_application_database_a_transaction_is_a_config_error(dbos: type[DBOS]) -> None:
    @DBOS.transaction()
    def needs_app_db() -> None:
        raise AssertionError("must not run")

    @DBOS.workflow()
    def wf_no_app() -> None:
        needs_app_db()

    with pytest.raises(ConfigError, match="application_database_url"):
        needs_app_db()
    with SetWorkflowID("txn-noapp"), pytest.raises(ConfigError, match="application_database_url"):
        wf_no_app()
    assert DBOS.list_workflow_steps("txn-noapp") == []


def test_unreachable_application_database_fails_launch_clearly(
    config: dict[str, Any], tmp_path: Path, backend: str
) -> None:
    bad = (
        f"sqlite:///{tmp_path / 'missing-dir' / 'app.sqlite'}"
        if backend == "sqlite"
        else pg_url("transact_no_such_database")
    )
    DBOS.destroy(destroy_registry=True)
    DBOS(config={**config, "application_database_url": bad})
    try:
        with pytest.raises(DatabaseUnavailableError, match="application database"):
            DBOS.launch()
    finally:
        DBOS.destroy(destroy_registry=True)
