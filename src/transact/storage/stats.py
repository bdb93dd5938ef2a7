"""Counts for metrics and ``transact stats`` (``protocol.StatsStore``): grouped reads that touch
indexes only. Must not import the engine or the facade."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from transact.storage._base import DriverBase
from transact.storage.stats_protocol import QueueDepth

__all__ = ["QueueDepth", "StatsSql"]

# Index only on both databases (ws_status_name_idx, migration 0017): a grouped walk in key order,
# no temporary b-tree on SQLite, no heap visit on Postgres once the visibility map is set.
_WORKFLOW_COUNTS = "SELECT status, name, count(*) FROM workflow_status GROUP BY status, name"

# Each half reads one partial index (ws_queue_ready_idx / ws_queue_active_idx), so the cost follows
# the queued work, not the finished history.
_QUEUE_DEPTHS = (
    "SELECT queue_name, 'ENQUEUED', count(*), min(created_at) FROM workflow_status"
    " WHERE status = 'ENQUEUED' AND queue_name IS NOT NULL{only} GROUP BY queue_name"
    " UNION ALL"
    " SELECT queue_name, 'PENDING', count(*), NULL FROM workflow_status"
    " WHERE status = 'PENDING' AND queue_name IS NOT NULL{only} GROUP BY queue_name"
)


class StatsSql(DriverBase):
    def stats_workflow_counts(self) -> list[tuple[str, str, int]]:
        rows = self.read(lambda tx: tx.all(_WORKFLOW_COUNTS))
        return [(str(status), str(name), int(n)) for status, name, n in rows]

    def stats_queue_depths(self, *, queue_names: Sequence[str] | None = None) -> list[QueueDepth]:
        only = ""
        params: tuple[str, ...] = ()
        if queue_names is not None:
            if not queue_names:
                return []
            only = f" AND queue_name IN ({', '.join('?' for _ in queue_names)})"
            params = tuple(queue_names)
        sql = _QUEUE_DEPTHS.format(only=only)
        rows = self.read(lambda tx: tx.all(sql, params + params))
        found: dict[str, list[Any]] = {}
        for queue, status, n, oldest in rows:
            entry = found.setdefault(str(queue), [0, 0, None])
            if status == "ENQUEUED":
                entry[0], entry[2] = int(n), None if oldest is None else int(oldest)
            else:
                entry[1] = int(n)
        return [QueueDepth(name, e[0], e[1], e[2]) for name, e in sorted(found.items())]
