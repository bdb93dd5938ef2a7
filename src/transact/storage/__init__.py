"""System database access. ``open_store(url)`` is the only place a URL picks a driver.

The engine, the client and the CLI speak to ``Store`` (``protocol.SystemStore``) and never to a
concrete driver.
"""

from __future__ import annotations

from transact._lib import urls
from transact.storage.errors import (
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
    "Conflict",
    "Misconfigured",
    "NotFound",
    "OwnershipLost",
    "StorageError",
    "Store",
    "SystemStore",
    "Unavailable",
    "WorkflowNotPending",
    "open_store",
]


def open_store(
    url: str,
    *,
    retry_timeout_s: float | None = None,
    pool_size: int = 10,
    connect_timeout_s: float = 10.0,
    sqlite_synchronous: str = "NORMAL",
) -> SystemStore:
    """Open (but do not migrate) the store for ``sqlite:///path`` or ``postgresql://...``.

    ``connect_timeout_s``: how long one Postgres connection attempt may wait (clients and the CLI
    use a short one so an unreachable database fails fast). ``sqlite_synchronous``: SQLite's
    ``PRAGMA synchronous`` (NORMAL or FULL). A ValueError names the accepted URL forms for any
    other URL; ``Misconfigured``: a SQLite path that cannot work."""
    if urls.kind_of(url) == "sqlite":
        from transact.storage.sqlite import SqliteStore

        return SqliteStore(urls.sqlite_path(url), retry_timeout_s=retry_timeout_s, synchronous=sqlite_synchronous)
    from transact.storage.postgres import PostgresStore

    return PostgresStore(url, retry_timeout_s=retry_timeout_s, pool_size=pool_size, connect_timeout_s=connect_timeout_s)
