"""An asyncio application database (``AsyncSQLAlchemyDatasource``): SQLAlchemy's asyncio engine on
aiosqlite or psycopg, with the same outcome table and rules as the sync ``AppDatabase``.

Must not import the engine or the facade.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from transact._lib.backoff import Backoff
from transact._lib.urls import POSTGRES_PREFIXES, Kind
from transact.storage.app_outcomes import (
    AppOutcome,
    OutcomeTable,
    _refused,
    classify,
    dialect_of,
    kind_of,
    outcome_row,
)
from transact.storage.errors import Unavailable, first_line

__all__ = ["AsyncAppDatabase", "async_url"]

log = logging.getLogger("transact.storage")


def async_url(url: str) -> str:
    """The asyncio driver's URL: ``sqlite+aiosqlite`` for SQLite, psycopg 3 (async) for Postgres; a
    URL that already names a driver other than these stays as given."""
    if url.startswith(POSTGRES_PREFIXES):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    if url.startswith("sqlite://"):
        return "sqlite+aiosqlite://" + url[len("sqlite://") :]
    return url


class AsyncAppDatabase:
    """An asyncio engine on an application database and the outcome table in it. SQLite runs each
    transaction as ``BEGIN IMMEDIATE`` and ignores the isolation level; Postgres gets the level per
    transaction."""

    def __init__(
        self,
        url: str | None = None,
        *,
        engine: AsyncEngine | None = None,
        engine_kwargs: dict[str, Any] | None = None,
        table_name: str | None = None,
        schema: str | None = None,
        pool_size: int = 10,
    ) -> None:
        self._owns_engine = engine is None
        if engine is None:
            if url is None:
                raise ValueError("AsyncAppDatabase needs a url or an engine")
            url = async_url(url)
            dialect: Kind = "sqlite" if url.startswith("sqlite") else "postgres"
            kind = kind_of(dialect)
            options: dict[str, Any] = {"pool_size": pool_size, "max_overflow": 0, **kind.async_options}
            engine = create_async_engine(url, **{**options, **(engine_kwargs or {})})
            kind.async_setup(engine.sync_engine)
        else:
            dialect = dialect_of(engine.url.get_backend_name()) or "postgres"
        self.engine = engine
        self.dialect = dialect
        self.url = engine.url.render_as_string(hide_password=True)
        self.outcomes = OutcomeTable(dialect, table_name=table_name, schema=schema)
        self.table = self.outcomes.table
        self._by_level: dict[str, AsyncEngine] = {}

    # -- transactions ---------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def transaction(self, isolation_level: str) -> AsyncIterator[AsyncConnection]:
        """One transaction on a pooled connection: committed on exit, rolled back on an exception."""
        engine = self.engine
        if self.outcomes.kind.levels:
            engine = self._by_level.get(isolation_level) or self._level(isolation_level)
        async with engine.connect() as conn, conn.begin():
            yield conn

    def _level(self, isolation_level: str) -> AsyncEngine:
        engine = self.engine.execution_options(isolation_level=isolation_level)
        self._by_level[isolation_level] = engine
        return engine

    # -- outcome rows ---------------------------------------------------------------------------
    async def outcome_get(self, conn: AsyncConnection, *, workflow_id: str, function_id: int) -> AppOutcome | None:
        row = (await conn.execute(self.outcomes.select, {"wid": workflow_id, "fid": function_id})).first()
        return AppOutcome(str(row[0]), row[1], row[2]) if row is not None else None

    async def outcome_insert(
        self,
        conn: AsyncConnection,
        *,
        workflow_id: str,
        function_id: int,
        function_name: str,
        output: bytes | None,
        error: bytes | None,
        now: int,
    ) -> bool:
        """Record an outcome in the caller's transaction. False: one is already recorded."""
        result = await conn.execute(
            self.outcomes.insert, outcome_row(workflow_id, function_id, function_name, output, error, now)
        )
        return result.first() is not None

    async def outcome_record(
        self, *, workflow_id: str, function_id: int, function_name: str, error: bytes, now: int
    ) -> AppOutcome | None:
        """Record a failed transaction's error in a transaction of its own; returns the outcome
        recorded earlier instead, if there is one."""
        async with self.engine.connect() as conn, conn.begin():
            if await self.outcome_insert(
                conn,
                workflow_id=workflow_id,
                function_id=function_id,
                function_name=function_name,
                output=None,
                error=error,
                now=now,
            ):
                return None
            return await self.outcome_get(conn, workflow_id=workflow_id, function_id=function_id)

    # -- schema ---------------------------------------------------------------------------------
    async def migrate(self, *, retry_timeout_s: float | None = None, create: bool = True) -> bool:
        """Create the outcome table if missing (or only look, without ``create``); outages are
        retried with back-off, other errors raise ``Unavailable`` at once."""
        backoff = Backoff(initial=0.05, cap=2.0, budget_s=retry_timeout_s)
        while True:
            try:
                async with self.engine.connect() as conn, conn.begin():
                    return await conn.run_sync(self.outcomes.create, create)
            except Exception as exc:
                if classify(exc) is None or _refused(exc) or backoff.expired():
                    raise Unavailable(f"{type(exc).__name__}: {first_line(exc, type(exc).__name__)}") from exc
                await asyncio.sleep(backoff.next_delay())
                if backoff.should_log():
                    log.warning("application database unavailable (%s); retrying", first_line(exc, type(exc).__name__))

    async def close(self) -> None:
        """Close pooled connections of an engine made here (a caller's engine is the caller's)."""
        if self._owns_engine:
            await self.engine.dispose()
