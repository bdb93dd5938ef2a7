"""Reaching a Postgres server: which connection errors retrying cannot fix (and the fix to name),
and where a URL points, for outage messages. Must not import the engine or the facade."""

from __future__ import annotations

import psycopg

from transact._lib.urls import redact

# Connection errors retrying cannot fix (before the first connection succeeds): text -> the fix.
_UNFIXABLE = (
    ("password authentication failed", "correct the user name or password in the URL"),
    ("authentication failed", "correct the user name or password in the URL"),
    ("no pg_hba.conf entry", "allow this host and user in the server's pg_hba.conf, or connect as another user"),
    ("role ", "correct the user name in the URL or create that role"),
    ("database ", "create the database or correct its name in the URL"),
    ("failed to resolve host", "correct the host name in the URL"),
    ("could not translate host name", "correct the host name in the URL"),
)


def unfixable(text: str) -> str | None:
    """The fix for a connection error retrying cannot fix; None when retrying may help (refused,
    timed out, the server starting or shutting down, a temporary DNS failure)."""
    if "Temporary failure" in text or "try again" in text.lower():
        return None
    for needle, fix in _UNFIXABLE:
        if needle in text and (needle.strip() not in ("role", "database") or "does not exist" in text):
            return fix
    return None


def where(conninfo: str) -> str:
    """The URL without its password, with the host and port it resolves to (libpq's defaults)."""
    try:
        params = psycopg.conninfo.conninfo_to_dict(conninfo)
    except psycopg.Error:
        return redact(conninfo)
    host = params.get("host") or params.get("hostaddr") or "localhost"
    return f"{redact(conninfo)} (host {host}, port {params.get('port') or 5432})"
