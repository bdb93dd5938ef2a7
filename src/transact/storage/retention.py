"""Retention: delete finished workflows in small batches, oldest completion first.

Finished rows are found through ``ws_finished_idx`` (migration 0018: ``updated_at`` of finished
rows only), so a batch reads the rows it deletes and little else, whatever the history holds.
Steps, messages, events and streams go with their workflow: on SQLite through its trigger and
cascades, on Postgres (no foreign keys there) by one set-wise delete per table in the same
transaction plus a sweep after it commits (``owned_deletes``). Every statement of a batch takes
its ids as one parameter and runs on the driver's lean path (``Tx.texts``): the collector shares
its process with the application, and what it costs the client it takes from the application's
threads (the GIL). Must not import the engine or the facade.
"""

from __future__ import annotations

from collections.abc import Sequence

from transact.storage._base import DriverBase, Tx
from transact.storage.retention_protocol import RetentionBatch

_SWEEP_CHUNK = 1000  # deleted ids per post-commit sweep statement
_FINISHED = "status IN ('SUCCESS', 'ERROR', 'CANCELLED', 'MAX_RECOVERY_ATTEMPTS_EXCEEDED')"
# Advisory lock key of the one collecting process of a fleet (any fixed bigint; "gc" in ASCII),
# and the key every batch of any collection holds while it runs (collectors take turns by batch).
RETENTION_LOCK_KEY = 0x7472616E73_6763
RETENTION_TURN_KEY = RETENTION_LOCK_KEY + 1

_BOUNDARY = (
    f"SELECT updated_at, workflow_id FROM workflow_status WHERE {_FINISHED} "
    "ORDER BY updated_at DESC, workflow_id DESC LIMIT 1 OFFSET ?"
)


# A batch's candidates in completion order (parameters: ``before``'s time twice and id, ``after``'s
# time twice and id, the limit); tests EXPLAIN exactly this. Each position test, ``(updated_at,
# workflow_id) < (t, id)`` and ``> (t, id)``, is spelled so the index bounds updated_at. A plain
# ordered walk of ws_finished_idx: with the child test in it, the planner may hash-join every
# finished row and sort them all (seen at a million rows). No row locks: collectors take turns.
SELECT = (
    f"SELECT w.updated_at, w.workflow_id FROM workflow_status w WHERE w.{_FINISHED} "
    "AND w.updated_at <= ? AND (w.updated_at < ? OR w.workflow_id < ?) "
    "AND w.updated_at >= ? AND (w.updated_at > ? OR w.workflow_id > ?) "
    "ORDER BY w.updated_at, w.workflow_id LIMIT ?"
)


def busy_parents_sql(ids_match: str) -> str:
    """Which of the listed workflows (one parameter: the dialect's ``ids_param``) have a child
    that still runs (ws_parent_created_idx)."""
    return (
        f"SELECT DISTINCT parent_workflow_id FROM workflow_status WHERE parent_workflow_id{ids_match} "
        "AND status NOT IN ('SUCCESS', 'ERROR', 'CANCELLED', 'MAX_RECOVERY_ATTEMPTS_EXCEEDED')"
    )


def delete_sql(ids_match: str) -> str:
    """Delete the listed workflows (first parameter: the dialect's ``ids_param``), each still
    finished (primary-key probes: a join with the selection could become a hash join over the
    whole table); returns each id with 1 when a step may still land for it (CANCELLED, or finished
    at or after the second parameter, epoch ms), else 0."""
    return (
        f"DELETE FROM workflow_status WHERE workflow_id{ids_match} AND {_FINISHED} "
        "RETURNING workflow_id, CASE WHEN status = 'CANCELLED' OR updated_at >= ? THEN 1 ELSE 0 END"
    )


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
        sweep_also: Sequence[str] = (),
        sweep_also_steps: Sequence[str] | None = None,
        settled_before: int | None = None,
    ) -> RetentionBatch | None:
        select, busy_parents, delete = SELECT, busy_parents_sql(self.sql.ids_match), delete_sql(self.sql.ids_match)
        ids = self.sql.ids_param
        # Collectors take turns a batch at a time, so a batch's candidates need no row locks (the
        # delete itself re-checks that each is still finished); an exclusive one first gives way
        # to any other process that holds the fleet's collector lock.
        try_lock, take_turn = self.sql.try_lock if exclusive else None, self.sql.claim_lock
        setup = self.sql.collector_setup
        start = after if after is not None else (-1, "")  # (-1, ""): before every completion
        params = (before[0], before[0], before[1], start[0], start[0], start[1], limit)
        unsettled_from = settled_before if settled_before is not None else -(1 << 62)

        def unit(tx: Tx) -> RetentionBatch | None:
            if setup is not None:
                tx.run(setup, ())
            if try_lock is not None:
                held = tx.one(try_lock, (RETENTION_LOCK_KEY,))
                if held is None or not held[0]:
                    return None
            if take_turn is not None:
                tx.run(take_turn, (RETENTION_TURN_KEY,))
            self._delete_owned(tx, sweep_also, self.sql.owned_sweeps, steps_of=sweep_also_steps)
            found = [(int(str(r[0])), str(r[1])) for r in tx.texts(select, params)]
            if not found:
                return RetentionBatch([], 0, None)
            found_ids = [i for _, i in found]
            busy = {str(r[0]) for r in tx.texts(busy_parents, (ids(found_ids),))}
            todo = [i for i in found_ids if i not in busy] if busy else found_ids
            rows = tx.texts(delete, (ids(todo), unsettled_from)) if todo else []
            deleted = [str(r[0]) for r in rows]
            self._delete_owned(tx, deleted)
            return RetentionBatch(deleted, len(found), found[-1], [str(r[0]) for r in rows if r[1] == "1"])

        return self.write(unit)

    def retention_sweep(self, workflow_ids: Sequence[str], steps_of: Sequence[str] | None = None) -> None:
        # A checkpoint or message whose existence check read a row just before its delete
        # committed (a workflow being resumed as it was deleted) may land after it.
        ids = list(workflow_ids)
        narrowed = None if steps_of is None else set(steps_of)
        for start in range(0, len(ids), _SWEEP_CHUNK):
            chunk = ids[start : start + _SWEEP_CHUNK]
            self._sweep_owned(chunk, None if narrowed is None else [i for i in chunk if i in narrowed])
