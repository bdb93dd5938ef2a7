"""A missing Postgres system database is created at launch, as DBOS does: pointing a new
application at ``postgresql://.../myapp_sys`` needs no manual ``CREATE DATABASE``.

Only the launch's migration creates it; clients, the CLI and the console report a missing database
as a configuration error (a typo there should not leave an empty database behind). The database is
created from the server's maintenance database (``postgres``, else ``template1``); another process
creating it at the same moment is not an error. A role that may not create databases gets an error
that names the fix. Must not import the engine or the facade.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql as pg_sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from transact.storage.errors import Misconfigured, first_line

log = logging.getLogger("transact.storage")

_MAINTENANCE = ("postgres", "template1")
_NO_SERVER = "no maintenance database reachable"
_BUSY_TRIES = 20  # CREATE DATABASE fails while another session uses the template: retry briefly


def database_name(conninfo: str) -> str:
    """The database a connection string names (libpq's default: the user's name)."""
    params = conninfo_to_dict(conninfo)
    return str(params.get("dbname") or params.get("user") or "postgres")


def is_missing(conninfo: str, error: BaseException) -> bool:
    """Whether ``error`` (from connecting) says the connection string's own database does not exist."""
    return f'database "{database_name(conninfo)}" does not exist' in " ".join(str(error).split())


def create(conninfo: str, conn_kwargs: Mapping[str, Any]) -> None:
    """CREATE DATABASE for the connection string's database, owned by its user."""
    name = database_name(conninfo)
    user = conninfo_to_dict(conninfo).get("user") or "this user"
    last: BaseException | None = None
    for maintenance in _MAINTENANCE:
        for _ in range(_BUSY_TRIES):
            try:
                with psycopg.connect(
                    make_conninfo(conninfo, dbname=maintenance), **{**conn_kwargs, "autocommit": True}
                ) as conn:
                    conn.execute(pg_sql.SQL("CREATE DATABASE {}").format(pg_sql.Identifier(name)))
                log.warning("created the system database %r (it did not exist)", name)
                return
            except (pg_errors.DuplicateDatabase, pg_errors.UniqueViolation):
                return  # another process created it first
            except pg_errors.InsufficientPrivilege as exc:
                raise Misconfigured(
                    f"the system database {name!r} does not exist and {user} may not create it ({first_line(exc)}); "
                    f"create it (CREATE DATABASE {name}) or grant that role CREATEDB"
                ) from exc
            except pg_errors.ObjectInUse as exc:  # the template is in use by another session
                last = exc
                time.sleep(0.1)
            except psycopg.OperationalError as exc:  # this maintenance database is not there: try the next
                last = exc
                break
    raise Misconfigured(
        f"the system database {name!r} does not exist and could not be created ({first_line(last, _NO_SERVER)}); "
        f"create it (CREATE DATABASE {name}) or correct its name in the URL"
    )
