"""DBOS facade mixin. Transactions on the application database: @DBOS.transaction (issue 5).

Classmethods here are short delegations to the engine; reach the runtime with
``transact._current.runtime()``. Must not import transact._dbos.
"""

from __future__ import annotations


class _TxnFacade:
    pass
