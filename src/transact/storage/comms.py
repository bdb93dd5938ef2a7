"""Messages, events and streams. Must not import the engine."""

from __future__ import annotations

from transact.storage._base import DriverBase


class CommsSql(DriverBase):
    pass
