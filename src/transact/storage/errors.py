"""Storage-level errors: the only exceptions that cross the storage boundary.

Must not import the engine or the facade.
"""

from __future__ import annotations


class StorageError(Exception):
    """Base class for errors raised by a store."""


class Unavailable(StorageError):
    """The database could not be reached or dropped the connection; retrying may succeed."""


class Conflict(StorageError):
    """A uniqueness rule was violated (duplicate id, active deduplication id, ...)."""


class NotFound(StorageError):
    """The row the operation needs does not exist."""


class OwnershipLost(StorageError):
    """A checkpoint write was refused: another executor owns the workflow now."""


class WorkflowNotPending(StorageError):
    """A checkpoint write was refused because the workflow is no longer PENDING.

    ``status`` says what it is now (for example CANCELLED).
    """

    def __init__(self, workflow_id: str, status: str) -> None:
        super().__init__(f"workflow {workflow_id!r} is {status}")
        self.workflow_id = workflow_id
        self.status = status


class StreamClosed(Exception):  # not a StorageError: the caller misused the stream
    """A write to a stream that was already closed (the engine turns it into a clear error)."""
