"""Public exception hierarchy. Every message names what is wrong and how to fix it.

Code written for the DBOS programming model catches the same names: each ``DBOS*`` class (and
``MaxRecoveryAttemptsExceededError``) means what DBOS documents it to mean, and where Transact has
its own name for the same situation, the Transact class derives from the DBOS one, so both
``except`` clauses catch it. ``DBOSException`` is ``TransactError``, the base of every error
Transact raises on purpose; each carries the documented ``dbos_error_code`` (``DBOSErrorCode``
values) and an HTTP ``status_code`` where one applies. ``DBOSBaseException`` is the root of the
errors DBOS keeps out of reach of ``except Exception``.

Errors are pickled into the system database, so every class with its own constructor defines
``__reduce__``.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum

PATCH_MARKER_PREFIX = "DBOS.patch-"  # how a patch marker step is named: this + the patch name


class DBOSErrorCode(Enum):
    """The ``dbos_error_code`` values DBOS documents (an error carries the int ``.value``)."""

    ConflictingIDError = 1
    RecoveryError = 2
    InitializationError = 3
    WorkflowFunctionNotFound = 4
    NonExistentWorkflowError = 5
    MaxRecoveryAttemptsExceeded = 6
    MaxStepRetriesExceeded = 7
    NotAuthorized = 8
    ConflictingWorkflowError = 9
    WorkflowCancelled = 10
    UnexpectedStep = 11
    QueueDeduplicated = 12
    AwaitedWorkflowCancelled = 13
    AwaitedWorkflowMaxRecoveryAttemptsExceeded = 14
    ConflictingRegistrationError = 25


class _Coded:
    """What both roots carry: the DBOS error code, an HTTP status where one fits, and ``message``."""

    dbos_error_code: int | None = None
    status_code: int | None = None
    args: tuple[object, ...]

    def __init__(self, message: object = "", dbos_error_code: int | None = None) -> None:
        super().__init__(message)  # type: ignore[call-arg]  # Exception / BaseException, next in the MRO
        if dbos_error_code is not None:
            self.dbos_error_code = dbos_error_code

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""

    @message.setter
    def message(self, value: str) -> None:
        self.args = (value, *self.args[1:])


# -- the two roots ------------------------------------------------------------------------------
class TransactError(_Coded, Exception):
    """Base class of every error Transact raises on purpose (``DBOSException`` is this class).

    ``message`` is the text; ``dbos_error_code`` the DBOS error code (None for errors DBOS has no
    code for); ``status_code`` the HTTP status that fits, where one does."""


DBOSException = TransactError


class DBOSBaseException(_Coded, BaseException):
    """Base class of the errors that must escape user code's ``except Exception:`` (they stop a
    workflow's run); only an ``except`` that names them, or ``BaseException``, catches them."""


# -- DBOS's documented errors -------------------------------------------------------------------
class DBOSWorkflowConflictIDError(DBOSBaseException):
    """Another execution of the same workflow id was detected (it checkpointed this step, or the
    workflow's outcome, first): this execution must stop and let the recorded outcome stand.

    Transact settles such runs itself (the later execution adopts the recorded outcome), so it
    does not raise this error today; the name exists for code written for DBOS."""

    dbos_error_code = DBOSErrorCode.ConflictingIDError.value

    def __init__(self, workflow_id: str) -> None:
        super().__init__(
            f"workflow id {workflow_id!r} is being executed elsewhere; this execution stops and "
            "the outcome recorded by the other one stands"
        )
        self.workflow_id = workflow_id

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.workflow_id,))


class DBOSRecoveryError(TransactError):
    """A pending workflow could not be recovered."""

    dbos_error_code = DBOSErrorCode.RecoveryError.value

    def __init__(self, workflow_id: str, message: str | None = None) -> None:
        super().__init__(f"could not recover workflow {workflow_id!r}" + (f": {message}" if message else ""))
        self.workflow_id = workflow_id

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.workflow_id,), {"args": self.args})


class DBOSInitializationError(TransactError):
    """DBOS could not be set up: its configuration is invalid (``ConfigError`` derives from this)."""

    dbos_error_code = DBOSErrorCode.InitializationError.value


