"""What a start names: the registered workflow a function starts, and the arguments it runs with.

Shared by ``DBOS.start_workflow``, ``Queue.enqueue`` and the debouncer, below all three.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, cast

from transact._facade.auth import check_start
from transact.engine.registry import REGISTRY, WorkflowInfo
from transact.errors import ConfigError, WorkflowNotRegisteredError


def resolve(func: Callable[..., Any], args: tuple[Any, ...]) -> tuple[WorkflowInfo, tuple[Any, ...]]:
    """The workflow ``func`` starts, and its arguments: a bound method (``obj.method``,
    ``Cls.classmethod``) runs on its instance or class; a step runs as a workflow of one step."""
    if inspect.ismethod(func):
        args = (func.__self__, *args)
        func = func.__func__
    info = getattr(func, "__transact_workflow__", None) or getattr(func, "__transact_step_workflow__", None)
    if info is None:
        raise WorkflowNotRegisteredError(
            f"{getattr(func, '__qualname__', func)!r} is not a workflow or a step; decorate it with "
            "@DBOS.workflow() (or @DBOS.step() to run it as a workflow of one step)"
        )
    check_start(func)
    if info.step and REGISTRY.workflows.get(info.name) is not info:
        raise ConfigError(
            f"step {info.name!r} cannot be started on its own: a workflow has the same name. "
            "Give the step its own name with @DBOS.step(name=...)"
        )
    return cast(WorkflowInfo, info), args
