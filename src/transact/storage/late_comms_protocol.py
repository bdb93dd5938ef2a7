"""The storage contract's stream offsets and sends to forks (``LateCommsStore``), kept beside
protocol.py. Implemented by ``comms.CommsSql``. Must not import the engine or the facade."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from transact.storage.rows import StepRow


class LateCommsStore(Protocol):
    """Readers that want only new stream values, and messages that must reach a workflow's forks."""

    def stream_offset(self, workflow_id: str, key: str) -> int | None:
        """The seq the next value of stream ``key`` will take (its number of values; 0 when never
        written; a close marker is not a value), or None when the workflow does not exist. Round
        trips: 2."""
        ...

    def message_send_forks(self, *, destination_id: str, topic: str, message: bytes, now: int) -> list[str]:
        """Deliver ``message`` to ``destination_id`` and every workflow forked from it at any depth
        (``forked_from``, index-served), skipping finished ones, in one transaction; hints
        ``message`` for each. Returns the ids delivered to, the destination's family in generation
        then creation order. Raises NotFound (nothing written) when the destination does not exist."""
        ...

    def message_send_forks_step(
        self,
        step: StepRow,
        *,
        executor_id: str,
        destination_id: str,
        topic: str,
        message: bytes,
        now: int,
        output: Callable[[list[str]], bytes],
    ) -> StepRow:
        """``message_send_forks`` from a workflow: the messages and the step (its output: the ids,
        encoded by ``output``) commit together, fenced. Returns the recorded step: ours, or the one
        recorded earlier at this position (nothing sent then). NotFound: nothing written."""
        ...
