"""DBOS facade: steps (``@DBOS.step``, ``DBOS.run_step``), their status, patches (``DBOS.patch``)
and classes whose methods are workflows (``@DBOS.dbos_class``).

Delegates to ``engine/step.py``. Must not import transact._dbos.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar, cast, overload

from transact._facade._base import FacadeBase
from transact.engine import patching
from transact.engine import step as steps
from transact.engine.context import current_step
from transact.engine.registry import REGISTRY, WorkflowInfo
from transact.errors import ConfigError
from transact.models import StepOptions, StepStatus

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")
ShouldRetry = Callable[[BaseException], "bool | Awaitable[bool]"]
DEFAULT_MAX_RECOVERY_ATTEMPTS = 100
_OPTION_KEYS = frozenset(StepOptions.__annotations__)


class StepFacade(FacadeBase):
    @overload
    @classmethod
    def step(cls, func: Callable[P, R], /) -> Callable[P, R]: ...

    @overload
    @classmethod
    def step(
        cls,
        *,
        name: str | None = None,
        retries_allowed: bool = False,
        interval_seconds: float = 1.0,
        max_attempts: int = 3,
        backoff_rate: float = 2.0,
        should_retry: ShouldRetry | None = None,
        timeout_seconds: float | None = None,
        preemptible: bool = False,
    ) -> Callable[[Callable[P, R]], Callable[P, R]]: ...

    @classmethod  # type: ignore[misc]
    def step(
        cls,
        func: Callable[P, R] | None = None,
        /,
        *,
        name: str | None = None,
        retries_allowed: bool = False,
        interval_seconds: float = 1.0,
        max_attempts: int = 3,
        backoff_rate: float = 2.0,
        should_retry: ShouldRetry | None = None,
        timeout_seconds: float | None = None,
        preemptible: bool = False,
    ) -> Any:
        """A checkpointed step: inside a workflow it runs once and its outcome is replayed after a
        restart; outside one it is plain code. ``retries_allowed`` retries failures up to
        ``max_attempts`` times, waiting ``interval_seconds * backoff_rate**n`` between attempts;
        ``should_retry(exc)`` returning False stops retrying and fails with that exception.
        ``timeout_seconds`` limits each attempt (sync steps: the late attempt is abandoned in its
        thread and its result discarded; async steps: it is cancelled). ``preemptible`` (async steps
        only): cancelling the workflow cancels the running step at once, and nothing is recorded for
        it. A step may also be started or enqueued directly, as a workflow of one step."""
        policy = steps.StepPolicy(
            retries_allowed, interval_seconds, max_attempts, backoff_rate, should_retry, timeout_seconds, preemptible
        )

        def decorate(fn: Callable[P, R]) -> Callable[P, R]:
            if not callable(fn):
                raise ConfigError(f"@DBOS.step must decorate a function, got {fn!r}")
            if preemptible and not inspect.iscoroutinefunction(fn):
                raise _sync_preemptible(name or fn.__qualname__)
            return cast(Callable[P, R], _step_wrapper(name or fn.__qualname__, fn, policy))

        return decorate(func) if func is not None else decorate

    @classmethod
    def run_step(cls, dbos_step_options: StepOptions | None, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``func(*args, **kwargs)`` as a step without decorating it (``dbos_step_options``, as
        DBOS names it: the ``@DBOS.step`` keywords, ``name`` included)."""
        name, policy = _policy(dbos_step_options, func)
        if inspect.iscoroutinefunction(func):
            raise ConfigError(f"{name!r} is async: call it with `await DBOS.run_step_async(...)`")
        if policy.preemptible:
            raise _sync_preemptible(name)
        value: T = steps.run_step(name, func, policy, args, kwargs)
        return value

    @classmethod
    async def run_step_async(
        cls,
        dbos_step_options: StepOptions | None,
        func: Callable[..., Awaitable[T]] | Callable[..., T],
        *args: Any,
        **kwargs: Any,
    ) -> T:
        """``run_step`` for async code; a sync ``func`` runs in a worker thread."""
        name, policy = _policy(dbos_step_options, func)
        if not inspect.iscoroutinefunction(func):
            if policy.preemptible:
                raise _sync_preemptible(name)
            sync = func

            async def in_thread(*a: Any, **k: Any) -> Any:
                return await cls._rt().aio(sync, *a, **k)

            func = in_thread
        value: T = await steps.run_step_async(name, cast(Callable[..., Awaitable[Any]], func), policy, args, kwargs)
        return value

    @classmethod
    def patch(cls, patch_name: str) -> bool:
        """Branch around runs recorded under older code: True where the workflow reaches this point
        under the new code (the branch is recorded), False where its history holds an older step
        here. Call it in the workflow's body; see ``deprecate_patch`` for retiring it."""
        return patching.patch(patch_name)

    @classmethod
    async def patch_async(cls, patch_name: str) -> bool:
        return await patching.patch_async(patch_name)

    @classmethod
    def deprecate_patch(cls, patch_name: str) -> bool:
        """The retiring stage of ``patch(patch_name)``, once no run needs the old path: always True;
        it keeps runs that took the patch in step and records nothing itself, so it can be deleted
        once those runs have finished."""
        return patching.patch(patch_name, deprecated=True)

    @classmethod
    async def deprecate_patch_async(cls, patch_name: str) -> bool:
        return await patching.patch_async(patch_name, deprecated=True)

    @classmethod
    def dbos_class(cls, class_name: str | None = None) -> Callable[[type[T]], type[T]]:
        """Register a class whose methods are workflows, by ``class_name`` (default: its
        qualified name), so recovery finds its class methods and configured instances again."""

        def decorate(klass: type[T]) -> type[T]:
            if not isinstance(klass, type):
                raise ConfigError(f"@DBOS.dbos_class must decorate a class, got {klass!r}")
            REGISTRY.add_class(klass, class_name or klass.__qualname__)
            return klass

        return decorate


