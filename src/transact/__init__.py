"""Transact: durable execution for Python on SQLite or Postgres.

``from transact import DBOS, Queue, SetWorkflowID`` — the public surface; no logic lives here.
"""

from transact._client import DBOSClient
from transact._dbos import DBOS
from transact._handles import WorkflowHandle, WorkflowHandleAsync
from transact._options import SetEnqueueOptions, SetWorkflowID, SetWorkflowTimeout
from transact._queue import Queue
from transact.engine.registry import ConfiguredInstance as DBOSConfiguredInstance
from transact.errors import (
    ConfigError,
    DatabaseUnavailableError,
    DBOSAwaitedWorkflowCancelledError,
    DBOSException,
    DBOSMaxStepRetriesExceeded,
    DBOSNonExistentWorkflowError,
    DBOSQueueDeduplicatedError,
    DBOSUnexpectedStepError,
    DBOSWorkflowCancelledError,
    DBOSWorkflowConflictIDError,
    DeterminismError,
    MaxRecoveryAttemptsExceededError,
    NotInWorkflowError,
    NotLaunchedError,
    QueueDeduplicatedError,
    ScheduleNotFoundError,
    SerializationError,
    StepRetriesExceededError,
    TransactError,
    WorkflowCancelledError,
    WorkflowConflictError,
    WorkflowNotFoundError,
)
from transact.models import KafkaMessage, StepInfo, StepOptions, StepStatus, WorkflowStatus, WorkflowStatusString

DBOSConfig = dict

__version__ = "0.1.0"

__all__ = [
    "DBOS",
    "ConfigError",
    "DBOSAwaitedWorkflowCancelledError",
    "DBOSClient",
    "DBOSConfig",
    "DBOSConfiguredInstance",
    "DBOSException",
    "DBOSMaxStepRetriesExceeded",
    "DBOSNonExistentWorkflowError",
    "DBOSQueueDeduplicatedError",
    "DBOSUnexpectedStepError",
    "DBOSWorkflowCancelledError",
    "DBOSWorkflowConflictIDError",
    "DatabaseUnavailableError",
    "DeterminismError",
    "KafkaMessage",
    "MaxRecoveryAttemptsExceededError",
    "NotInWorkflowError",
    "NotLaunchedError",
    "Queue",
    "QueueDeduplicatedError",
    "ScheduleNotFoundError",
    "SerializationError",
    "SetEnqueueOptions",
    "SetWorkflowID",
    "SetWorkflowTimeout",
    "StepInfo",
    "StepOptions",
    "StepRetriesExceededError",
    "StepStatus",
    "TransactError",
    "WorkflowCancelledError",
    "WorkflowConflictError",
    "WorkflowHandle",
    "WorkflowHandleAsync",
    "WorkflowNotFoundError",
    "WorkflowStatus",
    "WorkflowStatusString",
    "__version__",
]
