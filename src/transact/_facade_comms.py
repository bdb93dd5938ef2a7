"""DBOS facade mixin. Durable time and communication: sleep, send/recv, events, streams (issue 4).

Classmethods here are short delegations to the engine; reach the runtime with
``transact._current.runtime()``. Must not import transact._dbos.
"""

from __future__ import annotations


class _CommsFacade:
    pass
