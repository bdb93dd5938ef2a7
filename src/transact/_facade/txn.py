"""DBOS facade: transactions on the application database (``@DBOS.transaction``).

Delegates to ``engine/transaction.py``. Must not import transact._dbos.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, Literal, ParamSpec, TypeVar, cast, overload

from transact._facade._base import FacadeBase
from transact.engine import transaction as txn
from transact.errors import ConfigError

P = ParamSpec("P")
R = TypeVar("R")

IsolationLevel = Literal["SERIALIZABLE", "REPEATABLE READ", "READ COMMITTED"]


class TxnFacade(FacadeBase):
    @overload
    @classmethod
    def transaction(cls, func: Callable[P, R], /) -> Callable[P, R]: ...

    @overload
    @classmethod
    def transaction(
        cls, isolation_level: IsolationLevel = "SERIALIZABLE", /, *, name: str | None = None
    ) -> Callable[[Callable[P, R]], Callable[P, R]]: ...

    @overload
    @classmethod
    def transaction(
        cls, *, isolation_level: IsolationLevel = "SERIALIZABLE", name: str | None = None
    ) -> Callable[[Callable[P, R]], Callable[P, R]]: ...

    @classmethod  # type: ignore[misc]
    def transaction(
        cls,
        func: Callable[P, R] | str | None = None,
        /,
        *,
        isolation_level: str = "SERIALIZABLE",
        name: str | None = None,
    ) -> Any:
        """Run the function in one transaction of the application database, with its SQLAlchemy
        session at ``DBOS.sql_session``. Inside a workflow it is a step that takes effect exactly once.

        ``@DBOS.transaction``, ``@DBOS.transaction()``, ``@DBOS.transaction("READ COMMITTED")`` and
        ``@DBOS.transaction(isolation_level=...)`` all work. Only ``def`` functions: the session is
        synchronous (an ``async def`` is rejected; call a sync transaction from async code instead)."""
        if isinstance(func, str):  # @DBOS.transaction("READ COMMITTED")
            isolation_level = func
            func = None
        level = txn.validate_isolation_level(isolation_level)
        if name is not None and (not isinstance(name, str) or not name):
            raise ConfigError(f"@DBOS.transaction name must be a non-empty string, got {name!r}")

        def decorate(fn: Callable[P, R]) -> Callable[P, R]:
            if not callable(fn):
                raise ConfigError(f"@DBOS.transaction must decorate a function, got {fn!r}")
            if inspect.iscoroutinefunction(fn):
                raise ConfigError(
                    f"@DBOS.transaction cannot decorate async def {fn.__qualname__!r}: its SQLAlchemy session "
                    "is synchronous. Make it a plain def (async workflows may call it directly)."
                )
            txn_name = name or fn.__qualname__

            @functools.wraps(fn)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                return txn.run_transaction(cls._rt(), txn_name, fn, level, args, kwargs)

            wrapper.__transact_transaction__ = txn_name  # type: ignore[attr-defined]
            return cast(Callable[P, R], wrapper)

        return decorate(func) if func is not None else decorate
