"""Datasources: SQLAlchemyDatasource / AsyncSQLAlchemyDatasource transactions, exactly once inside
workflows, plain outside them, several per application, and their argument errors."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.engine.test_transaction import app_url, items, pg_app_database, query, replay  # noqa: F401 - fixtures
from transact import DBOS, AsyncSQLAlchemyDatasource, SetWorkflowID, SQLAlchemyDatasource
from transact.errors import ConfigError, DBOSException, NotInWorkflowError
from transact.storage.app_outcomes import sqlalchemy_url


def ds_table(url: str, schema: str = "transact") -> str:
    return f"{schema}.datasource_outputs" if url.startswith("postgres") else "transact_datasource_outputs"


def ds_outcomes(url: str, schema: str = "transact") -> list[tuple[Any, ...]]:
    sql = f"SELECT workflow_id, function_id, function_name, error IS NULL FROM {ds_table(url, schema)} ORDER BY 1, 2"
    return query(url, sql)


def forget_ds_outcomes(url: str, schema: str = "transact") -> None:
    engine = create_engine(sqlalchemy_url(url))
    with engine.begin() as conn:
        if url.startswith("postgres"):
            conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        else:
            conn.execute(text(f"DROP TABLE IF EXISTS {ds_table(url)}"))
    engine.dispose()


@pytest.fixture
def ds_url(app_url: str) -> Iterator[str]:  # noqa: F811
    """The application database with no datasource outcome table yet (Postgres keeps only the
    ``@DBOS.transaction`` table in schema transact, so it drops just the datasource one)."""
    if app_url.startswith("postgres"):
        engine = create_engine(sqlalchemy_url(app_url))
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE IF EXISTS transact.datasource_outputs"))
            conn.execute(text("DROP SCHEMA IF EXISTS ds2 CASCADE"))
        engine.dispose()
    else:
        forget_ds_outcomes(app_url)
    yield app_url


@pytest.fixture
def ds(ds_url: str) -> Iterator[SQLAlchemyDatasource]:
    source = SQLAlchemyDatasource.create(ds_url)
    try:
        yield source
    finally:
        source.close()


# -- sync -----------------------------------------------------------------------------------------
def test_transaction_in_a_workflow_is_a_step_with_its_outcome_row(
    dbos: type[DBOS], ds: SQLAlchemyDatasource, ds_url: str
) -> None:
    runs: list[str] = []

    @ds.transaction()
    def add_item(name: str) -> int | None:
        runs.append(name)
        ds.sql_session().execute(
            text("INSERT INTO items (wid, name) VALUES (:w, :n)"), {"w": DBOS.workflow_id, "n": name}
        )
        return DBOS.step_id

    @DBOS.workflow()
    def wf_items() -> list[Any]:
        return [add_item("a"), add_item("b")]

    with SetWorkflowID("ds-1"):
        assert wf_items() == [1, 2]
    assert items(ds_url) == [("ds-1", "a"), ("ds-1", "b")]
    name = add_item.__qualname__
    assert ds_outcomes(ds_url) == [("ds-1", 1, name, True), ("ds-1", 2, name, True)]
    # A replay with the system checkpoints gone finds the outcome rows: nothing runs again.
    assert replay("ds-1", forget_steps_from=2) == [1, 2]
    assert runs == ["a", "b"] and len(items(ds_url)) == 2


def test_error_rolls_back_and_is_recorded(dbos: type[DBOS], ds: SQLAlchemyDatasource, ds_url: str) -> None:
    @ds.transaction()
    def failing() -> None:
        ds.sql_session().execute(text("INSERT INTO items (wid, name) VALUES ('err', 'x')"))
        raise ValueError("no thanks")

    @DBOS.workflow()
    def wf_fail() -> str:
        try:
            failing()
        except ValueError as exc:
            return f"caught {exc}"
        return "not raised"

    with SetWorkflowID("ds-err"):
        assert wf_fail() == "caught no thanks"
    assert items(ds_url) == []
    assert ds_outcomes(ds_url) == [("ds-err", 1, failing.__qualname__, False)]


def test_isolation_levels(dbos: type[DBOS], ds: SQLAlchemyDatasource, backend: str) -> None:
    def make(level: Any) -> Any:
        @ds.transaction(isolation_level=level)
        def current() -> str:
            if backend == "sqlite":
                return "sqlite"
            return str(ds.sql_session().execute(text("SHOW transaction_isolation")).scalar_one())

        return current

    seen = [make(level)() for level in ("SERIALIZABLE", "REPEATABLE READ", "READ COMMITTED")]
    if backend == "postgres":
        assert seen == ["serializable", "repeatable read", "read committed"]
    else:
        assert seen == ["sqlite"] * 3  # SQLite transactions are always serializable


def test_two_datasources_in_one_workflow(
    dbos: type[DBOS], ds: SQLAlchemyDatasource, ds_url: str, backend: str, tmp_path: Path
) -> None:
    if backend == "sqlite":
        other_url, schema = f"sqlite:///{tmp_path / 'other.sqlite'}", "transact"
        with create_engine(other_url).begin() as conn:
            conn.execute(text("CREATE TABLE items (wid TEXT, name TEXT)"))
        other = SQLAlchemyDatasource.create(other_url)
    else:
        other_url, schema = ds_url, "ds2"  # same database, its own outcome table in schema ds2
        other = SQLAlchemyDatasource.create(ds_url, schema=schema)
    try:

        @ds.transaction(name="first")
        def first() -> str:
            ds.sql_session().execute(text("INSERT INTO items (wid, name) VALUES ('two', 'first')"))
            return "one"

        @other.transaction(name="second")
        def second() -> str:
            with pytest.raises(NotInWorkflowError):
                ds.sql_session()  # the other datasource's session is not this one's
            other.sql_session().execute(text("INSERT INTO items (wid, name) VALUES ('two', 'second')"))
            return "two"

        @DBOS.workflow()
        def wf_two() -> list[str]:
            return [first(), second()]

        with SetWorkflowID("ds-two"):
            assert wf_two() == ["one", "two"]
        assert ds_outcomes(ds_url) == [("ds-two", 1, "first", True)]
        assert ds_outcomes(other_url, schema) == [("ds-two", 2, "second", True)]
        assert ("two", "second") in query(other_url, "SELECT wid, name FROM items")
    finally:
        other.close()


def test_outside_a_workflow_and_run_tx_step(dbos: type[DBOS], ds: SQLAlchemyDatasource, ds_url: str) -> None:
    @ds.transaction
    def add(name: str) -> str:
        ds.sql_session().execute(text("INSERT INTO items (wid, name) VALUES ('plain', :n)"), {"n": name})
        return name

    def undecorated(name: str) -> str:
        ds.sql_session().execute(text("INSERT INTO items (wid, name) VALUES ('plain', :n)"), {"n": name})
        return name.upper()

    assert add("a") == "a"
    assert ds.run_tx_step(undecorated, "b") == "B"
    assert items(ds_url) == [("plain", "a"), ("plain", "b")]
    assert ds_outcomes(ds_url) == []  # no workflow: plain transactions, no outcome rows

    @DBOS.workflow()
    def wf_run() -> str:
        return ds.run_tx_step(undecorated, "c")

    with SetWorkflowID("ds-run"):
        assert wf_run() == "C"
    assert ds_outcomes(ds_url) == [("ds-run", 1, undecorated.__qualname__, True)]


def test_user_engine_and_engine_kwargs(ds_url: str, backend: str) -> None:
    engine = create_engine(sqlalchemy_url(ds_url))
    source = SQLAlchemyDatasource.create(engine=engine)
    assert source.engine is engine

    @source.transaction()
    def count() -> int:
        return int(source.sql_session().execute(text("SELECT count(*) FROM items")).scalar_one())

    assert count() == 0
    source.close()
    engine.dispose()
    tuned = SQLAlchemyDatasource.create(ds_url, engine_kwargs={"pool_size": 2})
    assert tuned.engine.pool.size() == 2  # type: ignore[attr-defined]
    tuned.close()


def test_bad_input_is_refused_clearly(ds_url: str) -> None:
    with pytest.raises(ConfigError, match="database URL"):
        SQLAlchemyDatasource.create("")
    with pytest.raises(ConfigError, match="unsupported database URL"):
        SQLAlchemyDatasource.create("mysql://u:secret@h/db")
    with pytest.raises(ConfigError, match="engine_kwargs"):
        SQLAlchemyDatasource.create(ds_url, engine_kwargs=[1])  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="AsyncSQLAlchemyDatasource"):
        SQLAlchemyDatasource.create(engine=create_async_engine("sqlite+aiosqlite://"))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="serializer"):
        SQLAlchemyDatasource.create(ds_url, serializer=object())
    source = SQLAlchemyDatasource.create(ds_url)
    try:
        with pytest.raises(ConfigError, match="isolation_level"):
            source.transaction(isolation_level="DIRTY")  # type: ignore[call-overload]
        with pytest.raises(DBOSException, match="async def"):

            @source.transaction()
            async def coroutine() -> None: ...

        with pytest.raises(NotInWorkflowError, match=r"ds.sql_session\(\)"):
            source.sql_session()
    finally:
        source.close()
    with pytest.raises(ConfigError, match="async def"):
        asyncio.run(_async_decorates_sync(ds_url))


async def _async_decorates_sync(url: str) -> None:
    source = await AsyncSQLAlchemyDatasource.create(url)
    try:

        @source.transaction()
        def plain() -> None: ...

    finally:
        await source.close()


# -- async ----------------------------------------------------------------------------------------
def test_async_datasource_in_and_out_of_workflows(dbos: type[DBOS], ds_url: str, backend: str) -> None:
    runs: list[str] = []

    async def scenario() -> list[Any]:
        ads = await AsyncSQLAlchemyDatasource.create(ds_url)
        try:

            @ads.transaction(isolation_level="READ COMMITTED")
            async def add(name: str) -> Any:
                runs.append(name)
                session = ads.sql_session()
                await session.execute(
                    text("INSERT INTO items (wid, name) VALUES (:w, :n)"), {"w": DBOS.workflow_id or "plain", "n": name}
                )
                if backend == "postgres":
                    return (await session.execute(text("SHOW transaction_isolation"))).scalar_one()
                return DBOS.step_id

            @ads.transaction()
            async def failing() -> None:
                await ads.sql_session().execute(text("INSERT INTO items (wid, name) VALUES ('async', 'bad')"))
                raise KeyError("nope")

            async def undecorated() -> int:
                result = await ads.sql_session().execute(text("SELECT count(*) FROM items"))
                return int(result.scalar_one())

            @DBOS.workflow()
            async def wf_async() -> list[Any]:
                out = [await add("a")]
                try:
                    await failing()
                except KeyError:
                    out.append("caught")
                out.append(await ads.run_tx_step(undecorated))
                return out

            with SetWorkflowID("ads-1"):
                in_workflow = await wf_async()
            outside = await add("b")
            return [in_workflow, outside]
        finally:
            await ads.close()

    in_workflow, outside = asyncio.run(scenario())
    assert in_workflow == ["read committed" if backend == "postgres" else 1, "caught", 1]
    assert outside == ("read committed" if backend == "postgres" else None)
    assert items(ds_url) == [("ads-1", "a"), ("plain", "b")]
    assert [row[:2] + row[3:] for row in ds_outcomes(ds_url)] == [
        ("ads-1", 1, True),
        ("ads-1", 2, False),
        ("ads-1", 3, True),
    ]
    assert replay("ads-1", forget_steps_from=2)[1] == "caught"
    assert runs == ["a", "b"]  # the replay ran nothing again
