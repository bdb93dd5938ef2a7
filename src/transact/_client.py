"""DBOSClient: use a system database from any process without launch() (issue 7)."""

from __future__ import annotations


class DBOSClient:
    """Placeholder until the management issue lands."""

    def __init__(self, system_database_url: str) -> None:
        self.system_database_url = system_database_url
