"""The names that cross process boundaries: workflow statuses and wake-up hint kinds.

Both are ``str`` enums hashed and compared as their text, so a member and the plain string read
from a row or a NOTIFY payload (``kind|id|key``, written by the Postgres triggers) are the same
dictionary key. The trigger SQL in the migrations spells the same values.
"""

from __future__ import annotations

import enum
from collections.abc import Callable


class _Text(str, enum.Enum):
    # Enum hashes members by name; hints arrive as plain strings and must find the same entries.
    __hash__ = str.__hash__

    def __str__(self) -> str:
        return str(self.value)


class Status(_Text):
    """A workflow row's ``status``."""

    ENQUEUED = "ENQUEUED"
    PENDING = "PENDING"
    SUCCESS = "SUCCESS"
    ERROR = "ERROR"
    CANCELLED = "CANCELLED"
    MAX_RECOVERY_ATTEMPTS_EXCEEDED = "MAX_RECOVERY_ATTEMPTS_EXCEEDED"
    DELAYED = "DELAYED"


TERMINAL = frozenset({Status.SUCCESS, Status.ERROR, Status.CANCELLED, Status.MAX_RECOVERY_ATTEMPTS_EXCEEDED})
QUEUED = (Status.ENQUEUED, Status.PENDING, Status.DELAYED)


class Hint(_Text):
    """The kind of a wake-up hint: ``(kind, ident, key)`` says which rows may have changed."""

    MESSAGE = "msg"  # ident: destination workflow, key: topic
    EVENT = "event"  # ident: workflow, key: event key
    STREAM = "stream"  # ident: workflow, key: stream key
    QUEUE = "queue"  # ident: queue name
    DONE = "done"  # ident: workflow reaching a terminal status
    EXECUTOR = "executor"  # ident: executor whose work may need adopting
    CANCEL = "cancel"  # ident: workflow cancelled (this process)
    SCHEDULE = "schedule"  # ident: schedule name
    QUEUE_CONFIG = "qconf"  # ident: queue whose registered limits changed
    ALL = "*"  # another process committed something: everyone re-reads


# Receives each wake-up hint as ``(kind, ident, key)`` (plain strings, comparable with ``Hint``).
HintHandler = Callable[[str, str, str], None]