class DBOSWorkflowFunctionNotFoundError(TransactError):
    """A workflow's function is not registered in this process, so it cannot be started or run
    (``WorkflowNotRegisteredError`` derives from this)."""

    dbos_error_code = DBOSErrorCode.WorkflowFunctionNotFound.value

    def __init__(self, workflow_id: str, message: str | None = None) -> None:
        super().__init__(message or f"the function of workflow {workflow_id!r} is not registered in this process")
        self.workflow_id: str | None = workflow_id

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.workflow_id, self.message))


class DBOSNonExistentWorkflowError(TransactError):
    """An operation names a workflow id that does not exist (``WorkflowNotFoundError`` derives
    from this)."""

    dbos_error_code = DBOSErrorCode.NonExistentWorkflowError.value

    def __init__(self, workflow_id: str) -> None:
        super().__init__(f"no workflow with id {workflow_id!r} exists in the system database")
        self.workflow_id = workflow_id

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.workflow_id,), {"args": self.args})


class DBOSMaxStepRetriesExceeded(TransactError):
    """A step with retries failed on every allowed attempt; ``errors`` holds each attempt's
    exception (``StepRetriesExceededError`` derives from this)."""

    dbos_error_code = DBOSErrorCode.MaxStepRetriesExceeded.value

    def __init__(self, step_name: str, max_retries: int, errors: Sequence[BaseException]) -> None:
        super().__init__(f"step {step_name!r} failed on all {max_retries} attempts")
        self.step_name = step_name
        self.max_retries = max_retries
        self.errors = list(errors)

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.step_name, self.max_retries, self.errors))


class DBOSNotAuthorizedError(TransactError):
    """The caller lacks a role the operation requires (HTTP 403): a function guarded by
    ``@DBOS.required_roles`` (or its class's ``@DBOS.default_required_roles``) was called, started
    or enqueued without an authenticated role it lists. Raised at the call, before anything is
    written."""

    dbos_error_code = DBOSErrorCode.NotAuthorized.value
    status_code = 403


class DBOSConflictingWorkflowError(TransactError):
    """A workflow id already belongs to a different workflow function, so it cannot be reused for
    this one (``WorkflowConflictError`` derives from this)."""

    dbos_error_code = DBOSErrorCode.ConflictingWorkflowError.value

    def __init__(self, workflow_id: str | None, message: str | None = None) -> None:
        super().__init__(message or f"workflow id {workflow_id!r} is already used by a different workflow")
        self.workflow_id = workflow_id

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.workflow_id, self.message))


class DBOSWorkflowCancelledError(DBOSBaseException):
    """Raised inside a cancelled (or timed-out) workflow at its next step or wait, to stop its run;
    a BaseException, so the workflow's own ``except Exception:`` does not swallow it. Whoever waits
    for the cancelled workflow's result gets ``WorkflowCancelledError`` instead (an Exception)."""

    dbos_error_code = DBOSErrorCode.WorkflowCancelled.value

    workflow_id: str | None = None
    detail: str = "was cancelled"

    @classmethod
    def of(cls, workflow_id: str, detail: str = "was cancelled") -> DBOSWorkflowCancelledError:
        """The error the engine raises in workflow ``workflow_id`` (the constructor takes DBOS's
        single message argument)."""
        err = cls(f"workflow {workflow_id!r} {detail}")
        err.workflow_id, err.detail = workflow_id, detail
        return err

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.message,), dict(vars(self)))


class DBOSUnexpectedStepError(TransactError):
    """Replayed workflow code called a different step than the one recorded at that position
    (the code is not deterministic, or changed under a running workflow); ``DeterminismError``
    derives from this."""

    dbos_error_code = DBOSErrorCode.UnexpectedStep.value

    def __init__(self, workflow_id: str, step_id: int, expected_name: str, recorded_name: str) -> None:
        super().__init__(
            f"workflow {workflow_id!r} is not deterministic: at step {step_id} it recorded "
            f"{recorded_name!r} but the code now calls {expected_name!r}"
        )
        self.workflow_id = workflow_id
        self.step_id = step_id
        self.expected_name = expected_name
        self.recorded_name = recorded_name

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.workflow_id, self.step_id, self.expected_name, self.recorded_name))


