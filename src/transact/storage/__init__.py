"""System database access. ``open_store(url)`` is the only place a URL picks a driver.

The engine, the client and the CLI speak to ``Store`` (``protocol.SystemStore``) and never to a
concrete driver.
"""

from __future__ import annotations

from transact._lib import urls
from transact.storage.errors import (
    Cancelled,
    Conflict,
    Misconfigured,
    NotFound,
    OwnershipLost,
    StorageError,
    Unavailable,
    WorkflowNotPending,
)
from transact.storage.protocol import SystemStore

Store = SystemStore  # the name the engine annotates with

__all__ = [
    "Cancelled",
    "Conflict",
    "Misconfigured",
    "NotFound",
    "OwnershipLost",
    "StorageError",
    "Store",
    "SystemStore",
    "Unavailable",
    "WorkflowNotPending",
    "grant_app_role",
    "open_store",
]


def open_store(
    url: str,
    *,
    retry_timeout_s: float | None = None,
    pool_size: int = 10,
    connect_timeout_s: float = 10.0,
    sqlite_synchronous: str = "NORMAL",
    schema: str | None = None,
) -> SystemStore:
    """Open (but do not migrate) the store for ``sqlite:///path`` or ``postgresql://...``.

    ``connect_timeout_s``: how long one Postgres connection attempt may wait (clients and the CLI
    use a short one so an unreachable database fails fast). ``sqlite_synchronous``: SQLite's
    ``PRAGMA synchronous`` (NORMAL or FULL). ``schema``: the Postgres schema of the system tables
    (default ``transact``; created by ``migrate``); SQLite has no schemas and ignores it. A ValueError names the accepted URL forms for any
    other URL; ``Misconfigured``: a SQLite path that cannot work."""
    if urls.kind_of(url) == "sqlite":
        from transact.storage.sqlite import SqliteStore

        return SqliteStore(urls.sqlite_path(url), retry_timeout_s=retry_timeout_s, synchronous=sqlite_synchronous)
    from transact.storage.postgres import PostgresStore

    return PostgresStore(
        url, retry_timeout_s=retry_timeout_s, pool_size=pool_size, connect_timeout_s=connect_timeout_s, schema=schema
    )


def grant_app_role(
    url: str,
    role: str,
    *,
    retry_timeout_s: float | None = None,
    connect_timeout_s: float = 10.0,
    schema: str | None = None,
) -> None:
    """Give the existing Postgres ``role`` exactly what a running application needs on the system
    tables (USAGE on the schema; SELECT, INSERT, UPDATE, DELETE on its tables; USAGE on its
    sequences; EXECUTE on its functions), now and for tables later migrations create, so the app
    runs with ``run_migrations: False`` under a role without DDL rights (``transact migrate
    --app-role``). A ValueError when the role does not exist, or for SQLite, which has no roles."""
    if urls.kind_of(url) == "sqlite":
        raise ValueError(
            "SQLite has no roles: who may use the database is decided by the file's permissions "
            f"(give the application's user read and write access to {urls.sqlite_path(url)!r} and its folder)"
        )
    from transact.storage.postgres import grant_app_role as grant

    grant(url, role, retry_timeout_s=retry_timeout_s, connect_timeout_s=connect_timeout_s, schema=schema)
