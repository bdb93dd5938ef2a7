"""Management reads and writes: list, steps, delete, fork. Must not import the engine."""

from __future__ import annotations

from transact.storage._base import DriverBase


class AdminSql(DriverBase):
    pass
