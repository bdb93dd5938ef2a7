"""Queue declaration; enqueue / enqueue_async (issue 3)."""

from __future__ import annotations


class Queue:
    """Placeholder until the queue issue lands."""

    def __init__(self, name: str, **kwargs: object) -> None:
        self.name = name
