"""Name -> function tables for workflows, steps and queues; usable before or after DBOS() exists.

Must not import the facade.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from transact.errors import ConfigError


@dataclass
class WorkflowInfo:
    name: str
    func: Callable[..., Any]  # the user's undecorated function
    is_async: bool
    max_recovery_attempts: int
    wrapper: Callable[..., Any] | None = None


@dataclass
class Registry:
    workflows: dict[str, WorkflowInfo] = field(default_factory=dict)
    queues: dict[str, Any] = field(default_factory=dict)
    schedules: list[Any] = field(default_factory=list)
    kafka_consumers: list[Any] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add_workflow(self, info: WorkflowInfo) -> None:
        with self.lock:
            existing = self.workflows.get(info.name)
            if existing is not None and _origin(existing.func) != _origin(info.func):
                raise ConfigError(
                    f"workflow name {info.name!r} is already registered by {_origin(existing.func)}; "
                    f"give one of them a distinct name with @DBOS.workflow(name=...)"
                )
            self.workflows[info.name] = info

    def workflow(self, name: str) -> WorkflowInfo | None:
        return self.workflows.get(name)

    def clear(self) -> None:
        with self.lock:
            self.workflows.clear()
            self.queues.clear()
            self.schedules.clear()
            self.kafka_consumers.clear()


def _origin(func: Callable[..., Any]) -> str:
    return f"{getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', repr(func))}"


REGISTRY = Registry()