class DBOSQueueDeduplicatedError(TransactError):
    """An enqueue was refused: the queue already holds an active workflow with the same
    deduplication id (``QueueDeduplicatedError`` derives from this)."""

    dbos_error_code = DBOSErrorCode.QueueDeduplicated.value

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


class DBOSAwaitedWorkflowCancelledError(TransactError):
    """Waiting for a workflow's result found it cancelled (``handle.get_result()``,
    ``DBOS.get_result()``); an ordinary Exception. ``WorkflowCancelledError`` derives from this."""

    dbos_error_code = DBOSErrorCode.AwaitedWorkflowCancelled.value

    def __init__(self, workflow_id: str) -> None:
        super().__init__(f"awaited workflow {workflow_id!r} was cancelled")
        self.workflow_id = workflow_id

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.workflow_id,))


class DBOSAwaitedWorkflowMaxRecoveryAttemptsExceeded(TransactError):
    """Waiting for a workflow's result found it in MAX_RECOVERY_ATTEMPTS_EXCEEDED (the dead-letter
    state); ``MaxRecoveryAttemptsExceededError`` derives from this."""

    dbos_error_code = DBOSErrorCode.AwaitedWorkflowMaxRecoveryAttemptsExceeded.value

    def __init__(self, workflow_id: str) -> None:
        super().__init__(
            f"awaited workflow {workflow_id!r} exceeded its maximum recovery attempts; "
            "fix the crash, then DBOS.resume_workflow() it"
        )
        self.workflow_id = workflow_id

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.workflow_id,))


class ConfigError(DBOSInitializationError, ValueError, TypeError):
    """Invalid configuration or argument; the message names it and says what it must be."""


class DBOSConflictingRegistrationError(ConfigError):
    """A workflow, step or class name is registered twice with different definitions (a
    ``ConfigError`` too: it is caught at import, where the second definition is made)."""

    dbos_error_code = DBOSErrorCode.ConflictingRegistrationError.value

    def __init__(self, name: str, message: str | None = None) -> None:
        super().__init__(
            message or f"{name!r} is already registered with a different definition; give one of them another name"
        )
        self.name = name

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.name, self.message))


class DatabaseUnavailableError(TransactError):
    """The system database cannot be reached (after retrying)."""


class DatabaseConfigurationError(DatabaseUnavailableError):
    """The system database refuses us for a reason retrying cannot fix (authentication failed,
    no such database or host, a SQLite path whose folder is missing or read-only); raised at once.
    The message names the database (password redacted) and the fix."""


class NotLaunchedError(TransactError):
    """An operation needs ``DBOS.launch()`` first."""


class WorkflowNotFoundError(DBOSNonExistentWorkflowError, KeyError):
    """No workflow with that id exists (a KeyError too)."""

    def __str__(self) -> str:
        return str(self.args[0])

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.workflow_id,))


class WorkflowNotRegisteredError(DBOSWorkflowFunctionNotFoundError):
    """A workflow name is not registered in this process."""

    def __init__(self, message: str, workflow_id: str | None = None) -> None:
        TransactError.__init__(self, message)
        self.workflow_id = workflow_id

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.message, self.workflow_id))


class ScheduleNotFoundError(TransactError, KeyError):
    """No schedule with that name exists in the system database."""

    def __init__(self, schedule_name: str) -> None:
        super().__init__(f"no schedule named {schedule_name!r} exists; DBOS.list_schedules() shows the existing ones")
        self.schedule_name = schedule_name

    def __str__(self) -> str:
        return str(self.args[0])

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.schedule_name,))


