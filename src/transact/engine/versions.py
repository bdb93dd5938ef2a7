"""Application versions, shared by DBOS and DBOSClient: every launched executor registers its
application's version; the latest is the one with the highest timestamp; promoting a version
(``set_latest``) moves it past every other, so promoting an older one rolls back.

Versions are scoped by application name (config ``name``; a client's ``application_name``), so
applications sharing one system database do not change which version their peers consider
latest. Timestamps are wall-clock ms (``clock.real_ms``): they are compared across processes, and
a frozen test clock must not make every version tie. Must not import the facade.
"""

from __future__ import annotations

import uuid
from typing import TypedDict

from transact._lib import checks
from transact.engine.clock import real_ms
from transact.engine.runtime import Runtime
from transact.storage import Store
from transact.storage.versions_protocol import VersionRow


class VersionInfo(TypedDict):
    """One registered version: ``version_timestamp`` (epoch ms) orders them, the highest is the
    latest; ``created_at`` (epoch ms) is when it was first registered and never changes."""

    version_id: str
    version_name: str
    version_timestamp: int
    created_at: int


def _info(row: VersionRow) -> VersionInfo:
    return VersionInfo(
        version_id=row.version_id,
        version_name=row.version_name,
        version_timestamp=row.version_timestamp,
        created_at=row.created_at,
    )


def _app(application_name: str | None) -> str:
    """The stored scope: '' for an application that named none."""
    return application_name or ""


def resolve(store: Store, application_name: str | None) -> str:
    """The application a client that named none acts for: the only one with versions here; with
    several, the caller must name one (a guess could roll back the wrong application)."""
    if application_name is not None:
        return checks.text(application_name, "application_name") or ""
    names = sorted({r.application_name for r in store.version_list(application_name=None)})
    if len(names) > 1:
        raise checks.fail(
            "DBOSClient application_name", f"given: several applications share this database {names}", None
        )
    return names[0] if names else ""


def register(store: Store, *, application_name: str | None, version_name: str) -> bool:
    """Record ``version_name`` for the application unless it is known (a relaunch of an old
    version does not make it the latest again). True when it is new, and so the latest."""
    now = real_ms()
    row = VersionRow(_app(application_name), version_name, str(uuid.uuid4()), now, now)
    return store.version_register(row)


class VersionService:
    """Registers the launched application's version once the schema is there (first service)."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    def start(self) -> None:
        if self.rt.app_version is not None:
            register(self.rt.store, application_name=self.rt.settings.name, version_name=self.rt.app_version)

    def stop(self) -> None:
        pass


def service_for(rt: Runtime) -> VersionService:
    return VersionService(rt)


def list_versions(store: Store, application_name: str | None) -> list[VersionInfo]:
    """The application's versions, latest first."""
    return [_info(r) for r in store.version_list(application_name=_app(application_name))]


def latest(store: Store, application_name: str | None) -> VersionInfo | None:
    """The application's latest version; None before any executor of it launched."""
    row = store.version_latest(application_name=_app(application_name))
    return None if row is None else _info(row)


def set_latest(store: Store, application_name: str | None, version_name: object) -> VersionInfo:
    """Promote a registered version to latest (a rollback when it is older). A version the
    application never registered is refused, naming the ones it has."""
    name = checks.text(version_name, "set_latest_application_version version_name")
    assert name is not None
    app = _app(application_name)
    promoted = store.version_promote(application_name=app, version_name=name, now=real_ms())
    if promoted is None:
        known = [r.version_name for r in store.version_list(application_name=app)]
        raise checks.fail(
            "set_latest_application_version version_name",
            f"a version application {app!r} registered (one of {known}; an executor registers its "
            "version when it launches)",
            name,
        )
    return _info(promoted)
