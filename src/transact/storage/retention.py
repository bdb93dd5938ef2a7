"""Retention: delete finished workflows in small batches, oldest completion first.

Finished rows are found through ``ws_finished_idx`` (migration 0018: ``updated_at`` of finished
rows only), so a batch reads the rows it deletes and little else, whatever the history holds.
Messages, events and streams go with their workflow through the foreign keys' cascades (their
lookups are indexed); steps through SQLite's range trigger, or, on Postgres (no foreign key on
steps), an explicit delete in the same transaction plus a sweep after it commits. Must not import
the engine or the facade.
"""

from __future__ import annotations

from collections.abc import Sequence

from transact.storage._base import DriverBase, Tx
from transact.storage.retention_protocol import RetentionBatch

_SWEEP_CHUNK = 1000  # deleted ids per post-commit sweep statement
_FINISHED = "status IN ('SUCCESS', 'ERROR', 'CANCELLED', 'MAX_RECOVERY_ATTEMPTS_EXCEEDED')"
# Advisory lock key of the one collecting process of a fleet (any fixed bigint; "gc" in ASCII).
RETENTION_LOCK_KEY = 0x7472616E73_6763

_BOUNDARY = (
    f"SELECT updated_at, workflow_id FROM workflow_status WHERE {_FINISHED} "
    "ORDER BY updated_at DESC, workflow_id DESC LIMIT 1 OFFSET ?"
)


def select_sql(row_lock: str) -> str:
    """A batch's candidates in completion order (parameters: ``before``'s time twice and id,
    ``after``'s time twice and id, the limit), locked on Postgres and skipping rows another
    transaction holds; tests EXPLAIN exactly this. Each position test, ``(updated_at, workflow_id)
    < (t, id)`` and ``> (t, id)``, is spelled so the index bounds updated_at. A plain ordered walk
    of ws_finished_idx: with the child test in it, the planner may hash-join every finished row
    and sort them all (seen at a million rows)."""
    return (
        f"SELECT w.updated_at, w.workflow_id FROM workflow_status w WHERE w.{_FINISHED} "
        "AND w.updated_at <= ? AND (w.updated_at < ? OR w.workflow_id < ?) "
        "AND w.updated_at >= ? AND (w.updated_at > ? OR w.workflow_id > ?) "
        f"ORDER BY w.updated_at, w.workflow_id LIMIT ?{row_lock}"
    )


def busy_parents_sql(count: int) -> str:
    """Which of ``count`` listed workflows have a child that still runs (ws_parent_created_idx)."""
    marks = ", ".join("?" * count)
    return (
        f"SELECT DISTINCT parent_workflow_id FROM workflow_status WHERE parent_workflow_id IN ({marks}) "
        "AND status NOT IN ('SUCCESS', 'ERROR', 'CANCELLED', 'MAX_RECOVERY_ATTEMPTS_EXCEEDED')"
    )


def delete_sql(count: int) -> str:
    """Delete ``count`` listed workflows, each still finished (primary-key probes: a join with
    the selection could become a hash join over the whole table)."""
    marks = ", ".join("?" * count)
    return f"DELETE FROM workflow_status WHERE workflow_id IN ({marks}) AND {_FINISHED} RETURNING workflow_id"


class RetentionSql(DriverBase):
    def retention_boundary(self, *, keep: int) -> tuple[int, str] | None:
        row = self.read(lambda tx: tx.one(_BOUNDARY, (keep - 1,)))
        return (int(row[0]), str(row[1])) if row is not None else None

    def retention_delete(
        self,
        *,
        before: tuple[int, str],
        limit: int,
        after: tuple[int, str] | None = None,
        exclusive: bool = False,
        sweep: bool = True,
    ) -> RetentionBatch | None:
        select = select_sql(self.sql.claim_row_lock)
        try_lock = self.sql.try_lock if exclusive else None
        steps = self.sql.steps.sweep_deleted
        relaxed = self.sql.relaxed_commit
        start = after if after is not None else (-1, "")  # (-1, ""): before every completion
        params = (before[0], before[0], before[1], start[0], start[0], start[1], limit)

        def unit(tx: Tx) -> RetentionBatch | None:
            if relaxed is not None:
                tx.run(relaxed, ())
            if try_lock is not None:
                held = tx.one(try_lock, (RETENTION_LOCK_KEY,))
                if held is None or not held[0]:
                    return None
            found = [(int(r[0]), str(r[1])) for r in tx.all(select, params)]
            if not found:
                return RetentionBatch([], 0, None)
            ids = [i for _, i in found]
            busy = {str(r[0]) for r in tx.all(busy_parents_sql(len(ids)), ids)}
            todo = [i for i in ids if i not in busy]
            deleted = [str(r[0]) for r in tx.all(delete_sql(len(todo)), todo)] if todo else []
            if deleted and steps is not None:
                tx.run(steps, (deleted,))
            return RetentionBatch(deleted, len(found), found[-1])

        batch = self.write(unit)
        if sweep and batch is not None:
            self.retention_sweep(batch.deleted)
        return batch

    def retention_sweep(self, workflow_ids: Sequence[str]) -> None:
        # A checkpoint whose fence read a row just before its delete committed (a workflow being
        # resumed as it was deleted) may land after it: sweep once more, after the commit.
        steps = self.sql.steps.sweep_deleted
        if steps is None:
            return
        ids = list(workflow_ids)

        def sweep(chunk: list[str]) -> None:
            self.write(lambda tx: tx.run(steps, (chunk,)), single=True)

        for start in range(0, len(ids), _SWEEP_CHUNK):
            sweep(ids[start : start + _SWEEP_CHUNK])
