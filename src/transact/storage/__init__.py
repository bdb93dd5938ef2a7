"""System database access. ``open_store(url)`` is the only place a URL picks a driver."""

from __future__ import annotations

import os

from transact.storage.errors import (
    Conflict,
    NotFound,
    OwnershipLost,
    StorageError,
    Unavailable,
    WorkflowNotPending,
)
from transact.storage.store import Store

__all__ = [
    "Conflict",
    "NotFound",
    "OwnershipLost",
    "StorageError",
    "Store",
    "Unavailable",
    "WorkflowNotPending",
    "open_store",
]


def open_store(
    url: str, *, retry_timeout_s: float | None = None, pool_size: int = 10, connect_timeout_s: float = 10.0
) -> Store:
    """Open (but do not migrate) the store for ``sqlite:///path`` or ``postgresql://...``.

    ``connect_timeout_s``: how long one Postgres connection attempt may wait (clients and the CLI
    use a short one so an unreachable database fails fast)."""
    if url.startswith("sqlite:///"):
        from transact.storage.sqlite import SqliteStore

        path = url[len("sqlite:///") :]
        return SqliteStore(os.path.expanduser(path), retry_timeout_s=retry_timeout_s)
    if url.startswith(("postgresql://", "postgres://", "postgresql+psycopg://", "postgresql+psycopg2://")):
        from transact.storage.postgres import PostgresStore

        return PostgresStore(
            url, retry_timeout_s=retry_timeout_s, pool_size=pool_size, connect_timeout_s=connect_timeout_s
        )
    raise ValueError(f"unsupported database URL {url!r}: use sqlite:///path or postgresql://...")
