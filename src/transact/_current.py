"""The process-wide current instance, shared by the facade modules (avoids import cycles)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from transact.errors import NotLaunchedError

if TYPE_CHECKING:
    from transact.engine.runtime import Runtime

_state: dict[str, Any] = {"dbos": None}


def set_instance(dbos: Any) -> None:
    _state["dbos"] = dbos


def instance() -> Any:
    dbos = _state["dbos"]
    if dbos is None:
        raise NotLaunchedError("no DBOS instance: construct DBOS(config={...}) and call DBOS.launch() first")
    return dbos


def runtime() -> Runtime:
    """The launched runtime; a clear error when DBOS was not constructed or launched."""
    rt: Runtime = instance()._runtime
    if not rt.launched:
        raise NotLaunchedError("call DBOS.launch() before using workflows, queues or messages")
    return rt


def runtime_or_none() -> Runtime | None:
    dbos = _state["dbos"]
    return None if dbos is None else dbos._runtime
