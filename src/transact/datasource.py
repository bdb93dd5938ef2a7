"""Datasources (DBOS 3.x): exactly-once transactions on databases the application owns.

``SQLAlchemyDatasource.create(url)`` opens a SQLAlchemy engine and creates the outcome table
(``transact.datasource_outputs`` on Postgres, ``transact_datasource_outputs`` on SQLite) in that
database. ``@ds.transaction()`` runs a function in one transaction of it, with the session at
``ds.sql_session()``; inside a workflow the call is a step whose outcome row commits with the
user's writes, so it takes effect exactly once across crashes. ``AsyncSQLAlchemyDatasource`` is the
same for ``async def`` functions on SQLAlchemy's asyncio engine (aiosqlite, psycopg async). Each
datasource has its own engine and outcome table; an application may use several at once.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal, ParamSpec, TypeVar, cast, overload

from sqlalchemy import Engine

from transact._lib.urls import redact
from transact.engine import transaction as txn
from transact.engine import transaction_async as atxn
from transact.errors import ConfigError, DatabaseUnavailableError, NotInWorkflowError
from transact.storage import Unavailable
from transact.storage.app_outcomes import AppDatabase, sqlalchemy_url

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
    from sqlalchemy.orm import Session

    from transact.storage.app_outcomes_async import AsyncAppDatabase

__all__ = ["AsyncSQLAlchemyDatasource", "IsolationLevel", "SQLAlchemyDatasource"]

P = ParamSpec("P")
R = TypeVar("R")

IsolationLevel = Literal["SERIALIZABLE", "REPEATABLE READ", "READ COMMITTED"]
TABLE = "datasource_outputs"
_MIGRATE_BUDGET_S = 60.0  # how long create() waits out an unreachable database before raising


# -- argument checks ------------------------------------------------------------------------------
def _check_create(cls: str, database_url: object, engine: object, engine_kwargs: object, schema: object) -> None:
    if engine is None:
        if not isinstance(database_url, str) or not database_url:
            raise ConfigError(
                f"{cls}.create needs a database URL (for example 'postgresql://user:password@host:5432/app' "
                f"or 'sqlite:///app.sqlite') or an engine=, got {database_url!r}"
            )
        scheme = database_url.split("://", 1)[0].split("+", 1)[0]
        if scheme not in ("sqlite", "postgresql", "postgres"):
            raise ConfigError(
                f"{cls}.create: unsupported database URL {redact(database_url)!r}; datasources run on "
                "SQLite ('sqlite:///path/to/file.sqlite') or Postgres ('postgresql://user:password@host:5432/db')"
            )
    if engine_kwargs is not None and not isinstance(engine_kwargs, dict):
        raise ConfigError(
            f"{cls}.create engine_kwargs must be a dict of create_engine arguments, got {engine_kwargs!r}"
        )
    if schema is not None and (not isinstance(schema, str) or not schema):
        raise ConfigError(f"{cls}.create schema must be a non-empty string (a Postgres schema name), got {schema!r}")


def _check_engine_dialect(cls: str, name: str) -> None:
    if name not in ("sqlite", "postgresql"):
        raise ConfigError(f"{cls}.create: engine on {name!r} is not supported; datasources run on SQLite or Postgres")


def _check_serializer(cls: str, serializer: object) -> None:
    if serializer is None:
        return
    try:
        name = serializer.name() if callable(getattr(serializer, "name", None)) else None  # type: ignore[attr-defined]
    except Exception:
        name = None
    if name != "py_pickle":
        raise ConfigError(
            f"{cls}.create serializer ({type(serializer).__name__}) is not supported: Transact stores "
            "transaction outputs with pickle; leave serializer out"
        )


def _check_decorator(what: str, name: object, isolation_level: object) -> str:
    if name is not None and (not isinstance(name, str) or not name):
        raise ConfigError(f"{what} name must be a non-empty string, got {name!r}")
    if not isinstance(isolation_level, str) or isolation_level.upper() not in txn.ISOLATION_LEVELS:
        levels = ", ".join(map(repr, txn.ISOLATION_LEVELS))
        raise ConfigError(f"{what} isolation_level must be one of {levels}, got {isolation_level!r}")
    return isolation_level.upper()


def _unavailable(cls: str, url: str, exc: Exception) -> DatabaseUnavailableError:
    return DatabaseUnavailableError(f"{cls}.create cannot prepare the database {redact(url)}: {exc}")


# -- sync -----------------------------------------------------------------------------------------
class SQLAlchemyDatasource:
    """A synchronous datasource on a SQLAlchemy ``Engine``; make one with ``create``."""

    def __init__(self, app: AppDatabase) -> None:
        self._app = app
        self._session: txn.SessionVar = contextvars.ContextVar(f"transact_ds_session_{id(self)}", default=None)

    @classmethod
    def create(
        cls,
        database_url: str | None = None,
        engine_kwargs: dict[str, Any] | None = None,
        engine: Engine | None = None,
        schema: str | None = None,
        serializer: Any = None,
    ) -> SQLAlchemyDatasource:
        """Open (or adopt ``engine``) and create the outcome table in schema ``schema`` (Postgres;
        default ``transact``). ``engine_kwargs`` go to ``create_engine`` (ignored with ``engine``)."""
        _check_create("SQLAlchemyDatasource", database_url, engine, engine_kwargs, schema)
        _check_serializer("SQLAlchemyDatasource", serializer)
        if engine is not None:
            if not isinstance(engine, Engine):
                raise ConfigError(
                    f"SQLAlchemyDatasource.create engine must be a sqlalchemy.Engine, got {type(engine).__name__} "
                    "(use AsyncSQLAlchemyDatasource for an AsyncEngine)"
                )
            _check_engine_dialect("SQLAlchemyDatasource", engine.url.get_backend_name())
        url = sqlalchemy_url(database_url) if database_url else None
        app = AppDatabase(url, engine=engine, engine_kwargs=engine_kwargs, table_name=TABLE, schema=schema)
        try:
            app.migrate(retry_timeout_s=_MIGRATE_BUDGET_S)
        except Unavailable as exc:
            app.close()
            raise _unavailable("SQLAlchemyDatasource", app.url, exc) from exc
        return cls(app)

    @property
    def engine(self) -> Engine:
        return self._app.engine

    @overload
    def transaction(self, func: Callable[P, R], /) -> Callable[P, R]: ...

    @overload
    def transaction(
        self, func: None = None, /, *, name: str | None = None, isolation_level: IsolationLevel = "SERIALIZABLE"
    ) -> Callable[[Callable[P, R]], Callable[P, R]]: ...

    def transaction(
        self,
        func: Callable[..., Any] | None = None,
        /,
        *,
        name: str | None = None,
        isolation_level: str = "SERIALIZABLE",
    ) -> Any:
        """Run the decorated ``def`` in one transaction of this datasource (session at
        ``ds.sql_session()``); inside a workflow it is a step that takes effect exactly once.
        ``@ds.transaction`` and ``@ds.transaction(name=..., isolation_level=...)`` both work."""
        level = _check_decorator("@ds.transaction", name, isolation_level)

        def decorate(fn: Callable[P, R]) -> Callable[P, R]:
            if not callable(fn):
                raise ConfigError(f"@ds.transaction must decorate a function, got {fn!r}")
            if inspect.iscoroutinefunction(fn):
                raise ConfigError(
                    f"SQLAlchemyDatasource.transaction cannot decorate async def {fn.__qualname__!r}: its session "
                    "is synchronous. Use AsyncSQLAlchemyDatasource for coroutine transactions."
                )
            txn_name = name or fn.__qualname__

            @functools.wraps(fn)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                return txn.run_in(self._app, self._session, txn_name, fn, level, args, kwargs)

            wrapper.__transact_transaction__ = txn_name  # type: ignore[attr-defined]
            return cast(Callable[P, R], wrapper)

        return decorate(func) if func is not None else decorate

    def sql_session(self) -> Session:
        """The running transaction's SQLAlchemy session (of this datasource)."""
        session = self._session.get()
        if session is None:
            raise NotInWorkflowError(
                "ds.sql_session() is only available inside a function decorated with this datasource's "
                "@ds.transaction() (or run by ds.run_tx_step)"
            )
        return session

    def run_tx_step(self, func: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run ``func(*args, **kwargs)`` as a transaction of this datasource (a step inside a
        workflow), without decorating it; the step is named after the function."""
        if not callable(func) or inspect.iscoroutinefunction(func):
            raise ConfigError(f"SQLAlchemyDatasource.run_tx_step needs a plain (non-async) function, got {func!r}")
        if getattr(func, "__transact_transaction__", None) is not None:
            return func(*args, **kwargs)  # already a transaction
        name = getattr(func, "__qualname__", None) or repr(func)
        return cast(R, txn.run_in(self._app, self._session, name, func, "SERIALIZABLE", args, kwargs))

    def close(self) -> None:
        """Close the pooled connections of an engine made by ``create``."""
        self._app.close()


# -- asyncio --------------------------------------------------------------------------------------
class AsyncSQLAlchemyDatasource:
    """An asyncio datasource on a SQLAlchemy ``AsyncEngine``; make one with ``await create(...)``."""

    def __init__(self, app: AsyncAppDatabase) -> None:
        self._app = app
        self._session: atxn.AsyncSessionVar = contextvars.ContextVar(f"transact_ads_session_{id(self)}", default=None)

    @classmethod
    async def create(
        cls,
        database_url: str | None = None,
        engine_kwargs: dict[str, Any] | None = None,
        engine: AsyncEngine | None = None,
        schema: str | None = None,
        serializer: Any = None,
    ) -> AsyncSQLAlchemyDatasource:
        """Open (or adopt ``engine``) an asyncio engine and create the outcome table (a coroutine).
        SQLite URLs use aiosqlite, Postgres URLs psycopg's async driver."""
        _check_create("AsyncSQLAlchemyDatasource", database_url, engine, engine_kwargs, schema)
        _check_serializer("AsyncSQLAlchemyDatasource", serializer)
        try:
            from sqlalchemy.ext.asyncio import AsyncEngine

            from transact.storage.app_outcomes_async import AsyncAppDatabase
        except ImportError as exc:  # pragma: no cover - depends on the installed extras
            raise ConfigError(
                f"AsyncSQLAlchemyDatasource needs SQLAlchemy's asyncio support ({exc}): "
                "pip install 'transact[datasources]'"
            ) from exc
        if engine is not None:
            if not isinstance(engine, AsyncEngine):
                raise ConfigError(
                    f"AsyncSQLAlchemyDatasource.create engine must be a sqlalchemy AsyncEngine, got "
                    f"{type(engine).__name__} (use SQLAlchemyDatasource for a sync Engine)"
                )
            _check_engine_dialect("AsyncSQLAlchemyDatasource", engine.url.get_backend_name())
        try:
            app = AsyncAppDatabase(
                database_url, engine=engine, engine_kwargs=engine_kwargs, table_name=TABLE, schema=schema
            )
        except ModuleNotFoundError as exc:
            raise ConfigError(
                f"AsyncSQLAlchemyDatasource needs an asyncio driver ({exc.name} is missing): "
                "pip install 'transact[datasources]'"
            ) from exc
        try:
            await app.migrate(retry_timeout_s=_MIGRATE_BUDGET_S)
        except Unavailable as exc:
            await app.close()
            raise _unavailable("AsyncSQLAlchemyDatasource", app.url, exc) from exc
        return cls(app)

    @property
    def engine(self) -> AsyncEngine:
        return self._app.engine

    @overload
    def transaction(self, func: Callable[P, Awaitable[R]], /) -> Callable[P, Awaitable[R]]: ...

    @overload
    def transaction(
        self, func: None = None, /, *, name: str | None = None, isolation_level: IsolationLevel = "SERIALIZABLE"
    ) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]: ...

    def transaction(
        self,
        func: Callable[..., Any] | None = None,
        /,
        *,
        name: str | None = None,
        isolation_level: str = "SERIALIZABLE",
    ) -> Any:
        """Run the decorated ``async def`` in one transaction of this datasource (session at
        ``ds.sql_session()``); inside a workflow it is a step that takes effect exactly once."""
        level = _check_decorator("@ds.transaction", name, isolation_level)

        def decorate(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
            if not inspect.iscoroutinefunction(fn):
                raise ConfigError(
                    f"AsyncSQLAlchemyDatasource.transaction must decorate an async def, got {fn!r}; "
                    "use SQLAlchemyDatasource for synchronous transactions"
                )
            txn_name = name or fn.__qualname__

            @functools.wraps(fn)
            async def wrapper(*args: Any, **kwargs: Any) -> Any:
                return await atxn.run_in(self._app, self._session, txn_name, fn, level, args, kwargs)

            wrapper.__transact_transaction__ = txn_name  # type: ignore[attr-defined]
            return cast(Callable[P, Awaitable[R]], wrapper)

        return decorate(func) if func is not None else decorate

    def sql_session(self) -> AsyncSession:
        """The running transaction's ``AsyncSession`` (of this datasource)."""
        session = self._session.get()
        if session is None:
            raise NotInWorkflowError(
                "ds.sql_session() is only available inside an async function decorated with this "
                "datasource's @ds.transaction() (or run by ds.run_tx_step)"
            )
        return session

    async def run_tx_step(self, func: Callable[P, Awaitable[R]], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run ``await func(*args, **kwargs)`` as a transaction of this datasource (a step inside a
        workflow), without decorating it; the step is named after the function."""
        if not inspect.iscoroutinefunction(func):
            raise ConfigError(f"AsyncSQLAlchemyDatasource.run_tx_step needs an async def, got {func!r}")
        if getattr(func, "__transact_transaction__", None) is not None:
            return await func(*args, **kwargs)
        name = getattr(func, "__qualname__", None) or repr(func)
        return cast(R, await atxn.run_in(self._app, self._session, name, func, "SERIALIZABLE", args, kwargs))

    async def close(self) -> None:
        """Close the pooled connections of an engine made by ``create``."""
        await self._app.close()
