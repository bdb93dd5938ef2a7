"""Queue rows: claim ready work under global/per-worker/rate limits. Must not import the engine."""

from __future__ import annotations

from transact.storage._base import DriverBase


class QueueSql(DriverBase):
    pass
