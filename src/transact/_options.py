"""Context-manager setters for the next workflow start: id, timeout, enqueue options."""

from __future__ import annotations

import contextvars
from dataclasses import dataclass
from types import TracebackType

from transact._lib import checks
from transact.errors import ConfigError

MAX_PRIORITY = 2**31 - 1  # the priority column is a 32-bit INTEGER
# What an enqueue does when its deduplication id is active in the queue, or its workflow id
# (SetWorkflowID) is taken: the default raises (DBOSQueueDeduplicatedError) / returns the
# existing workflow's handle, as DBOS does.
DUPLICATION_POLICIES = ("reject", "return_existing")
ID_REUSE_POLICIES = ("return_existing", "reject")


def check_enqueue_options(
    where: str,
    *,
    deduplication_id: object = None,
    priority: object = None,
    queue_partition_key: object = None,
    delay_seconds: object = None,
) -> None:
    """The enqueue options' own rules, the same for ``SetEnqueueOptions`` and ``DBOSClient.enqueue``
    (the rules that depend on the queue are the queue's)."""
    checks.text(deduplication_id, f"{where} 'deduplication_id'", optional=True)
    checks.text(queue_partition_key, f"{where} 'queue_partition_key'", optional=True)
    if priority is not None:
        checks.count(priority, f"{where} 'priority'", maximum=MAX_PRIORITY)
    if delay_seconds is not None:
        checks.seconds(delay_seconds, f"{where} 'delay_seconds'")


_next_workflow_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("next_workflow_id", default=None)
_workflow_timeout: contextvars.ContextVar[float | None] = contextvars.ContextVar("workflow_timeout", default=None)


@dataclass(frozen=True)
class EnqueueOptions:
    deduplication_id: str | None = None
    priority: int | None = None
    queue_partition_key: str | None = None
    delay_seconds: float | None = None
    app_version: str | None = None
    duplication_policy: str = "reject"
    workflow_id_reuse_policy: str = "return_existing"


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
        duplication_policy: str = "reject",
        workflow_id_reuse_policy: str = "return_existing",
    ) -> None:
        """``duplication_policy``: on an active ``deduplication_id``, ``"reject"`` raises
        DBOSQueueDeduplicatedError, ``"return_existing"`` returns the handle of the workflow holding
        it. ``workflow_id_reuse_policy``: on a workflow id (SetWorkflowID) already taken,
        ``"return_existing"`` returns that workflow's handle, ``"reject"`` raises WorkflowConflictError."""
        # Ids are checked where they are used (Queue.enqueue), with the queue's own rules.
        check_enqueue_options("SetEnqueueOptions", priority=priority, delay_seconds=delay_seconds)
        for value, allowed, what in (
            (duplication_policy, DUPLICATION_POLICIES, "duplication_policy"),
            (workflow_id_reuse_policy, ID_REUSE_POLICIES, "workflow_id_reuse_policy"),
        ):
            if value not in allowed:
                raise checks.fail(f"SetEnqueueOptions {what}", f"one of {', '.join(map(repr, allowed))}", value)
        self.options = EnqueueOptions(
            deduplication_id,
            priority,
            queue_partition_key,
            delay_seconds,
            app_version,
            duplication_policy,
            workflow_id_reuse_policy,
        )
        self._token: contextvars.Token[EnqueueOptions | None] | None = None

    def __enter__(self) -> SetEnqueueOptions:
        self._token = _enqueue_options.set(self.options)
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        assert self._token is not None
        _enqueue_options.reset(self._token)
