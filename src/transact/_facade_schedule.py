"""DBOS facade mixin. Scheduled workflows: @DBOS.scheduled and dynamic schedules (issue 6).

Classmethods here are short delegations to the engine; reach the runtime with
``transact._current.runtime()``. Must not import transact._dbos.
"""

from __future__ import annotations


class _ScheduleFacade:
    pass
