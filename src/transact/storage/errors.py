"""Storage-level errors: the only exceptions that cross the storage boundary.

Must not import the engine or the facade.
"""

from __future__ import annotations


def first_line(exc: BaseException | None, fallback: str = "") -> str:
    """The first line of a driver error's text (logs and messages stay one line), else ``fallback``."""
    text = str(exc).strip() if exc is not None else ""
    return text.splitlines()[0] if text else fallback


class StorageError(Exception):
    """Base class for errors raised by a store."""


class Unavailable(StorageError):
    """The database could not be reached or dropped the connection; retrying may succeed.

    ``outage``: the database is out of reach (logged as an outage while retried); False for
    contention (a lock, a serialization failure) that the next attempt usually gets past."""

    def __init__(self, message: str = "", *, outage: bool = True) -> None:
        super().__init__(message)
        self.outage = outage


class Misconfigured(Unavailable):
    """The database refuses us for a reason retrying cannot fix (authentication, an unknown
    database or host, an unusable SQLite path); raised at once, never retried. Drivers raise it
    only before their first successful connection: later the same errors are outages."""

    def __init__(self, message: str) -> None:
        super().__init__(message, outage=False)


class Cancelled(StorageError):
    """The database cancelled a statement of a session (``_base.Session``): its
    ``statement_timeout`` ran out, or an operator cancelled it. A session does not retry it: the
    same statement would meet the same limit; its caller may try a smaller one. (A pool unit's
    cancelled statement is contention, ``Unavailable(outage=False)``, retried with back-off.)"""


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
