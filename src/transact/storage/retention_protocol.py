"""The retention concern of the storage contract (``RetentionStore``), kept beside protocol.py.

Must not import the engine or the facade.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import NamedTuple, Protocol


class RetentionBatch(NamedTuple):
    """What one batch did."""

    deleted: list[str]  # the workflows deleted
    examined: int  # candidates read: deleted, or kept (a child still runs; changed meanwhile)
    last: tuple[int, str] | None  # the last candidate's position: the next batch starts after it
    # Of ``deleted``, those a step may still land for after the delete (CANCELLED, or finished at
    # or after ``settled_before``): their steps need the sweep; the others' need none.
    unsettled: list[str] = []  # a NamedTuple default, never mutated


class BatchRequest(NamedTuple):
    """One batch's arguments, as ``retention_delete`` documents them."""

    before: tuple[int, str]
    limit: int
    after: tuple[int, str] | None
    sweep_also: Sequence[str]
    sweep_also_steps: Sequence[str] | None
    settled_before: int | None


class RetentionCollection(Protocol):
    """One collection's way to the database, from ``retention_collection``: on Postgres a
    connection of its own, each batch one statement on it."""

    def batch(self, request: BatchRequest) -> RetentionBatch | None:
        """``retention_delete``'s batch; None when the collection had to give way meanwhile."""
        ...


class RetentionStore(Protocol):
    """Garbage collection of finished history (storage/retention.py)."""

    def retention_boundary(self, *, keep: int) -> tuple[int, str] | None:
        """The completion position (``updated_at`` in epoch ms, ``workflow_id``: ties in a
        millisecond are ordered by id) of the ``keep``-th most recently finished workflow
        (``keep`` >= 1): the workflows before it are beyond the newest ``keep``. None when at most
        ``keep`` workflows are finished. Walks the finished index newest first. Round trips: 1."""
        ...

    def retention_collection(self, *, exclusive: bool = False) -> AbstractContextManager[RetentionCollection | None]:
        """A collection's way to the database for its batches, closed when the block ends; None
        when ``exclusive`` and another process is collecting under that flag (on Postgres a
        session advisory lock held for the whole collection; SQLite's write lock serializes
        anyway). On Postgres: its own connection, opened here (round trips: connect and 1)."""
        ...

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
        """Examine up to ``limit`` workflows that finished (SUCCESS, ERROR, CANCELLED,
        MAX_RECOVERY_ATTEMPTS_EXCEEDED) before the completion position ``before`` (``(epoch ms,
        "")``: everything that finished before that millisecond) and, when given, after ``after``
        (where the previous batch ended: no batch walks over what earlier ones removed), oldest
        first, and delete them with their steps, the messages sent to them (read or not), events,
        streams and attributes. Never a workflow with an unfinished child, never PENDING, ENQUEUED
        or DELAYED work. Collectors take turns a batch at a time (an advisory lock on Postgres,
        SQLite's write lock), so concurrent ones delete each row once. ``collection``: the
        collection this batch belongs to (``retention_collection``); without it the batch opens
        one of its own, ``exclusive`` as there, and returns None when that one is refused. One
        short transaction; round trips: 1 on Postgres (on the collection's connection). Its own
        deleted ids' late rows are the caller's to sweep, in a later batch or by
        ``retention_sweep``. ``sweep_also``:
        workflows deleted by earlier batches, whose late rows this batch's transaction sweeps (as
        ``retention_sweep`` does), whether or not it finds anything to delete; not when it returns
        None; ``sweep_also_steps``: of those, the ones whose steps to sweep (None: all).
        ``settled_before`` (epoch ms): a workflow that finished before it and is not CANCELLED
        takes no late step (a checkpoint's fence needs it PENDING, or CANCELLED for a cancelled
        run's last step, so only a statement that began before it finished could still land one):
        the batch reports it settled (not in ``unsettled``). None: every deleted one is unsettled.
        Raises ``Cancelled`` when the database cancels the batch's statement (its
        ``statement_timeout``): nothing of the batch is kept, sweep included."""
        ...

    def retention_sweep(self, workflow_ids: Sequence[str], steps_of: Sequence[str] | None = None) -> None:
        """Delete rows of the given (deleted) workflows that a write whose existence check ran just
        before the delete committed may have landed after it (steps, messages, events, streams),
        keeping those of a new workflow that reuses an id; steps only of ``steps_of`` when given (a
        subset). Nothing on SQLite, whose keys refuse such rows. Round trips: 1 per 1,000 ids."""
        ...
