"""Public read models: workflow statuses and step records."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any


class WorkflowStatusString(str, enum.Enum):
    ENQUEUED = "ENQUEUED"
    PENDING = "PENDING"
    SUCCESS = "SUCCESS"
    ERROR = "ERROR"
    CANCELLED = "CANCELLED"
    MAX_RECOVERY_ATTEMPTS_EXCEEDED = "MAX_RECOVERY_ATTEMPTS_EXCEEDED"
    DELAYED = "DELAYED"

    def __str__(self) -> str:
        return self.value


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

    @property
    def workflow_name(self) -> str:
        return self.name
