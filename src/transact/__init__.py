"""Transact: durable execution for Python on SQLite or Postgres.

``from transact import DBOS, Queue, SetWorkflowID`` — the public surface; no logic lives here.
"""

from transact._client import DBOSClient
from transact._config import DBOSConfig
from transact._dbos import DBOS
from transact._facade.auth import DBOSContextEnsure, DBOSContextSetAuth
from transact._facade.debounce import Debouncer, DebouncerClient
from transact._handles import WorkflowHandle, WorkflowHandleAsync
from transact._options import SetEnqueueOptions, SetWorkflowAttributes, SetWorkflowID, SetWorkflowTimeout
from transact._queue import Queue, QueueRateLimit
from transact.datasource import AsyncSQLAlchemyDatasource, SQLAlchemyDatasource
from transact.engine.by_name import EnqueueOptions
from transact.engine.registry import ConfiguredInstance as DBOSConfiguredInstance
from transact.engine.serializers import (
    DBOSPortableJSON,
    DefaultSerializer,
    PortableWorkflowError,
    Serializer,
    WorkflowSerializationFormat,
)
from transact.engine.versions import VersionInfo
from transact.errors import (
    ConfigError,
    DatabaseConfigurationError,
    DatabaseUnavailableError,
    DBOSAwaitedWorkflowCancelledError,
    DBOSAwaitedWorkflowMaxRecoveryAttemptsExceeded,
    DBOSBaseException,
    DBOSConflictingRegistrationError,
    DBOSConflictingWorkflowError,
    DBOSErrorCode,
    DBOSException,
    DBOSInitializationError,
    DBOSMaxRecoveryAttemptsExceeded,
    DBOSMaxStepRetriesExceeded,
    DBOSNonExistentWorkflowError,
    DBOSNotAuthorizedError,
    DBOSQueueDeduplicatedError,
    DBOSRecoveryError,
    DBOSUnexpectedStepError,
    DBOSWorkflowCancelledError,
    DBOSWorkflowConflictIDError,
    DBOSWorkflowFunctionNotFoundError,
    DeterminismError,
    MaxRecoveryAttemptsExceededError,
    NotInWorkflowError,
    NotLaunchedError,
    QueueDeduplicatedError,
    ScheduleNotFoundError,
    SerializationError,
    StepRetriesExceededError,
    StepTimeoutError,
    TransactError,
    WorkflowCancelledError,
    WorkflowConflictError,
    WorkflowNotFoundError,
    WorkflowNotRegisteredError,
)
from transact.models import (
    KafkaMessage,
    StepInfo,
    StepOptions,
    StepStatus,
    WorkflowInputs,
    WorkflowStatus,
    WorkflowStatusString,
)

__version__ = "0.1.0"

__all__ = [
    "DBOS",
    "AsyncSQLAlchemyDatasource",
    "ConfigError",
    "DBOSAwaitedWorkflowCancelledError",
    "DBOSAwaitedWorkflowMaxRecoveryAttemptsExceeded",
    "DBOSBaseException",
    "DBOSClient",
    "DBOSConfig",
    "DBOSConfiguredInstance",
    "DBOSConflictingRegistrationError",
    "DBOSConflictingWorkflowError",
    "DBOSContextEnsure",
    "DBOSContextSetAuth",
    "DBOSErrorCode",
    "DBOSException",
    "DBOSInitializationError",
    "DBOSMaxRecoveryAttemptsExceeded",
    "DBOSMaxStepRetriesExceeded",
    "DBOSNonExistentWorkflowError",
    "DBOSNotAuthorizedError",
    "DBOSPortableJSON",
    "DBOSQueueDeduplicatedError",
    "DBOSRecoveryError",
    "DBOSUnexpectedStepError",
    "DBOSWorkflowCancelledError",
    "DBOSWorkflowConflictIDError",
    "DBOSWorkflowFunctionNotFoundError",
    "DatabaseConfigurationError",
    "DatabaseUnavailableError",
    "Debouncer",
    "DebouncerClient",
    "DefaultSerializer",
    "DeterminismError",
    "EnqueueOptions",
    "KafkaMessage",
    "MaxRecoveryAttemptsExceededError",
    "NotInWorkflowError",
    "NotLaunchedError",
    "PortableWorkflowError",
    "Queue",
    "QueueDeduplicatedError",
    "QueueRateLimit",
    "SQLAlchemyDatasource",
    "ScheduleNotFoundError",
    "SerializationError",
    "Serializer",
    "SetEnqueueOptions",
    "SetWorkflowAttributes",
    "SetWorkflowID",
    "SetWorkflowTimeout",
    "StepInfo",
    "StepOptions",
    "StepRetriesExceededError",
    "StepStatus",
    "StepTimeoutError",
    "TransactError",
    "VersionInfo",
    "WorkflowCancelledError",
    "WorkflowConflictError",
    "WorkflowHandle",
    "WorkflowHandleAsync",
    "WorkflowInputs",
    "WorkflowNotFoundError",
    "WorkflowNotRegisteredError",
    "WorkflowSerializationFormat",
    "WorkflowStatus",
    "WorkflowStatusString",
    "__version__",
]
