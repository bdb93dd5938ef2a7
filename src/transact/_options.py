"""Context-manager setters for the next workflow start: id, timeout, enqueue options."""

from __future__ import annotations

import contextvars
from dataclasses import dataclass
from types import TracebackType

from transact.errors import ConfigError

_next_workflow_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("next_workflow_id", default=None)
_workflow_timeout: contextvars.ContextVar[float | None] = contextvars.ContextVar("workflow_timeout", default=None)


@dataclass(frozen=True)
class EnqueueOptions:
    deduplication_id: str | None = None
    priority: int | None = None
    queue_partition_key: str | None = None
    delay_seconds: float | None = None
    app_version: str | None = None


_enqueue_options: contextvars.ContextVar[EnqueueOptions | None] = contextvars.ContextVar(
    "enqueue_options", default=None
)


def take_workflow_id() -> str | None:
    """The id set by the innermost ``SetWorkflowID``; it applies to the next start only."""
    wid = _next_workflow_id.get()
    if wid is not None:
        _next_workflow_id.set(None)
    return wid


def current_timeout() -> float | None:
    return _workflow_timeout.get()


def current_enqueue_options() -> EnqueueOptions | None:
    return _enqueue_options.get()


class SetWorkflowID:
    """``with SetWorkflowID("key"):`` the next workflow started in the block gets that id."""

    def __init__(self, workflow_id: str) -> None:
        if not isinstance(workflow_id, str) or not workflow_id:
            raise ConfigError(f"SetWorkflowID needs a non-empty string, got {workflow_id!r}")
        self.workflow_id = workflow_id
        self._token: contextvars.Token[str | None] | None = None

    def __enter__(self) -> SetWorkflowID:
        self._token = _next_workflow_id.set(self.workflow_id)
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        assert self._token is not None
        _next_workflow_id.reset(self._token)


class SetWorkflowTimeout:
    """``with SetWorkflowTimeout(seconds):`` workflows started in the block are cancelled past the
    deadline (start-to-close; children inherit it). ``None`` clears an outer timeout."""

    def __init__(self, workflow_timeout_sec: float | None) -> None:
        if workflow_timeout_sec is not None and (
            not isinstance(workflow_timeout_sec, int | float) or workflow_timeout_sec <= 0
        ):
            raise ConfigError(f"SetWorkflowTimeout needs a positive number of seconds, got {workflow_timeout_sec!r}")
        self.timeout = workflow_timeout_sec
        self._token: contextvars.Token[float | None] | None = None

    def __enter__(self) -> SetWorkflowTimeout:
        self._token = _workflow_timeout.set(self.timeout)
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        assert self._token is not None
        _workflow_timeout.reset(self._token)


class SetEnqueueOptions:
    """Options for the next ``queue.enqueue`` in the block."""

    def __init__(
        self,
        *,
        deduplication_id: str | None = None,
        priority: int | None = None,
        queue_partition_key: str | None = None,
        delay_seconds: float | None = None,
        app_version: str | None = None,
    ) -> None:
        if priority is not None and (not isinstance(priority, int) or priority < 0):
            raise ConfigError(f"SetEnqueueOptions priority must be a non-negative int, got {priority!r}")
        if delay_seconds is not None and (not isinstance(delay_seconds, int | float) or delay_seconds < 0):
            raise ConfigError(f"SetEnqueueOptions delay_seconds must be >= 0, got {delay_seconds!r}")
        self.options = EnqueueOptions(deduplication_id, priority, queue_partition_key, delay_seconds, app_version)
        self._token: contextvars.Token[EnqueueOptions | None] | None = None

    def __enter__(self) -> SetEnqueueOptions:
        self._token = _enqueue_options.set(self.options)
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        assert self._token is not None
        _enqueue_options.reset(self._token)
