"""Retention: delete finished workflows in small batches, oldest completion first.

Finished rows are found through ``ws_finished_idx`` (migration 0018: ``updated_at`` of finished
rows only), so a batch reads the rows it deletes and little else, whatever the history holds.
Steps, messages, events and streams go with their workflow: on SQLite through its trigger and
cascades, on Postgres (no foreign keys there) by a set-wise delete per table in the same
transaction plus a sweep after it commits (``owned_deletes``). On Postgres a batch is one statement
(``retention_batch``) after the transaction's setup: a collection is thousands of batches, and
every round trip of a batch is time it holds a connection and the collectors' turn while waiting.
Every statement of a batch takes its ids as one parameter and runs on the driver's lean path
(``Tx.texts``): the collector shares its process with the application, and what it costs the
client it takes from the application's threads (the GIL). Must not import the engine or the facade."""

from __future__ import annotations

from collections.abc import Sequence

from transact.storage._base import DriverBase, Tx
from transact.storage.retention_protocol import RetentionBatch
from transact.storage.retention_sql import BOUNDARY, SELECT, busy_parents_sql, delete_sql

_SWEEP_CHUNK = 1000  # deleted ids per post-commit sweep statement
# Advisory lock key of the one collecting process of a fleet (any fixed bigint; "gc" in ASCII),
# and the key every batch of any collection holds while it runs (collectors take turns by batch).
RETENTION_LOCK_KEY = 0x7472616E73_6763
RETENTION_TURN_KEY = RETENTION_LOCK_KEY + 1


class RetentionSql(DriverBase):
    def retention_boundary(self, *, keep: int) -> tuple[int, str] | None:
        row = self.read(lambda tx: tx.one(BOUNDARY, (keep - 1,)))
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
        setup = self.sql.collector_setup_exclusive if exclusive else self.sql.collector_setup
        one_statement = self.sql.retention_batch
        start = after if after is not None else (-1, "")  # (-1, ""): before every completion
        params = (before[0], before[0], before[1], start[0], start[0], start[1], limit)
        unsettled_from = settled_before if settled_before is not None else -(1 << 62)

        def unit(tx: Tx) -> RetentionBatch | None:
            if setup is not None and exclusive:
                if tx.texts(setup, (RETENTION_LOCK_KEY, RETENTION_TURN_KEY))[0][0] != "t":
                    return None
            elif setup is not None:
                tx.run(setup, (RETENTION_TURN_KEY,))
            if one_statement is not None:
                return in_one_statement(tx, one_statement)
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

        def in_one_statement(tx: Tx, statement: str) -> RetentionBatch:
            swept = ids(sweep_also)
            steps = swept if sweep_also_steps is None else ids(sweep_also_steps)
            sweeps = (swept,) * (statement.count("?") - len(params) - 2) + (steps,)
            rows = tx.texts(statement, (*sweeps, *params, unsettled_from))
            if not rows:
                return RetentionBatch([], 0, None)
            deleted = [str(r[1]) for r in rows if r[2] is not None]
            unsettled = [str(r[1]) for r in rows if r[2] == "1"]
            return RetentionBatch(deleted, len(rows), (int(str(rows[-1][0])), str(rows[-1][1])), unsettled)

        return self.write(unit)

    def retention_sweep(self, workflow_ids: Sequence[str], steps_of: Sequence[str] | None = None) -> None:
        # A checkpoint or message whose existence check read a row just before its delete
        # committed (a workflow being resumed as it was deleted) may land after it.
        ids = list(workflow_ids)
        narrowed = None if steps_of is None else set(steps_of)
        for start in range(0, len(ids), _SWEEP_CHUNK):
            chunk = ids[start : start + _SWEEP_CHUNK]
            self._sweep_owned(chunk, None if narrowed is None else [i for i in chunk if i in narrowed])