def step_status() -> StepStatus | None:
    """The running step's position and attempt; None outside a step."""
    step_id = current_step.get()
    if step_id is None:
        return None
    attempt = steps.current_attempt.get()
    return StepStatus(step_id, attempt[0] if attempt else None, attempt[1] if attempt else None)


def _sync_preemptible(name: str) -> ConfigError:
    return ConfigError(
        f"step {name!r} is not async, so it cannot be preemptible: Python cannot interrupt a running "
        "thread. Make the step `async def`, or drop preemptible=True"
    )


def _policy(options: StepOptions | None, func: Callable[..., Any]) -> tuple[str, steps.StepPolicy]:
    opts: dict[str, Any] = dict(options or {})
    unknown = sorted(set(opts) - _OPTION_KEYS)
    if unknown:
        raise ConfigError(f"unknown step option {unknown[0]!r}; known options: {', '.join(sorted(_OPTION_KEYS))}")
    if not callable(func):
        raise ConfigError(f"DBOS.run_step needs a function to run, got {func!r}")
    name = opts.pop("name", None) or getattr(func, "__qualname__", repr(func))
    return name, steps.StepPolicy(**opts)


def _step_wrapper(name: str, fn: Callable[..., Any], policy: steps.StepPolicy) -> Any:
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            return await steps.run_step_async(name, fn, policy, args, kwargs)

        wrapper: Any = async_wrapper
    else:

        @functools.wraps(fn)
        def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
            return steps.run_step(name, fn, policy, args, kwargs)

        wrapper = sync_wrapper
    # Started or enqueued directly, a step runs as a workflow of one step under its own name: the
    # workflow's body is the step itself (called in the workflow, it records position 1).
    info = WorkflowInfo(
        name=name,
        func=wrapper,
        is_async=inspect.iscoroutinefunction(fn),
        max_recovery_attempts=DEFAULT_MAX_RECOVERY_ATTEMPTS,
        step=True,
    )
    with REGISTRY.lock:
        REGISTRY.workflows.setdefault(name, info)  # a workflow of the same name keeps it
    wrapper.__transact_step__ = name
    wrapper.__transact_step_workflow__ = info
    return wrapper
