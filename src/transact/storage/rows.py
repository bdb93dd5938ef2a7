"""Rows that cross the storage boundary (no driver objects ever leave storage/). Treat them as
values: none is changed after it is built (all are frozen but StepRow, see there).

Must not import the engine or the facade.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from transact._lib.states import TERMINAL, Status

# In the order the statuses are declared (the SQL built from it is the same in every process).
TERMINAL_STATUSES = tuple(s for s in Status if s in TERMINAL)


@dataclass(frozen=True, slots=True)
class WorkflowRow:
    workflow_id: str
    status: str
    name: str
    class_name: str | None = None
    config_name: str | None = None
    queue_name: str | None = None
    queue_partition_key: str | None = None
    deduplication_id: str | None = None
    priority: int = 0
    inputs: bytes | None = None
    output: bytes | None = None
    error: bytes | None = None
    executor_id: str | None = None
    app_version: str | None = None
    recovery_attempts: int = 0
    parent_workflow_id: str | None = None
    forked_from: str | None = None
    created_at: int = 0
    updated_at: int = 0
    available_at: int | None = None
    started_at: int | None = None
    timeout_ms: int | None = None
    deadline_at: int | None = None
    authenticated_user: str | None = None
    assumed_role: str | None = None
    authenticated_roles: str | None = None  # a JSON array of role names
    trace_context: str | None = None  # W3C trace context (JSON) of the span that started it
    attributes: str | None = None  # a JSON object of user-set attributes (SetWorkflowAttributes)
    # The application that owns it (config ``name``): only that one dequeues, runs and recovers
    # it. None: any application may (rows written before ownership existed, unnamed clients).
    application_name: str | None = None

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL


WORKFLOW_COLUMNS = (
    "workflow_id, status, name, class_name, config_name, queue_name, queue_partition_key, "
    "deduplication_id, priority, inputs, output, error, executor_id, app_version, recovery_attempts, "
    "parent_workflow_id, forked_from, created_at, updated_at, available_at, started_at, timeout_ms, "
    "deadline_at, authenticated_user, assumed_role, authenticated_roles, trace_context"
    ", attributes, application_name"
)
WORKFLOW_COLUMN_COUNT = WORKFLOW_COLUMNS.count(",") + 1


# Not frozen: one is built per step on the hot path, and a frozen dataclass's __init__ (a guarded
# object.__setattr__ per field) is a large share of a step's Python (bench/). Never mutated.
@dataclass(slots=True)
class StepRow:
    workflow_id: str
    function_id: int
    function_name: str
    output: bytes | None = None
    error: bytes | None = None
    child_workflow_id: str | None = None
    started_at: int | None = None
    completed_at: int | None = None


# The highest step position (function id) a workflow may record: SQLite packs it into the low 28
# bits of an integer step key (migrations/sqlite/0010); the engine enforces it on both databases.
MAX_FUNCTION_ID = (1 << 28) - 1
STEP_COLUMNS = "workflow_id, function_id, function_name, output, error, child_workflow_id, started_at, completed_at"


@dataclass(frozen=True, slots=True)
class ExecutorRow:
    executor_id: str
    hostname: str
    pid: int
    process_token: str
    app_version: str | None
    started_at: int
    last_seen_at: int
    state: str
    workflow_names: str | None = None  # newline-separated names this executor can run


EXECUTOR_COLUMNS = (
    "executor_id, hostname, pid, process_token, app_version, started_at, last_seen_at, state, workflow_names"
)


@dataclass(frozen=True, slots=True)
class ScheduleRow:
    schedule_name: str
    workflow_name: str
    cron: str
    timezone: str | None
    state: str
    backfill: bool
    dynamic: bool
    last_tick_at: int | None
    created_at: int
    updated_at: int
    context: bytes | None = None  # pickled; schedules created at run time pass it to every run
    queue_name: str | None = None  # runs are enqueued on this queue instead of started
    application_name: str | None = None  # the application that fires it (None: any)


SCHEDULE_COLUMNS = (
    "schedule_name, workflow_name, cron, timezone, state, backfill, dynamic, last_tick_at, created_at, updated_at, "
    "context, queue_name, application_name"
)


@dataclass(frozen=True, slots=True)
class QueueClaim:
    """What one claim took, and why it stopped when a global limit was the reason."""

    rows: list[WorkflowRow]
    # The global concurrency limit is reached: the ids running now (a slot frees when one ends).
    running: tuple[str, ...] | None = None
    # The rate limit is reached: epoch ms when the oldest start leaves the window.
    retry_at: int | None = None
    # Partitioned claims: the partition the next claim's rotation continues after.
    after: str | None = None


# One stream item: (seq, serialized value or None, closed).
StreamItem = tuple[int, "bytes | None", bool]


@dataclass(frozen=True)
class ListQuery:
    """Filters for ``workflows_list``; None means "no filter". Times are epoch ms, inclusive."""

    workflow_ids: Sequence[str] | None = None
    statuses: Sequence[str] | None = None
    names: Sequence[str] | None = None
    created_from: int | None = None
    created_to: int | None = None
    # Each of these takes one value or a list (any of them matches).
    queue_name: str | Sequence[str] | None = None
    queued_only: bool = False
    id_prefix: str | Sequence[str] | None = None
    app_version: str | Sequence[str] | None = None
    executor_id: str | Sequence[str] | None = None
    parent_workflow_id: str | Sequence[str] | None = None
    forked_from: str | Sequence[str] | None = None
    user: str | Sequence[str] | None = None  # authenticated_user
    has_parent: bool | None = None  # True: child workflows only; False: top-level only
    was_forked: bool | None = None  # True: forks only; False: no forks
    updated_from: int | None = None
    updated_to: int | None = None
    completed_from: int | None = None  # finished (a final status) with updated_at in range
    completed_to: int | None = None
    limit: int | None = None
    offset: int | None = None
    newest_first: bool = False
    load_input: bool = True
    load_output: bool = True
    # (key, JSON text of the value) pairs a row's attributes must all hold, exactly.
    attributes: Sequence[tuple[str, str]] | None = None
