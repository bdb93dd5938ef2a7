"""Debounce windows: one DELAYED workflow row per open window, pushed back by each new call.

A window is the DELAYED row of its queue that holds the window's marker as its deduplication id.
The active-deduplication unique index (``ws_dedup_idx``: ENQUEUED, PENDING or DELAYED rows) lets at
most one row of a queue hold a marker, so concurrent openers in any process race on the index and
exactly one wins; the losers push the winner's window instead. A window is open while its row is
DELAYED and not yet due; once due (or promoted by the dispatcher) it is closed, and the next call
takes the marker off it and opens a new window. No window is ever pushed after it closed, so a
call either lands in the run that is still to start or opens the next one: none is lost.
Must not import the engine or the facade.
"""

from __future__ import annotations

from transact._lib.states import Hint
from transact.storage._base import DriverBase, Tx
from transact.storage.rows import WORKFLOW_COLUMN_COUNT, WORKFLOW_COLUMNS, WorkflowRow
from transact.storage.workflows import workflow_values

# The open window takes the latest inputs and the later due time, capped at the window's maximum
# wait (counted from its first call, the row's created_at). Portable CASE: SQLite has no LEAST.
_PUSH = (
    "UPDATE workflow_status SET inputs = ?, updated_at = ?,"
    " available_at = CASE WHEN ? < created_at + ? THEN ? ELSE created_at + ? END"
    " WHERE queue_name = ? AND deduplication_id = ? AND status = 'DELAYED' AND available_at > ?"
    " RETURNING workflow_id"
)
# Closed windows give up the marker: the run they hold (or will start) is no longer debounced.
# An open window is never touched here, even one committed by a concurrent opener after our push
# missed: the insert below then conflicts with it and the loop pushes it instead.
_RELEASE_MARKER = (
    "UPDATE workflow_status SET deduplication_id = NULL"
    " WHERE queue_name = ? AND deduplication_id = ?"
    " AND (status IN ('ENQUEUED', 'PENDING') OR (status = 'DELAYED' AND available_at <= ?))"
)
# No conflict target: a taken workflow id and a held marker both make the insert a no-op.
_OPEN = (
    f"INSERT INTO workflow_status ({WORKFLOW_COLUMNS}) VALUES ({', '.join('?' * WORKFLOW_COLUMN_COUNT)})"
    " ON CONFLICT DO NOTHING"
)
_EXISTS = "SELECT workflow_id FROM workflow_status WHERE workflow_id = ?"
_NO_CAP = 2**62  # "no maximum wait": far beyond any epoch ms, and created_at + it fits in BIGINT


class DebounceSql(DriverBase):
    def workflow_debounce(self, row: WorkflowRow, *, max_wait_ms: int | None, now: int) -> tuple[str, bool]:
        """Debounce ``row`` (DELAYED, its window marker as ``deduplication_id``, due at
        ``available_at``) into the open window of its queue and marker, else open a window with it.

        Returns (the window's workflow id, opened). Pushing sets the window's inputs to
        ``row.inputs`` and its due time to ``row.available_at``, at most ``max_wait_ms`` after the
        window opened. When ``row.workflow_id`` is already taken, nothing is written and that id
        is returned (opened False). Hints ``queue`` (key ``delayed``) when a window opens.
        Round trips: 1 to push an open window; opening one is a transaction."""
        if row.available_at is None or row.queue_name is None or row.deduplication_id is None:
            raise ValueError("a debounced row needs queue_name, deduplication_id and available_at")
        due, cap = row.available_at, _NO_CAP if max_wait_ms is None else max_wait_ms
        push = (row.inputs, now, due, cap, due, cap, row.queue_name, row.deduplication_id, now)
        hit = self.write(lambda tx: tx.one(_PUSH, push), single=True)
        if hit is not None:
            return str(hit[0]), False

        def unit(tx: Tx) -> tuple[str, bool]:
            for _ in range(10):
                pushed = tx.one(_PUSH, push)
                if pushed is not None:
                    return str(pushed[0]), False
                tx.run(_RELEASE_MARKER, (row.queue_name, row.deduplication_id, now))
                if tx.run(_OPEN, workflow_values(row)) == 1:
                    return row.workflow_id, True
                if tx.one(_EXISTS, (row.workflow_id,)) is not None:
                    return row.workflow_id, False
                # a concurrent caller opened the window after our push missed: push it now
            raise RuntimeError(f"debounce window {row.deduplication_id!r} keeps changing hands; try again")

        workflow_id, opened = self.write(unit)
        if opened:
            self.hint(Hint.QUEUE, row.queue_name, "delayed")
        return workflow_id, opened
