"""DBOS facade: export a workflow (with its children) as JSON-ready data, and import such data.

Delegates to ``engine/transfer.py``, whose docstring says what an export holds and why imported
PENDING work waits until it is resumed. Must not import transact._dbos.
"""

from __future__ import annotations

from typing import Any

from transact._facade._base import FacadeBase
from transact.engine import transfer


class TransferFacade(FacadeBase):
    @classmethod
    def export_workflow(cls, workflow_id: str, children: bool = False) -> dict[str, Any]:
        """The workflow's rows (status with every column, steps, events, streams, messages
        addressed to it; with ``children`` its descendants' too) as a dict ready for
        ``json.dumps``. Pickled values stay pickled, as base64. WorkflowNotFoundError if unknown."""
        return transfer.export_workflow(cls._rt().store, workflow_id, children=children)

    @classmethod
    def import_workflow(cls, data: dict[str, Any], replace: bool = False) -> str:
        """Insert what ``export_workflow`` returned (from any database) in one transaction and
        return its workflow id. An id that exists is refused (WorkflowConflictError) unless
        ``replace``. An imported PENDING workflow does not run until ``resume_workflow`` (or a
        fork) asks: it is owned by the reserved executor ``imported``, which nobody adopts from."""
        return transfer.import_workflow(cls._rt().store, data, replace=replace)
