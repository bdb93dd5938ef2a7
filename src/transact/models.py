"""Public read models: workflow statuses, workflow records and Kafka messages."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple, SupportsIndex, TypedDict, overload

from transact._lib.states import TERMINAL, Status

WorkflowStatusString = Status  # the public name of the workflow status enum


class WorkflowInputs(NamedTuple):
    """A workflow's arguments as ``WorkflowStatus.input`` shows them: a mapping with ``args`` and
    ``kwargs`` (``status.input["args"]``, as DBOS documents it) that is also the pair
    ``(args, kwargs)`` (``args, kwargs = status.input``, ``status.input[0]``)."""

    args: tuple[Any, ...]
    kwargs: dict[str, Any]

    @overload
    def __getitem__(self, key: str) -> Any: ...

    @overload
    def __getitem__(self, key: SupportsIndex) -> Any: ...

    @overload
    def __getitem__(self, key: slice) -> tuple[Any, ...]: ...

    def __getitem__(self, key: str | SupportsIndex | slice) -> Any:
        if isinstance(key, str):
            if key not in self._fields:
                raise KeyError(key)
            return getattr(self, key)
        return tuple.__getitem__(self, key)

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            return key in self._fields
        return tuple.__contains__(self, key)

    def keys(self) -> tuple[str, ...]:
        return self._fields

    def values(self) -> tuple[Any, ...]:
        return tuple(self)

    def items(self) -> tuple[tuple[str, Any], ...]:
        return tuple(zip(self._fields, self, strict=True))

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key) if key in self._fields else default


@dataclass
class WorkflowStatus:
    """A workflow's row as users see it. Times are epoch milliseconds."""

    workflow_id: str
    status: str
    name: str
    class_name: str | None
    config_name: str | None
    queue_name: str | None
    input: Any
    output: Any
    error: BaseException | None
    created_at: int
    updated_at: int
    executor_id: str | None
    app_version: str | None
    recovery_attempts: int
    parent_workflow_id: str | None
    deduplication_id: str | None = None
    priority: int = 0
    queue_partition_key: str | None = None
    started_at: int | None = None
    deadline_at: int | None = None
    forked_from: str | None = None
    authenticated_user: str | None = None  # who started it (DBOSContextSetAuth); children inherit it
    assumed_role: str | None = None  # the role its start assumed (@DBOS.required_roles)
    authenticated_roles: list[str] | None = None
    workflow_timeout_ms: int | None = None  # its timeout; the deadline is set when it starts running
    attributes: dict[str, Any] | None = None  # SetWorkflowAttributes / update_workflow_attributes
    # The application that owns it: only that one dequeues, runs and recovers it (None: any).
    application_name: str | None = None

    @property
    def workflow_name(self) -> str:
        return self.name

    @property
    def workflow_deadline_epoch_ms(self) -> int | None:
        """When a workflow with a timeout is cancelled if still running (epoch ms)."""
        return self.deadline_at

    @property
    def dequeued_at(self) -> int | None:
        """When a queue worker took it from its queue (epoch ms); None if not queued or still waiting."""
        return self.started_at if self.queue_name is not None else None

    @property
    def completed_at(self) -> int | None:
        """When it reached a final status (epoch ms); None while it may still run."""
        return self.updated_at if self.status in TERMINAL else None


@dataclass(frozen=True)
class KafkaMessage:
    """One Kafka record, the single argument of a ``@DBOS.kafka_consumer`` workflow.

    ``key``/``value`` are the raw bytes (None when absent); ``timestamp`` is epoch milliseconds,
    or None when the record carries none; ``leader_epoch`` is the partition leader's epoch at the
    offset, None when the broker does not report it; ``latency`` is a producer-side measure, so
    None for consumed messages.
    """

    topic: str
    partition: int
    offset: int
    key: bytes | None = None
    value: bytes | None = None
    headers: list[tuple[str, bytes | None]] = field(default_factory=list)
    timestamp: int | None = None
    latency: float | None = None
    leader_epoch: int | None = None


class StepOptions(TypedDict, total=False):
    """Options of ``DBOS.run_step`` (the same as ``@DBOS.step``'s keyword arguments)."""

    name: str
    retries_allowed: bool
    interval_seconds: float
    max_attempts: int
    backoff_rate: float
    should_retry: Callable[[BaseException], bool | Awaitable[bool]]
    timeout_seconds: float
    preemptible: bool


class StepInfo(TypedDict):
    """One recorded step of a workflow, as ``list_workflow_steps`` returns it."""

    function_id: int
    function_name: str
    output: Any
    error: BaseException | None
    child_workflow_id: str | None
    started_at_epoch_ms: int | None
    completed_at_epoch_ms: int | None


@dataclass(frozen=True)
class StepStatus:
    """The running step, as ``DBOS.step_status`` shows it: its position in the workflow, and for a
    step with retries the attempt under way (0 first) and how many attempts it may take."""

    step_id: int
    current_attempt: int | None
    max_attempts: int | None
