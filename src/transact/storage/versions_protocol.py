"""The application-versions concern of the storage contract (``VersionStore``), kept beside
protocol.py. Must not import the engine or the facade."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class VersionRow:
    """One registered version of one application (``application_name`` '' when it named none).
    ``version_timestamp`` (epoch ms) orders the versions: the highest is the latest."""

    application_name: str
    version_name: str
    version_id: str
    version_timestamp: int
    created_at: int


class VersionStore(Protocol):
    """Application versions (versions.py): registered at launch, listed, promoted to latest."""

    def version_register(self, row: VersionRow) -> bool:
        """Insert the version unless the application already has one of that name (a relaunch of
        an old version must not make it the latest again). True if inserted. Round trips: 1."""
        ...

    def version_list(self, *, application_name: str | None) -> list[VersionRow]:
        """The versions of one application (every application's when None), latest first.
        Round trips: 1."""
        ...

    def version_latest(self, *, application_name: str) -> VersionRow | None:
        """The application's version with the highest timestamp; None when it registered none.
        Reads one entry of ``av_latest_idx``. Round trips: 1."""
        ...

    def version_promote(self, *, application_name: str, version_name: str, now: int) -> VersionRow | None:
        """Make a registered version the latest: its timestamp becomes ``now``, or one past the
        application's highest when that is later (clocks differ between processes), in one
        statement. None when the application has no version of that name. Round trips: 1."""
        ...
