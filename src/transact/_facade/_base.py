"""The one holder of the process's current ``DBOS`` instance, and how facade code reaches its runtime.

Must not import transact._dbos or any facade mixin.
"""

from __future__ import annotations

from typing import Any, ClassVar

from transact.engine.runtime import Runtime
from transact.errors import NotLaunchedError


class FacadeBase:
    """Base of ``DBOS`` and every facade mixin. ``_current`` is set by ``DBOS()`` and cleared by
    ``DBOS.destroy()``; classmethods reach the launched runtime through ``_rt()``."""

    _current: ClassVar[FacadeBase | None] = None
    _runtime: Runtime
    _config: dict[str, Any]

    @staticmethod
    def _set_current(instance: FacadeBase | None) -> None:
        FacadeBase._current = instance

    @staticmethod
    def _instance() -> FacadeBase:
        current = FacadeBase._current
        if current is None:
            raise NotLaunchedError("no DBOS instance: construct DBOS(config={...}) and call DBOS.launch() first")
        return current

    @staticmethod
    def _rt() -> Runtime:
        """The launched runtime; a clear error when DBOS was not constructed or launched."""
        rt = FacadeBase._instance()._runtime
        if not rt.launched:
            raise NotLaunchedError("call DBOS.launch() before using workflows, queues or messages")
        return rt

    @staticmethod
    def _rt_or_none() -> Runtime | None:
        """The runtime when DBOS was constructed (launched or not), else None."""
        current = FacadeBase._current
        return None if current is None else current._runtime
