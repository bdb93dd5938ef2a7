"""Cron schedules (static and dynamic). Must not import the engine."""

from __future__ import annotations

from transact.storage._base import DriverBase


class ScheduleSql(DriverBase):
    pass
