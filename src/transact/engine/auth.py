"""Who runs the code: the authenticated user and roles, the role a protected call assumes, and the
role checks of ``@DBOS.required_roles``.

Outside a workflow the auth is the caller's (``DBOSContextSetAuth``, e.g. set by web middleware). A
workflow runs as the user who started it: ``row_fields`` records the user, roles and assumed role
on its row, and ``attach`` gives them to its context, so a recovered workflow and the children it
starts see the same auth as the first run. Must not import the facade.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass

from transact._lib.roles import decode_roles, encode_roles
from transact.engine.context import WorkflowContext, current_workflow
from transact.engine.registry import REGISTRY, WorkflowInfo
from transact.errors import DBOSNotAuthorizedError
from transact.storage.rows import WorkflowRow

# The roles a guarded function requires, set on the function ``@DBOS.required_roles`` returns.
ROLES_ATTR = "__transact_required_roles__"


@dataclass(frozen=True, slots=True)
class Auth:
    user: str | None
    roles: tuple[str, ...] | None
    assumed_role: str | None = None


_caller: contextvars.ContextVar[Auth | None] = contextvars.ContextVar("transact_auth", default=None)
# The role granted by the innermost protected call, with the workflow context it was granted in: a
# grant made outside a workflow does not leak into the body of a workflow started under it.
_granted: contextvars.ContextVar[tuple[WorkflowContext | None, str] | None] = contextvars.ContextVar(
    "transact_granted_role", default=None
)
# (the workflow, its required roles) by workflow name; the workflow must still be the registered one
_protected: dict[str, tuple[WorkflowInfo, tuple[str, ...]]] = {}
# False until auth is first set or restored in this process: until then the start path skips every
# lookup here (the common case: an application without authentication).
_in_use = False

_NO_FIELDS: tuple[None, None, None] = (None, None, None)


def set_caller(user: str | None, roles: tuple[str, ...] | None) -> contextvars.Token[Auth | None]:
    global _in_use
    _in_use = True
    return _caller.set(Auth(user, roles))


def reset_caller(token: contextvars.Token[Auth | None]) -> None:
    _caller.reset(token)


def attach(row: WorkflowRow) -> None:
    """A run of ``row`` is built here: if the row recorded auth, the lookups here are in use."""
    global _in_use
    if row.authenticated_user is not None or row.authenticated_roles is not None or row.assumed_role is not None:
        _in_use = True


def _of_workflow(ctx: WorkflowContext) -> Auth | None:
    """The auth a workflow's row recorded at its start (None when it recorded none)."""
    row = ctx.row
    if row is None or (row.authenticated_user is None and row.authenticated_roles is None and row.assumed_role is None):
        return None
    return Auth(row.authenticated_user, decode_roles(row.authenticated_roles), row.assumed_role)


def current() -> Auth | None:
    """The auth code runs under here: its workflow's (recorded at the start), else the caller's;
    with the role granted by the innermost protected call, else the workflow's assumed role."""
    if not _in_use:
        return None
    ctx = current_workflow.get()
    base = _of_workflow(ctx) if ctx is not None else _caller.get()
    granted = _granted.get()
    if granted is not None and granted[0] is ctx:
        return Auth(base.user, base.roles, granted[1]) if base is not None else Auth(None, None, granted[1])
    return base


def authorize(what: str, required: tuple[str, ...]) -> str | None:
    """The role the caller runs ``what`` with: the first of ``required`` the caller has. Raises
    DBOSNotAuthorizedError when it has none of them; None when nothing is required."""
    if not required:
        return None
    auth = current()
    if auth is None or auth.roles is None:
        raise DBOSNotAuthorizedError(
            f"{what} requires one of the roles {list(required)}, but it was called without an authenticated "
            "user; call it inside `with DBOSContextSetAuth(user, roles):` (e.g. in your web middleware)"
        )
    for role in required:
        if role in auth.roles:
            return role
    raise DBOSNotAuthorizedError(
        f"{what} requires one of the roles {list(required)}; user {auth.user!r} has only {list(auth.roles)}"
    )


def grant(role: str | None) -> contextvars.Token[tuple[WorkflowContext | None, str] | None] | None:
    """Run the caller's next code with ``role`` assumed (until ``revoke``); None: nothing to undo."""
    if role is None:
        return None
    return _granted.set((current_workflow.get(), role))


def revoke(token: contextvars.Token[tuple[WorkflowContext | None, str] | None] | None) -> None:
    if token is not None:
        _granted.reset(token)


def protect_workflow(info: WorkflowInfo, roles: tuple[str, ...]) -> None:
    """Record that starting ``info`` requires one of ``roles`` (so a start records the role assumed)."""
    _protected[info.name] = (info, roles)


def workflow_roles(name: str) -> tuple[str, ...] | None:
    entry = _protected.get(name)
    if entry is None or REGISTRY.workflows.get(name) is not entry[0]:
        return None
    return entry[1]


def row_fields(name: str) -> tuple[str | None, str | None, str | None]:
    """(authenticated_user, assumed_role, authenticated_roles as JSON) for a new row of workflow
    ``name`` started here: the caller's auth; the role assumed is the first of the workflow's
    required roles the caller has, else the caller's own assumed role."""
    if not _in_use:
        return _NO_FIELDS
    auth = current()
    if auth is None:
        return _NO_FIELDS
    assumed = auth.assumed_role
    required = workflow_roles(name)
    if required and auth.roles is not None:
        assumed = next((role for role in required if role in auth.roles), assumed)
    return fields_of(Auth(auth.user, auth.roles, assumed))


def fields_of(given: Auth) -> tuple[str | None, str | None, str | None]:
    """``row_fields`` for auth the start names itself (a client's ``authenticated_user`` and
    ``authenticated_roles``) rather than takes from the caller's context."""
    return given.user, given.assumed_role, encode_roles(given.roles)
