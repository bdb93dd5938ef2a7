"""The statistics concern of the storage contract (``StatsStore``), kept beside protocol.py.

Must not import the engine or the facade.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class QueueDepth:
    """One queue's queued work: ENQUEUED rows, PENDING (running) rows, and the creation time
    (epoch ms) of its oldest ENQUEUED row (None when nothing waits)."""

    queue_name: str
    enqueued: int
    running: int
    oldest_enqueued_at: int | None


class StatsStore(Protocol):
    """Counts for metrics and ``transact stats``, read from the tables so every process reports the
    same numbers (stats.py)."""

    def stats_workflow_counts(self) -> list[tuple[str, str, int]]:
        """(status, name, count) for every status and name present. Walks ``ws_status_name_idx``
        (index only): about 140 ms per million rows. Round trips: 1."""
        ...

    def stats_queue_depths(self, *, queue_names: Sequence[str] | None = None) -> list[QueueDepth]:
        """ENQUEUED and PENDING counts per queue that has either (only ``queue_names`` when given),
        ordered by name. Reads only the partial queue indexes, so its cost follows queued work, not
        history. Round trips: 1."""
        ...
