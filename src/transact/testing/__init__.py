"""Testing tools for Transact applications.

``replay`` checks recorded workflows against the current code (also ``transact replay``). The
module is also a pytest plugin, opted into with ``-p transact.testing`` or
``pytest_plugins = ["transact.testing"]``: fixtures ``transact_sqlite_url``,
``transact_postgres_url``, ``transact_database_url``, ``transact_app`` and ``transact_clock`` (a
``TestClock``: time that moves only when the test advances it); helpers
``wait_for_workflow``, ``wait_for_queue_drain``, ``wait_for_event`` and ``wait_for_step`` wait on
conditions with a deadline. ``replay`` works without pytest installed.
"""

from __future__ import annotations

from transact.testing._clock import TestClock
from transact.testing._replay import ReplayReport, WorkflowReplay, replay
from transact.testing._waits import wait_for_event, wait_for_queue_drain, wait_for_step, wait_for_workflow

__all__ = [
    "ReplayReport",
    "TestClock",
    "WorkflowReplay",
    "replay",
    "wait_for_event",
    "wait_for_queue_drain",
    "wait_for_step",
    "wait_for_workflow",
]

try:  # the fixtures pytest collects from this module's namespace
    from transact.testing._plugin import transact_app as transact_app
    from transact.testing._plugin import transact_clock as transact_clock
    from transact.testing._plugin import transact_database_url as transact_database_url
    from transact.testing._plugin import transact_postgres_url as transact_postgres_url
    from transact.testing._plugin import transact_sqlite_url as transact_sqlite_url
except ModuleNotFoundError as exc:  # pytest (or psycopg) is absent: only the fixtures are missing
    if exc.name not in ("pytest", "psycopg"):
        raise
