"""DBOSClient's constructor arguments as DBOS documents them, checked and mapped onto Transact.

A client only reads and writes the system database: the application database (DBOS code passes
it routinely) is accepted and unused, and tuning arguments Transact has no use for are accepted
and ignored. A serializer is installed for the values the client writes and reads.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from transact._config import ENV_DBOS_SYSTEM_DB, ENV_SYSTEM_DB, system_schema
from transact._facade._base import FacadeBase
from transact._lib import checks
from transact.engine import serialization
from transact.errors import ConfigError

log = logging.getLogger("transact")


def system_url(system_database_url: Any, application_database_url: Any, engine: Any) -> str:
    """The system database URL: the argument, else TRANSACT_SYSTEM_DATABASE_URL, else the engine's
    URL, else DBOS_SYSTEM_DATABASE_URL."""
    for key, value in (
        ("system_database_url", system_database_url),
        ("application_database_url", application_database_url),
    ):
        if value is not None and not isinstance(value, str):
            raise checks.fail(f"DBOSClient {key}", "a database URL string", value)
    url = system_database_url or os.environ.get(ENV_SYSTEM_DB)
    if not url and engine is not None:
        url = _engine_url(engine)
    url = url or os.environ.get(ENV_DBOS_SYSTEM_DB)  # DBOS's variable, last (as for the config)
    if url:
        return str(url)
    if application_database_url:
        raise ConfigError(
            "DBOSClient needs system_database_url: Transact keeps workflows in the system database, not "
            "in the application database given as application_database_url; pass the application's "
            f"system_database_url too (or set {ENV_SYSTEM_DB})"
        )
    raise ConfigError(
        f"DBOSClient needs system_database_url (or the {ENV_SYSTEM_DB} environment variable), "
        "e.g. 'postgresql://user:password@host:5432/db' or 'sqlite:///app.sqlite'"
    )


def _engine_url(engine: Any) -> str:
    url = getattr(engine, "url", None)
    if url is None:
        raise ConfigError(f"DBOSClient system_database_engine must be a SQLAlchemy Engine, got {engine!r}")
    render = getattr(url, "render_as_string", None)
    return str(render(hide_password=False) if callable(render) else url)


def check_serializer(serializer: Any) -> None:
    """The client's serializer (must match the application's): values it wrote decode here, and in a
    process without a DBOS instance the client also writes with it."""
    if FacadeBase._current is None:
        serialization.install(serializer, what="DBOSClient serializer")
    else:
        serialization.add_reader(serializer, what="DBOSClient serializer")


def pool_size(value: Any) -> int:
    """The connection pool size (default 4: a client runs a few calls at a time)."""
    return 4 if value is None else checks.count(value, "DBOSClient system_database_pool_size", minimum=1)


def schema(value: Any, url: str) -> str | None:
    """The Postgres schema of the system tables (None: the default, ``transact``; ``dbos`` means it
    too); the application must use the same one."""
    return system_schema(value, "DBOSClient dbos_system_schema", url)


def application(application_name: object) -> str | None:
    """The application a client acts for: a non-empty name, or None for none."""
    return checks.text(application_name, "DBOSClient application_name", optional=True)
