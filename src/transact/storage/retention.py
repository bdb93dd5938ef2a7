"""Retention: delete finished workflows in small batches, oldest completion first.

Finished rows are found through ``ws_finished_idx`` (migration 0018: ``updated_at`` of finished
rows only), so a batch reads the rows it deletes and little else, whatever the history holds.
Steps, messages, events and streams go with their workflow: on SQLite through its trigger and
cascades, on Postgres (no foreign keys there) by a set-wise delete per table in the same
transaction plus a sweep after it commits (``owned_deletes``). On Postgres a collection has a
connection of its own (``collector_session``) and each batch is one autocommit statement on it
(``retention_batch``): a collection is thousands of batches, and every round trip of a batch is
client time taken from the application's threads (the collector shares their process and the
GIL) and time the batch holds the collectors' turn while waiting. On SQLite each batch is one write
transaction, statement by statement (in-process: no round trips). Must not import the engine or
the facade."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager

from transact.storage._base import DriverBase, Session, Tx, Withdrawn
from transact.storage.retention_protocol import BatchRequest, RetentionBatch, RetentionCollection
from transact.storage.retention_sql import BOUNDARY, SELECT, busy_parents_sql, delete_sql

_SWEEP_CHUNK = 1000  # deleted ids per post-commit sweep statement
# Advisory lock key of the one collecting process of a fleet (any fixed bigint; "gc" in ASCII),
# and the key every batch of any collection holds while it runs (collectors take turns by batch).
RETENTION_LOCK_KEY = 0x7472616E73_6763
RETENTION_TURN_KEY = RETENTION_LOCK_KEY + 1
_FOREVER = -(1 << 62)  # a settle bound before every completion: every deleted workflow is unsettled


def _bounds(request: BatchRequest) -> tuple[tuple[object, ...], int]:
    """The seven parameters of ``retention_sql.SELECT``, and the settle bound of ``UNSETTLED``."""
    before = request.before
    start = request.after if request.after is not None else (-1, "")  # (-1, ""): before every completion
    settled = request.settled_before if request.settled_before is not None else _FOREVER
    return (before[0], before[0], before[1], start[0], start[0], start[1], request.limit), settled


class _Units:
    """A collection whose batches are write transactions, statement by statement; the write
    transaction serializes collectors (SQLite's BEGIN IMMEDIATE)."""

    def __init__(self, store: DriverBase) -> None:
        self._store = store

    def batch(self, request: BatchRequest) -> RetentionBatch:
        store = self._store
        busy_parents, delete = busy_parents_sql(store.sql.ids_match), delete_sql(store.sql.ids_match)
        ids = store.sql.ids_param
        positions, unsettled_from = _bounds(request)

        def unit(tx: Tx) -> RetentionBatch:
            store._delete_owned(tx, request.sweep_also, store.sql.owned_sweeps, steps_of=request.sweep_also_steps)
            found = [(int(str(r[0])), str(r[1])) for r in tx.texts(SELECT, positions)]
            if not found:
                return RetentionBatch([], 0, None)
            found_ids = [i for _, i in found]
            busy = {str(r[0]) for r in tx.texts(busy_parents, (ids(found_ids),))}
            todo = [i for i in found_ids if i not in busy] if busy else found_ids
            rows = tx.texts(delete, (ids(todo), unsettled_from)) if todo else []
            deleted = [str(r[0]) for r in rows]
            store._delete_owned(tx, deleted)
            return RetentionBatch(deleted, len(found), found[-1], [str(r[0]) for r in rows if r[1] == "1"])

        return store.write(unit)


class _Statements:
    """A collection whose batches are one statement each on the collection's own session."""

    def __init__(self, store: DriverBase, session: Session, statement: str) -> None:
        self._store = store
        self._session = session
        self._statement = statement

    def batch(self, request: BatchRequest) -> RetentionBatch | None:
        ids = self._store.sql.ids_param
        swept = ids(request.sweep_also)
        steps = swept if request.sweep_also_steps is None else ids(request.sweep_also_steps)
        positions, unsettled_from = _bounds(request)
        rest = (RETENTION_TURN_KEY, *positions, unsettled_from)
        # Every placeholder before the turn's key takes an id list, the last the steps table's.
        sweeps = (swept,) * (self._statement.count("?") - len(rest) - 1) + (steps,)
        try:
            # Safe to run again after an outage: what an unknown outcome deleted is simply gone.
            rows = self._session.texts(self._statement, (*sweeps, *rest))
        except Withdrawn:  # reconnected, and meanwhile another process took the fleet's lock
            return None
        if not rows:
            return RetentionBatch([], 0, None)
        deleted = [str(r[1]) for r in rows if r[2] is not None]
        unsettled = [str(r[1]) for r in rows if r[2] == "1"]
        return RetentionBatch(deleted, len(rows), (int(str(rows[-1][0])), str(rows[-1][1])), unsettled)


class RetentionSql(DriverBase):
    def retention_boundary(self, *, keep: int) -> tuple[int, str] | None:
        row = self.read(lambda tx: tx.one(BOUNDARY, (keep - 1,)))
        return (int(row[0]), str(row[1])) if row is not None else None

    def retention_collection(self, *, exclusive: bool = False) -> AbstractContextManager[RetentionCollection | None]:
        return self._collection(exclusive)

    @contextlib.contextmanager
    def _collection(self, exclusive: bool) -> Iterator[RetentionCollection | None]:
        setup, statement = self.sql.collector_session, self.sql.retention_batch
        if setup is None or statement is None:
            yield _Units(self)
            return
        session = self._session(setup, (exclusive, RETENTION_LOCK_KEY))
        try:
            yield _Statements(self, session, statement) if session.open() else None
        finally:
            session.close()

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
        collection: RetentionCollection | None = None,
    ) -> RetentionBatch | None:
        request = BatchRequest(before, limit, after, sweep_also, sweep_also_steps, settled_before)
        if collection is not None:
            return collection.batch(request)
        with self.retention_collection(exclusive=exclusive) as alone:
            return None if alone is None else alone.batch(request)

    def retention_sweep(self, workflow_ids: Sequence[str], steps_of: Sequence[str] | None = None) -> None:
        # A checkpoint or message whose existence check read a row just before its delete
        # committed (a workflow being resumed as it was deleted) may land after it.
        ids = list(workflow_ids)
        narrowed = None if steps_of is None else set(steps_of)
        for start in range(0, len(ids), _SWEEP_CHUNK):
            chunk = ids[start : start + _SWEEP_CHUNK]
            self._sweep_owned(chunk, None if narrowed is None else [i for i in chunk if i in narrowed])
