"""DBOSClient's application versions (``engine/versions.py``), as on ``DBOS``. The client acts for
its ``application_name``; without one, for the only application with versions in the database."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from transact.engine import versions
from transact.engine.versions import VersionInfo

if TYPE_CHECKING:
    from transact.storage import Store

T = TypeVar("T")


class ClientVersions:
    """Mixed into DBOSClient, which provides the store, its application name and the
    outage-mapping calls."""

    if TYPE_CHECKING:
        _store: Store
        _application_name: str | None

        def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T: ...

    def _versions_app(self) -> str:
        return self._call(versions.resolve, self._store, self._application_name)

    def list_application_versions(self) -> list[VersionInfo]:
        """The application's registered versions, latest first (as ``DBOS.list_application_versions``)."""
        return self._call(versions.list_versions, self._store, self._versions_app())

    def get_latest_application_version(self) -> VersionInfo | None:
        """The application's latest version, or None (as ``DBOS.get_latest_application_version``)."""
        return self._call(versions.latest, self._store, self._versions_app())

    def set_latest_application_version(self, version_name: str) -> VersionInfo:
        """Promote a registered version (as ``DBOS.set_latest_application_version``)."""
        return self._call(versions.set_latest, self._store, self._versions_app(), version_name)

    async def list_application_versions_async(self) -> list[VersionInfo]:
        return await asyncio.to_thread(self.list_application_versions)

    async def get_latest_application_version_async(self) -> VersionInfo | None:
        return await asyncio.to_thread(self.get_latest_application_version)

    async def set_latest_application_version_async(self, version_name: str) -> VersionInfo:
        return await asyncio.to_thread(self.set_latest_application_version, version_name)
