"""DBOS facade: application versions (list, latest, promote). Delegates to ``engine/versions.py``;
versions are this application's (config ``name``). Must not import transact._dbos."""

from __future__ import annotations

from transact._facade._base import FacadeBase
from transact.engine import versions
from transact.engine.versions import VersionInfo


class VersionsFacade(FacadeBase):
    @classmethod
    def list_application_versions(cls) -> list[VersionInfo]:
        """This application's registered versions, latest first (each executor registers its
        ``application_version`` when it launches)."""
        rt = cls._rt()
        return versions.list_versions(rt.store, rt.settings.name)

    @classmethod
    async def list_application_versions_async(cls) -> list[VersionInfo]:
        rt = cls._rt()
        return await rt.aio(versions.list_versions, rt.store, rt.settings.name)

    @classmethod
    def get_latest_application_version(cls) -> VersionInfo | None:
        """The version with the highest timestamp (the newest registered, or the last promoted);
        None before any executor registered one."""
        rt = cls._rt()
        return versions.latest(rt.store, rt.settings.name)

    @classmethod
    async def get_latest_application_version_async(cls) -> VersionInfo | None:
        rt = cls._rt()
        return await rt.aio(versions.latest, rt.store, rt.settings.name)

    @classmethod
    def set_latest_application_version(cls, version_name: str) -> VersionInfo:
        """Make a registered version the latest (promoting an older one is a rollback); a version
        this application never registered raises ConfigError naming the known ones."""
        rt = cls._rt()
        return versions.set_latest(rt.store, rt.settings.name, version_name)

    @classmethod
    async def set_latest_application_version_async(cls, version_name: str) -> VersionInfo:
        rt = cls._rt()
        return await rt.aio(versions.set_latest, rt.store, rt.settings.name, version_name)
