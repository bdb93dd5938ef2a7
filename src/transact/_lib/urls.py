"""Database URLs: which kind a URL names, and how to show one without its password."""

from __future__ import annotations

import os
from typing import Literal

SQLITE_PREFIX = "sqlite:///"
POSTGRES_PREFIXES = ("postgresql://", "postgres://", "postgresql+psycopg://", "postgresql+psycopg2://")

Kind = Literal["sqlite", "postgres"]


def kind_of(url: str) -> Kind:
    """``sqlite`` or ``postgres``; a ValueError naming both accepted forms otherwise."""
    if url.startswith(SQLITE_PREFIX):
        return "sqlite"
    if url.startswith(POSTGRES_PREFIXES):
        return "postgres"
    raise ValueError(
        f"unsupported database URL {redact(url)!r}: use sqlite:///path/to/file.sqlite or "
        "postgresql://user:password@host:5432/dbname"
    )


def sqlite_path(url: str) -> str:
    """The file path of a ``sqlite:///path`` URL, ``~`` expanded."""
    return os.path.expanduser(url[len(SQLITE_PREFIX) :])


def postgres_conninfo(url: str) -> str:
    """A libpq URL for psycopg: SQLAlchemy-style driver suffixes removed."""
    for prefix in POSTGRES_PREFIXES[2:]:
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix) :]
    return url


def redact(url: str) -> str:
    """The URL with its password replaced by ``***``, fit for logs and error messages."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user, sep, _ = creds.partition(":")
    return f"{scheme}://{user}:***@{host}" if sep else f"{scheme}://{user}@{host}"
