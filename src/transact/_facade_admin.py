"""DBOS facade mixin. Managing workflows: list, steps, cancel, resume, fork, delete (issue 7).

Classmethods here are short delegations to the engine; reach the runtime with
``transact._current.runtime()``. Must not import transact._dbos.
"""

from __future__ import annotations


class _AdminFacade:
    pass
