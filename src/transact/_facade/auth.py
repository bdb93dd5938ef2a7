"""Roles and authentication as DBOS users write them: ``@DBOS.required_roles``,
``@DBOS.default_required_roles`` and the ``DBOSContextSetAuth`` / ``DBOSContextEnsure`` context managers.

A guarded function checks the caller's roles when it is called, before anything is written;
``DBOS.start_workflow`` and ``Queue.enqueue`` check the same roles (``check_start``). The rules of
who the caller is live in ``engine/auth.py``. Must not import transact._dbos.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar, cast

from transact._facade._base import FacadeBase
from transact.engine import auth
from transact.errors import ConfigError

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

# What marks a function a decorator of ours made (a default role applies to those only).
_MARKS = ("__transact_workflow__", "__transact_step__", "__transact_transaction__")


def _roles(roles: object, where: str) -> tuple[str, ...]:
    if isinstance(roles, str) or not isinstance(roles, list | tuple):
        raise ConfigError(f"{where} takes a list of role names, e.g. {where}(['admin']); got {roles!r}")
    for role in roles:
        if not isinstance(role, str) or not role:
            raise ConfigError(f"{where} role names must be non-empty strings; got {role!r} in {list(roles)!r}")
    return tuple(roles)


def _guard(fn: F, roles: tuple[str, ...]) -> F:
    """``fn`` checking the caller's roles first, and running with the role it granted assumed."""
    what = f"{getattr(fn, '__qualname__', fn)!r}"
    info = getattr(fn, "__transact_workflow__", None) or getattr(fn, "__transact_step_workflow__", None)
    if info is not None:
        auth.protect_workflow(info, roles)
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def async_guard(*args: Any, **kwargs: Any) -> Any:
            token = auth.grant(auth.authorize(what, roles))
            try:
                return await fn(*args, **kwargs)
            finally:
                auth.revoke(token)

        guarded: Any = async_guard
    else:

        @functools.wraps(fn)
        def sync_guard(*args: Any, **kwargs: Any) -> Any:
            token = auth.grant(auth.authorize(what, roles))
            try:
                return fn(*args, **kwargs)
            finally:
                auth.revoke(token)

        guarded = sync_guard
    setattr(guarded, auth.ROLES_ATTR, roles)
    return cast(F, guarded)


def check_start(func: Callable[..., Any]) -> None:
    """The role check of starting or enqueuing ``func`` (a guarded function, or a method of one)."""
    roles: tuple[str, ...] | None = getattr(func, auth.ROLES_ATTR, None)
    if roles:
        auth.authorize(f"{getattr(func, '__qualname__', func)!r}", roles)


class AuthFacade(FacadeBase):
    @classmethod
    def required_roles(cls, roles: list[str]) -> Callable[[F], F]:
        """Only callers authenticated with one of ``roles`` may call, start or enqueue the decorated
        workflow, step or transaction (place it above ``@DBOS.workflow()``); others get
        DBOSNotAuthorizedError. The function runs with the first of ``roles`` the caller has as
        ``DBOS.assumed_role``. An empty list lifts a class's default roles."""
        checked = _roles(roles, "@DBOS.required_roles")

        def decorate(fn: F) -> F:
            if isinstance(fn, staticmethod | classmethod):
                return cast(F, type(fn)(_guard(fn.__func__, checked)))
            if not callable(fn):
                raise ConfigError(f"@DBOS.required_roles must decorate a function, got {fn!r}")
            return _guard(fn, checked)

        return decorate

    @classmethod
    def default_required_roles(cls, roles: list[str]) -> Callable[[type[T]], type[T]]:
        """Class decorator: the class's workflows, steps and transactions without their own
        ``@DBOS.required_roles`` require one of ``roles``."""
        checked = _roles(roles, "@DBOS.default_required_roles")

        def decorate(klass: type[T]) -> type[T]:
            if not isinstance(klass, type):
                raise ConfigError(f"@DBOS.default_required_roles must decorate a class, got {klass!r}")
            for name, member in list(vars(klass).items()):
                wrapped = isinstance(member, staticmethod | classmethod)
                fn = member.__func__ if wrapped else member
                if not callable(fn) or not any(hasattr(fn, mark) for mark in _MARKS):
                    continue
                if getattr(fn, auth.ROLES_ATTR, None) is not None:
                    continue  # its own @DBOS.required_roles wins
                guarded = _guard(fn, checked)
                setattr(klass, name, type(member)(guarded) if wrapped else guarded)
            return klass

        return decorate


class DBOSContextSetAuth:
    """``with DBOSContextSetAuth(user, roles):`` code in the block runs as ``user`` with ``roles``:
    role checks use them, and workflows started in the block record them (their children and
    recovery run as the same user). Typically set by web middleware per request."""

    def __init__(self, user: str | None, roles: list[str] | None) -> None:
        if user is not None and not isinstance(user, str):
            raise ConfigError(f"DBOSContextSetAuth user must be a string or None, got {user!r}")
        self.user = user
        self.roles = None if roles is None else _roles(roles, "DBOSContextSetAuth")
        self._token: Any = None

    def __enter__(self) -> DBOSContextSetAuth:
        self._token = auth.set_caller(self.user, self.roles)
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        auth.reset_caller(self._token)


class DBOSContextEnsure:
    """``with DBOSContextEnsure():`` kept for code written for DBOS, where it creates a context for
    the block. Transact's context always exists, so the block runs unchanged."""

    def __enter__(self) -> DBOSContextEnsure:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        return None
