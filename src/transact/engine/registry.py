"""Name -> function tables for workflows, steps and queues; usable before or after DBOS() exists.

Must not import the facade.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from transact.errors import ConfigError, DBOSConflictingRegistrationError, WorkflowNotRegisteredError


@dataclass
class WorkflowInfo:
    name: str
    func: Callable[..., Any]  # the user's undecorated function
    is_async: bool
    max_recovery_attempts: int
    wrapper: Callable[..., Any] | None = None
    takes_target: bool = False  # a method: its first argument is the instance or class it runs on
    step: bool = False  # a step started or enqueued directly, run as a workflow of one step
    portable: bool = False  # serialization_type PORTABLE: inputs, output and error as portable JSON


class ConfiguredInstance:
    """Base of classes whose instance methods are workflows (``DBOSConfiguredInstance``).

    The instance registers under ``(class name, config_name)``; a workflow row records that pair
    instead of pickling the instance, and recovery runs the method on the registered instance.
    Create instances before ``DBOS.launch()`` so recovery finds them."""

    def __init__(self, config_name: str) -> None:
        if not isinstance(config_name, str) or not config_name:
            raise ConfigError(f"DBOSConfiguredInstance config_name must be a non-empty string, got {config_name!r}")
        self.config_name = config_name
        REGISTRY.add_instance(self)


def takes_target(fn: Callable[..., Any]) -> bool:
    """Whether ``fn`` is a method defined in a class body (first parameter ``self`` or ``cls``)."""
    qualname = getattr(fn, "__qualname__", "")
    if "." not in qualname or qualname.rsplit(".", 1)[0].endswith("<locals>"):
        return False
    try:
        first = next(iter(inspect.signature(fn).parameters), None)
    except (TypeError, ValueError):
        return False
    return first in ("self", "cls")


@dataclass
class Registry:
    workflows: dict[str, WorkflowInfo] = field(default_factory=dict)
    queues: dict[str, Any] = field(default_factory=dict)
    schedules: list[Any] = field(default_factory=list)
    kafka_consumers: list[Any] = field(default_factory=list)
    classes: dict[str, type] = field(default_factory=dict)  # @DBOS.dbos_class name -> class
    instances: dict[tuple[str, str], Any] = field(default_factory=dict)  # (class name, config_name)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add_workflow(self, info: WorkflowInfo) -> None:
        with self.lock:
            existing = self.workflows.get(info.name)
            if existing is not None and not existing.step and _origin(existing.func) != _origin(info.func):
                raise DBOSConflictingRegistrationError(
                    info.name,
                    f"workflow name {info.name!r} is already registered by {_origin(existing.func)}; "
                    f"give one of them a distinct name with @DBOS.workflow(name=...)",
                )
            self.workflows[info.name] = info

    def workflow(self, name: str) -> WorkflowInfo | None:
        return self.workflows.get(name)

    def for_row(self, name: str, class_name: str | None) -> WorkflowInfo | None:
        """The workflow a stored row runs. A row started here records the registered name; a row a
        client enqueued by name may record a method's bare name with its class name, so the method
        registered under ``Class.method`` (the default name of a method workflow, the class named by
        its ``@DBOS.dbos_class`` name or by its own) is found for it too. The class-qualified name
        wins, as a bare name may also be some plain function's."""
        if class_name:
            info = self.workflows.get(f"{class_name}.{name}")
            if info is not None:
                return info
            cls = self.classes.get(class_name)
            if cls is not None and cls.__qualname__ != class_name:
                info = self.workflows.get(f"{cls.__qualname__}.{name}")
                if info is not None:
                    return info
        return self.workflows.get(name)

    def row_names(self) -> list[str]:
        """Every ``name`` a row this process can run may record: the registered names, and the bare
        method name of each qualified one (rows a client enqueued by method and class name).
        A superset: ``for_row`` decides on each row."""
        names = set(self.workflows)
        names.update(name.rsplit(".", 1)[1] for name in self.workflows if "." in name)
        return sorted(names)

    def add_class(self, cls: type, name: str) -> None:
        with self.lock:
            self.classes[name] = cls
            cls.__transact_class__ = name  # type: ignore[attr-defined]

    def class_name(self, cls: type) -> str:
        return str(getattr(cls, "__transact_class__", None) or cls.__qualname__)

    def add_instance(self, obj: Any) -> None:
        key = (self.class_name(type(obj)), obj.config_name)
        with self.lock:
            self.instances[key] = obj

    def target(self, class_name: str | None, config_name: str | None) -> Any:
        """The instance (or class) a method workflow recorded as ``class_name``/``config_name`` runs
        on; a clear error when this process has none."""
        if config_name is not None:
            obj = self.instances.get((class_name or "", config_name))
            if obj is None:
                raise WorkflowNotRegisteredError(
                    f"no instance of class {class_name!r} with config_name {config_name!r} exists in this process; "
                    "create it (DBOSConfiguredInstance) before DBOS.launch()"
                )
            return obj
        cls = self.classes.get(class_name or "")
        if cls is None:
            raise WorkflowNotRegisteredError(
                f"class {class_name!r} is not registered in this process; decorate it with @DBOS.dbos_class()"
            )
        return cls

    def clear(self) -> None:
        with self.lock:
            self.workflows.clear()
            self.queues.clear()
            self.schedules.clear()
            self.kafka_consumers.clear()
            self.classes.clear()
            self.instances.clear()


def _origin(func: Callable[..., Any]) -> str:
    return f"{getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', repr(func))}"


REGISTRY = Registry()
