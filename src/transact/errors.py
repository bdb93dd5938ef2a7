"""Public exception hierarchy. Every message names what is wrong and how to fix it.

The ``DBOS*`` aliases let code ported from the DBOS programming model catch the same names.
"""

from __future__ import annotations

from collections.abc import Sequence


class TransactError(Exception):
    """Base class of every error Transact raises on purpose."""


class ConfigError(TransactError, ValueError, TypeError):
    """Invalid configuration or argument; the message names it and says what it must be."""


class DatabaseUnavailableError(TransactError):
    """The system database cannot be reached (after retrying)."""


class NotLaunchedError(TransactError):
    """An operation needs ``DBOS.launch()`` first."""


class WorkflowNotFoundError(TransactError, KeyError):
    def __init__(self, workflow_id: str) -> None:
        super().__init__(f"no workflow with id {workflow_id!r} exists in the system database")
        self.workflow_id = workflow_id

    def __str__(self) -> str:
        return str(self.args[0])

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.workflow_id,))


class WorkflowNotRegisteredError(TransactError):
    """A workflow name is not registered in this process."""


class ScheduleNotFoundError(TransactError, KeyError):
    """No schedule with that name exists in the system database."""

    def __init__(self, schedule_name: str) -> None:
        super().__init__(f"no schedule named {schedule_name!r} exists; DBOS.list_schedules() shows the existing ones")
        self.schedule_name = schedule_name

    def __str__(self) -> str:
        return str(self.args[0])

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.schedule_name,))


class DeterminismError(TransactError):
    """Replayed code called a different step than the one recorded at that position."""

    def __init__(self, workflow_id: str, function_id: int, recorded: str, called: str) -> None:
        super().__init__(
            f"workflow {workflow_id!r} is not deterministic: at step {function_id} it recorded "
            f"{recorded!r} but the code now calls {called!r}. Restore the previous code to finish it, "
            f"or fork it with DBOS.fork_workflow({workflow_id!r}, start_step={function_id})."
        )
        self.workflow_id = workflow_id
        self.function_id = function_id
        self.recorded = recorded
        self.called = called

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.workflow_id, self.function_id, self.recorded, self.called))


class StepRetriesExceededError(TransactError):
    """A step failed on every allowed attempt; ``errors`` holds each attempt's exception."""

    def __init__(self, step_name: str, errors: Sequence[BaseException]) -> None:
        detail = "; ".join(f"attempt {i + 1}: {type(e).__name__}: {e}" for i, e in enumerate(errors))
        super().__init__(f"step {step_name!r} failed after {len(errors)} attempts ({detail})")
        self.step_name = step_name
        self.errors = list(errors)

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.step_name, self.errors))


class WorkflowCancelledError(TransactError):
    def __init__(self, workflow_id: str, detail: str = "was cancelled") -> None:
        super().__init__(f"workflow {workflow_id!r} {detail}")
        self.workflow_id = workflow_id

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.workflow_id,))


class MaxRecoveryAttemptsExceededError(TransactError):
    def __init__(self, workflow_id: str, attempts: int) -> None:
        super().__init__(
            f"workflow {workflow_id!r} was recovered {attempts} times without finishing and is now "
            "MAX_RECOVERY_ATTEMPTS_EXCEEDED; fix the crash, then DBOS.resume_workflow() it"
        )
        self.workflow_id = workflow_id

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.workflow_id, 0))


class SerializationError(TransactError, TypeError):
    """A value could not be serialized; raised at the call site, nothing is written."""


class QueueDeduplicatedError(TransactError):
    def __init__(self, workflow_id: str, queue_name: str, deduplication_id: str) -> None:
        super().__init__(
            f"cannot enqueue workflow {workflow_id!r}: queue {queue_name!r} already has an active "
            f"workflow with deduplication id {deduplication_id!r}"
        )
        self.workflow_id = workflow_id
        self.queue_name = queue_name
        self.deduplication_id = deduplication_id

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.workflow_id, self.queue_name, self.deduplication_id))


class NotInWorkflowError(TransactError):
    """A call that only makes sense inside a workflow was made outside one."""


class WorkflowConflictError(TransactError):
    """A workflow id is already used by a different workflow function."""


# Names used by code written for the DBOS programming model.
DBOSException = TransactError
DBOSMaxStepRetriesExceeded = StepRetriesExceededError
DBOSWorkflowCancelledError = WorkflowCancelledError
DBOSAwaitedWorkflowCancelledError = WorkflowCancelledError
DBOSNonExistentWorkflowError = WorkflowNotFoundError
DBOSUnexpectedStepError = DeterminismError
DBOSQueueDeduplicatedError = QueueDeduplicatedError
DBOSWorkflowConflictIDError = WorkflowConflictError
DBOSMaxRecoveryAttemptsExceeded = MaxRecoveryAttemptsExceededError
