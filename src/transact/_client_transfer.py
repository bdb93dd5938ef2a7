"""DBOSClient's export and import of workflows (``engine/transfer.py``), as on ``DBOS``."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from transact.engine import transfer

if TYPE_CHECKING:
    from transact.storage import Store

T = TypeVar("T")


class ClientTransfer:
    """Mixed into DBOSClient, which provides the store and the outage-mapping call."""

    if TYPE_CHECKING:
        _store: Store

        def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T: ...

    def export_workflow(self, workflow_id: str, children: bool = False) -> dict[str, Any]:
        """The workflow (and with ``children`` its descendants) as JSON-ready data (as
        ``DBOS.export_workflow``)."""
        return self._call(transfer.export_workflow, self._store, workflow_id, children=children)

    def import_workflow(self, data: dict[str, Any], replace: bool = False) -> str:
        """Insert an export into this database; returns its workflow id (as ``DBOS.import_workflow``:
        an existing id is refused unless ``replace``; imported PENDING work waits for a resume)."""
        return self._call(transfer.import_workflow, self._store, data, replace=replace)