class DeterminismError(DBOSUnexpectedStepError):
    """Replayed code called a different step than the one recorded at that position."""

    def __init__(self, workflow_id: str, function_id: int, recorded: str, called: str) -> None:
        if recorded.startswith(PATCH_MARKER_PREFIX):
            patch = recorded[len(PATCH_MARKER_PREFIX) :]
            message = (
                f"workflow {workflow_id!r} took patch {patch!r} at step {function_id}, but the code no longer "
                f"calls DBOS.patch({patch!r}) there (it calls {called!r}). Put back DBOS.deprecate_patch({patch!r}) "
                "there, and delete it only once every workflow that took the patch has finished."
            )
        else:
            message = (
                f"workflow {workflow_id!r} is not deterministic: at step {function_id} it recorded "
                f"{recorded!r} but the code now calls {called!r}. Restore the previous code to finish it, "
                f"or fork it with DBOS.fork_workflow({workflow_id!r}, start_step={function_id})."
            )
        TransactError.__init__(self, message)
        self.workflow_id = workflow_id
        self.function_id = self.step_id = function_id
        self.recorded = self.recorded_name = recorded
        self.called = self.expected_name = called

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.workflow_id, self.function_id, self.recorded, self.called))


class StepRetriesExceededError(DBOSMaxStepRetriesExceeded):
    """A step failed on every allowed attempt; ``errors`` holds each attempt's exception."""

    def __init__(self, step_name: str, errors: Sequence[BaseException]) -> None:
        detail = "; ".join(f"attempt {i + 1}: {type(e).__name__}: {e}" for i, e in enumerate(errors))
        TransactError.__init__(self, f"step {step_name!r} failed after {len(errors)} attempts ({detail})")
        self.step_name = step_name
        self.errors = list(errors)
        self.max_retries = len(self.errors)

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.step_name, self.errors))


class WorkflowCancelledError(DBOSAwaitedWorkflowCancelledError):
    """The awaited workflow was cancelled (or passed its deadline): what ``get_result()`` and a
    direct call of a cancelled workflow raise. An ordinary Exception, so a caller (a parent workflow
    too) may catch it; inside the cancelled workflow itself the engine raises
    ``DBOSWorkflowCancelledError``, which ``except Exception:`` does not catch."""

    def __init__(self, workflow_id: str, detail: str = "was cancelled") -> None:
        TransactError.__init__(self, f"workflow {workflow_id!r} {detail}")
        self.workflow_id = workflow_id
        self.detail = detail

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.workflow_id, self.detail))


class MaxRecoveryAttemptsExceededError(DBOSAwaitedWorkflowMaxRecoveryAttemptsExceeded):
    """The workflow was recovered more often than its ``max_recovery_attempts`` without finishing
    and is now MAX_RECOVERY_ATTEMPTS_EXCEEDED; also what waiting for its result raises."""

    dbos_error_code = DBOSErrorCode.MaxRecoveryAttemptsExceeded.value

    def __init__(self, workflow_id: str, attempts: int) -> None:
        TransactError.__init__(
            self,
            f"workflow {workflow_id!r} was recovered {attempts} times without finishing and is now "
            "MAX_RECOVERY_ATTEMPTS_EXCEEDED; fix the crash, then DBOS.resume_workflow() it",
        )
        self.workflow_id = workflow_id
        self.attempts = self.max_retries = attempts

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.workflow_id, self.attempts))


class SerializationError(TransactError, TypeError):
    """A value could not be serialized; raised at the call site, nothing is written."""


class QueueDeduplicatedError(DBOSQueueDeduplicatedError):
    """An enqueue was refused: the queue already has an active workflow with this deduplication id."""


class NotInWorkflowError(TransactError):
    """A call that only makes sense inside a workflow was made outside one."""


class WorkflowConflictError(DBOSConflictingWorkflowError):
    """A workflow id is already used by a different workflow function (or, for a fork, taken)."""

    def __init__(self, message: str, workflow_id: str | None = None) -> None:
        TransactError.__init__(self, message)
        self.workflow_id = workflow_id

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.message, self.workflow_id))


class StepTimeoutError(TransactError, TimeoutError):
    """One attempt of a step ran past its ``timeout_seconds`` (it is retried like any failure)."""

    def __init__(self, step_name: str, timeout_s: float) -> None:
        super().__init__(f"step {step_name!r} did not finish within {timeout_s} s (timeout_seconds)")
        self.step_name = step_name
        self.timeout_s = timeout_s

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.step_name, self.timeout_s))


# Kept for code that used this earlier Transact alias (DBOS's own name is the class above).
DBOSMaxRecoveryAttemptsExceeded = MaxRecoveryAttemptsExceededError
