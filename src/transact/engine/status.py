"""Storage rows -> public read models (inputs/outputs decoded on request)."""

from __future__ import annotations

import json
from typing import Any

from transact._lib.roles import decode_roles
from transact._lib.states import Status
from transact.engine import serialization
from transact.errors import MaxRecoveryAttemptsExceededError, TransactError, WorkflowCancelledError
from transact.models import WorkflowInputs, WorkflowStatus
from transact.storage.rows import WorkflowRow


def outcome(row: WorkflowRow) -> Any:
    """A finished workflow's result, or its error raised."""
    if row.status == Status.SUCCESS:
        return serialization.loads(row.output)
    if row.status == Status.ERROR:
        raise (
            serialization.loads_error(row.error) if row.error else TransactError(f"workflow {row.workflow_id!r} failed")
        )
    if row.status == Status.CANCELLED:
        raise WorkflowCancelledError(row.workflow_id)
    if row.status == Status.MAX_RECOVERY_ATTEMPTS_EXCEEDED:
        raise MaxRecoveryAttemptsExceededError(row.workflow_id, row.recovery_attempts)
    raise TransactError(f"workflow {row.workflow_id!r} has not finished ({row.status})")


def _safe(fn: Any, data: bytes | None) -> Any:
    if data is None:
        return None
    try:
        return fn(data)
    except Exception as exc:  # a class that no longer exists must not break listing
        return f"<undecodable: {type(exc).__name__}: {exc}>"


def _inputs(data: bytes) -> WorkflowInputs:
    return WorkflowInputs(*serialization.loads_inputs(data))


def to_status(row: WorkflowRow, *, load_input: bool = True, load_output: bool = True) -> WorkflowStatus:
    return WorkflowStatus(
        workflow_id=row.workflow_id,
        status=row.status,
        name=row.name,
        class_name=row.class_name,
        config_name=row.config_name,
        queue_name=row.queue_name,
        input=_safe(_inputs, row.inputs) if load_input else None,
        output=_safe(serialization.loads, row.output) if load_output else None,
        error=_safe(serialization.loads_error, row.error) if load_output else None,
        created_at=row.created_at,
        updated_at=row.updated_at,
        executor_id=row.executor_id,
        app_version=row.app_version,
        recovery_attempts=row.recovery_attempts,
        parent_workflow_id=row.parent_workflow_id,
        deduplication_id=row.deduplication_id,
        priority=row.priority,
        queue_partition_key=row.queue_partition_key,
        started_at=row.started_at,
        deadline_at=row.deadline_at,
        workflow_timeout_ms=row.timeout_ms,
        forked_from=row.forked_from,
        authenticated_user=row.authenticated_user,
        assumed_role=row.assumed_role,
        authenticated_roles=list(roles) if (roles := decode_roles(row.authenticated_roles)) is not None else None,
        attributes=json.loads(row.attributes) if row.attributes is not None else None,
        application_name=row.application_name,
    )
