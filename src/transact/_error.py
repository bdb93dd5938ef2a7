"""``transact._error``: the exceptions and ``DBOSErrorCode`` under the module path DBOS code
imports them from (``from dbos._error import DBOSException``), so that code runs with only the
package name changed. The classes live in ``transact.errors``; every public name of it is here."""

from transact.errors import *  # noqa: F403
