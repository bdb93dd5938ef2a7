"""The contract of moving data between system databases (implemented by transfer.py): export and
import of one workflow tree, and the table-by-table pages a whole-database copy is made of.

Rows cross this boundary as tuples in the order of ``transfer_tables()[table]``: the table's
logical columns as this database has them (keys a database keeps for itself, such as SQLite's
``seq`` and ``step_key``, are left out). Booleans are Python bools, binary values bytes, never
unpickled. Must not import the engine or the facade.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

TableRows = dict[str, list[tuple[Any, ...]]]  # table name -> rows, columns as transfer_tables() lists them
Cursor = tuple[Any, ...]  # where the next page starts (the last row's key); None: the beginning or the end


class TransferStore(Protocol):
    """Export, import and copy (transfer.py)."""

    def transfer_tables(self) -> dict[str, list[str]]:
        """Every table of the system schema, with the logical columns of the ones that move (in
        copy order) and an empty list for the others (bookkeeping, derived or per-process
        tables). Read once per store; ``transfer.KNOWN_TABLES`` lists what this version knows."""
        ...

    def transfer_export(self, workflow_id: str, *, children: bool) -> TableRows:
        """The workflow's rows of every table that holds rows per workflow (its status row, steps,
        events, streams, the messages addressed to it), with its descendants' when ``children``;
        read in one transaction. Empty when the workflow does not exist."""
        ...

    def transfer_import(self, rows: Mapping[str, Sequence[Sequence[Any]]], *, replace: bool) -> list[str]:
        """Insert an exported tree in one transaction. Returns the ids of its workflows that
        existed already: without ``replace`` nothing is written then; with it their rows (steps,
        events, streams, messages) are deleted first, in the same transaction. Messages get new
        ids here (their order kept). ``rows`` holds only the tables ``transfer_export`` returns,
        columns as ``transfer_tables`` lists them."""
        ...

    def transfer_count(self, table: str) -> int:
        """How many rows the table holds."""
        ...

    def transfer_page(
        self, table: str, after: Cursor | None, limit: int
    ) -> tuple[list[tuple[Any, ...]], Cursor | None]:
        """Up to ``limit`` rows of ``table`` in key order after ``after`` (None: from the start),
        and the cursor of the next page (None when this was the last). Steps page by workflow:
        the steps of up to ``limit`` workflows."""
        ...

    def transfer_insert(self, table: str, rows: Sequence[Sequence[Any]]) -> None:
        """Insert rows read by ``transfer_page`` from another database in one transaction; rows
        whose key exists are skipped (a re-run copies only what is missing). Ids the database
        assigns (message ids) are kept and its sequence moved past them."""
        ...
