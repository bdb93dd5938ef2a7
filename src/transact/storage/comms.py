"""Messages, events and streams: the writes that must commit together with a step checkpoint
(``protocol.CommsStore``), stream offsets and sends that reach a workflow's forks
(``late_comms_protocol.LateCommsStore``).

Each ``*_step`` method writes its row and the workflow's step outcome in one transaction, fenced
like ``step_record`` (the workflow must be PENDING and owned by the writer), so a crash can never
leave one without the other. Must not import the engine.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, TypeVar

from transact._lib.states import TERMINAL, Hint
from transact.storage._base import Tx
from transact.storage.errors import Conflict, NotFound, StreamClosed
from transact.storage.fence import FencedSql, fenced_step_params
from transact.storage.rows import StepRow, StreamItem

__all__ = ["CommsSql", "OutMessage", "StreamClosed", "StreamItem"]

# One message of a bulk send: (destination_id, topic, serialized message, idempotency_key).
OutMessage = tuple[str, str, bytes, str | None]

_SEND = (
    "INSERT INTO notifications (destination_id, topic, message, idempotency_key, created_at) "
    "SELECT ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM workflow_status WHERE workflow_id = ?) "
    "ON CONFLICT DO NOTHING RETURNING message_id"
)
_INSERT_MESSAGE = (
    "INSERT INTO notifications (destination_id, topic, message, idempotency_key, created_at) "
    "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
)
_OLDEST_UNREAD = (
    "SELECT message_id, message, idempotency_key FROM notifications "
    "WHERE destination_id = ? AND topic = ? AND consumed_at IS NULL ORDER BY message_id LIMIT 1"
)
_DELETE_MESSAGE = "DELETE FROM notifications WHERE message_id = ? AND consumed_at IS NULL"
# A keyed message stays as a tombstone so that a resend with the same key is still deduplicated.
_CONSUME_MESSAGE = "UPDATE notifications SET message = ?, consumed_at = ? WHERE message_id = ? AND consumed_at IS NULL"

_SET_EVENT = (
    "INSERT INTO workflow_events (workflow_id, key, value, updated_at) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (workflow_id, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at"
)
_GET_EVENT = "SELECT value FROM workflow_events WHERE workflow_id = ? AND key = ?"
_ALL_EVENTS = "SELECT key, value FROM workflow_events WHERE workflow_id = ? ORDER BY key"

_STREAM_LAST = "SELECT seq, closed FROM streams WHERE workflow_id = ? AND key = ? ORDER BY seq DESC LIMIT 1"
_STREAM_APPEND = "INSERT INTO streams (workflow_id, key, seq, value, closed) VALUES (?, ?, ?, ?, ?)"
_STREAM_READ = (
    "SELECT seq, value, closed FROM streams WHERE workflow_id = ? AND key = ? AND seq >= ? ORDER BY seq LIMIT ?"
)
_STATUS = "SELECT status FROM workflow_status WHERE workflow_id = ?"
# The workflow and everything forked from it, at any depth (each step down is served by the
# partial index on forked_from), the workflow first, then generation by generation.
_FAMILY = (
    "WITH RECURSIVE family(workflow_id, status, depth, created_at) AS ("
    " SELECT workflow_id, status, 0, created_at FROM workflow_status WHERE workflow_id = ?"
    " UNION SELECT w.workflow_id, w.status, f.depth + 1, w.created_at FROM workflow_status w"
    " JOIN family f ON w.forked_from = f.workflow_id WHERE w.forked_from IS NOT NULL) "
    "SELECT workflow_id, status FROM family ORDER BY depth, created_at, workflow_id"
)

T = TypeVar("T")


class _AlreadyRecorded(Exception):
    """Rolls the unit back: another run recorded this step first; its outcome counts."""

    def __init__(self, row: StepRow) -> None:
        super().__init__(row.function_name)
        self.row = row


class CommsSql(FencedSql):
    def _fence(self, tx: Tx, step: StepRow, executor_id: str) -> None:
        """Record ``step`` inside the unit, or abort it (rollback) if the write is refused."""
        if tx.run(self.sql.steps.record, fenced_step_params(step, step.workflow_id, executor_id)) != 1:
            raise _AlreadyRecorded(self._explain_step_miss(tx, step.workflow_id, step.function_id, executor_id))

    def _fenced_unit(self, unit: Callable[[Tx], T]) -> T | StepRow:
        try:
            return self.write(unit)
        except _AlreadyRecorded as exc:
            return exc.row

    # -- messages -----------------------------------------------------------------------------
    def message_send(
        self, *, destination_id: str, topic: str, message: bytes, idempotency_key: str | None, now: int
    ) -> bool:
        """Deliver a message. False when ``idempotency_key`` was already used for this destination.

        Raises NotFound when the destination workflow does not exist. Round trips: 1 (2 on a miss)."""

        def unit(tx: Tx) -> bool:
            return _insert_message(tx, destination_id, topic, message, idempotency_key, now)

        sent = self.write(unit, single=True)
        if sent:
            self.hint(Hint.MESSAGE, destination_id, topic)
        return sent

    def message_send_step(
        self,
        step: StepRow,
        *,
        executor_id: str,
        destination_id: str,
        topic: str,
        message: bytes,
        idempotency_key: str | None,
        now: int,
    ) -> StepRow | None:
        """``send`` from a workflow: the message and the step outcome commit together.

        Returns None when written, or the outcome recorded earlier at this position (nothing sent).
        Raises NotFound (nothing written) when the destination does not exist."""

        def unit(tx: Tx) -> None:
            self._fence(tx, step, executor_id)
            _insert_message(tx, destination_id, topic, message, idempotency_key, now)

        earlier = self._fenced_unit(unit)
        if earlier is None:
            self.hint(Hint.MESSAGE, destination_id, topic)
        return earlier

    def message_send_bulk(self, *, messages: Sequence[tuple[str, str, bytes, str | None]], now: int) -> None:
        """Deliver every message in one transaction, or none: raises NotFound (naming the first
        unknown destination, nothing written) when a destination does not exist. A message whose
        idempotency key was already used for its destination is skipped. Round trips: one
        transaction (BEGIN, one existence read, one batched insert, COMMIT)."""
        self.write(lambda tx: self._insert_messages(tx, messages, now))
        self._hint_messages(messages)

    def message_send_bulk_step(
        self, step: StepRow, *, executor_id: str, messages: Sequence[tuple[str, str, bytes, str | None]], now: int
    ) -> StepRow | None:
        """``message_send_bulk`` from a workflow: the messages and the step outcome commit together.
        None when written, else the outcome recorded earlier at this position (nothing sent)."""

        def unit(tx: Tx) -> None:
            self._fence(tx, step, executor_id)
            self._insert_messages(tx, messages, now)

        earlier = self._fenced_unit(unit)
        if earlier is None:
            self._hint_messages(messages)
        return earlier

    def message_send_forks(self, *, destination_id: str, topic: str, message: bytes, now: int) -> list[str]:
        """Deliver ``message`` to ``destination_id`` and to every workflow forked from it at any
        depth, skipping those that have finished, in one transaction. Returns the ids delivered to
        (the destination first, then each generation of forks in creation order). Raises NotFound
        (nothing written) when the destination does not exist. Round trips: one transaction
        (BEGIN, the family read, one batched insert, COMMIT)."""
        targets = self.write(lambda tx: _insert_to_family(tx, destination_id, topic, message, now))
        self._hint_messages([(ident, topic) for ident in targets])
        return targets

    def message_send_forks_step(
        self,
        step: StepRow,
        *,
        executor_id: str,
        destination_id: str,
        topic: str,
        message: bytes,
        now: int,
        output: Callable[[list[str]], bytes],
    ) -> StepRow:
        """``message_send_forks`` from a workflow: the messages and the step outcome (the ids
        delivered to, as ``output`` encodes them) commit together. Returns the recorded step: ours,
        or the one recorded earlier at this position (then nothing is sent). Raises NotFound
        (nothing written) when the destination does not exist."""
        ours: list[tuple[StepRow, list[str]]] = []

        def unit(tx: Tx) -> StepRow:
            targets = _insert_to_family(tx, destination_id, topic, message, now)
            recorded = replace(step, output=output(targets))
            self._fence(tx, recorded, executor_id)
            ours.append((recorded, targets))
            return recorded

        row = self._fenced_unit(unit)
        if ours and row is ours[-1][0]:
            self._hint_messages([(ident, topic) for ident in ours[-1][1]])
        return row

    def _insert_messages(self, tx: Tx, messages: Sequence[tuple[str, str, bytes, str | None]], now: int) -> None:
        wanted = list(dict.fromkeys(m[0] for m in messages))
        found = self._existing(tx, wanted)
        missing = [d for d in wanted if d not in found]
        if missing:
            raise NotFound(missing[0])  # rolls the unit back: nothing is sent
        tx.many(_INSERT_MESSAGE, [(dest, topic, data, key, now) for dest, topic, data, key in messages])

    def _hint_messages(self, messages: Sequence[tuple[Any, ...]]) -> None:
        """Wake the receivers of (destination_id, topic, ...) entries, once per pair."""
        for dest, topic in dict.fromkeys((m[0], m[1]) for m in messages):
            self.hint(Hint.MESSAGE, dest, topic)

    def message_take_step(self, step: StepRow, *, executor_id: str, topic: str, now: int) -> StepRow | None:
        """``recv``: take the oldest unread message for (``step.workflow_id``, ``topic``) and record it
        as the step's output, in one transaction fenced on ownership: each message is received once.

        Returns the recorded step (ours, or one recorded earlier at this position, in which case no
        message is taken), or None when no message is waiting. Round trips: 1 when none is waiting
        (a plain read, no write lock); otherwise that read plus one transaction (Postgres: 5 with
        BEGIN and COMMIT)."""
        args = (step.workflow_id, topic)
        candidate = self.read(lambda tx: tx.one(_OLDEST_UNREAD, args))
        if candidate is None:
            return None

        def unit(tx: Tx) -> StepRow | None:
            row: tuple[Any, ...] | None = candidate
            while row is not None:
                message_id, message, key = row
                if key is None:
                    changed = tx.run(_DELETE_MESSAGE, (message_id,))
                else:
                    changed = tx.run(_CONSUME_MESSAGE, (b"", now, message_id))
                if changed == 1:
                    taken = replace(step, output=bytes(message))
                    self._fence(tx, taken, executor_id)
                    return taken
                row = tx.one(_OLDEST_UNREAD, args)  # a concurrent taker won that one: look again
            return None

        return self._fenced_unit(unit)

    # -- events -------------------------------------------------------------------------------
    def event_set(self, *, workflow_id: str, key: str, value: bytes, now: int) -> None:
        """Set an event without a checkpoint (from inside a step, which is retried as a whole)."""
        self.write(lambda tx: tx.run(_SET_EVENT, (workflow_id, key, value, now)), single=True)
        self.hint(Hint.EVENT, workflow_id, key)

    def event_set_step(
        self, step: StepRow, *, executor_id: str, workflow_id: str, key: str, value: bytes, now: int
    ) -> StepRow | None:
        """``set_event`` from a workflow: upsert + step outcome in one transaction."""

        def unit(tx: Tx) -> None:
            self._fence(tx, step, executor_id)
            tx.run(_SET_EVENT, (workflow_id, key, value, now))

        earlier = self._fenced_unit(unit)
        if earlier is None:
            self.hint(Hint.EVENT, workflow_id, key)
        return earlier

    def event_get(self, workflow_id: str, key: str) -> bytes | None:
        """The event's serialized value, or None when it is not set. Round trips: 1."""
        row = self.read(lambda tx: tx.one(_GET_EVENT, (workflow_id, key)))
        return bytes(row[0]) if row is not None else None

    def events_get_all(self, workflow_id: str) -> dict[str, bytes]:
        rows = self.read(lambda tx: tx.all(_ALL_EVENTS, (workflow_id,)))
        return {str(r[0]): bytes(r[1]) for r in rows}

    # -- streams ------------------------------------------------------------------------------
    def stream_append(self, *, workflow_id: str, key: str, value: bytes | None, closed: bool) -> None:
        """Append without a checkpoint (from inside a step). Raises StreamClosed after a close."""
        self._retry_seq(lambda: self.write(lambda tx: _append(tx, workflow_id, key, value, closed)))
        self.hint(Hint.STREAM, workflow_id, key)

    def stream_append_step(
        self, step: StepRow, *, executor_id: str, workflow_id: str, key: str, value: bytes | None, closed: bool
    ) -> StepRow | None:
        """``write_stream``/``close_stream`` from a workflow: the item (next seq) and the step
        outcome in one transaction. Raises StreamClosed (nothing written) after a close."""

        def unit(tx: Tx) -> None:
            self._fence(tx, step, executor_id)
            _append(tx, workflow_id, key, value, closed)

        earlier = self._retry_seq(lambda: self._fenced_unit(unit))
        if earlier is None:
            self.hint(Hint.STREAM, workflow_id, key)
        return earlier

    def _retry_seq(self, attempt: Callable[[], T]) -> T:
        # Two concurrent appends to one stream may pick the same seq; the loser retries.
        for _ in range(5):
            try:
                return attempt()
            except Conflict:
                continue
        return attempt()

    def stream_offset(self, workflow_id: str, key: str) -> int | None:
        """The seq the next value of the stream will take: the number of values it holds (a close
        marker is not a value). None when the workflow does not exist. Round trips: 2 (one read unit)."""

        def unit(tx: Tx) -> int | None:
            if tx.one(_STATUS, (workflow_id,)) is None:
                return None
            last = tx.one(_STREAM_LAST, (workflow_id, key))
            if last is None:
                return 0
            return int(last[0]) if bool(last[1]) else int(last[0]) + 1

        return self.read(unit)

    def stream_read(self, workflow_id: str, key: str, from_seq: int, limit: int) -> tuple[str | None, list[StreamItem]]:
        """(writer status, items with seq >= from_seq). The status is read first: every item is
        written before the writer ends, so a terminal status plus no items means the stream is over.
        Status None: the workflow does not exist. When nothing is at or after ``from_seq`` but the
        stream was closed before it, the close marker is returned, so a reader past the end of a
        closed stream stops. Round trips: 2 (3 when nothing is at or after ``from_seq``; one read unit)."""

        def unit(tx: Tx) -> tuple[str | None, list[StreamItem]]:
            status = tx.one(_STATUS, (workflow_id,))
            rows = tx.all(_STREAM_READ, (workflow_id, key, from_seq, limit))
            if not rows and from_seq > 0:
                last = tx.one(_STREAM_LAST, (workflow_id, key))
                # Only a close before ``from_seq``: a later one was committed after the read above
                # (read committed), so items before it may have been missed; the next read has them.
                if last is not None and bool(last[1]) and int(last[0]) < from_seq:
                    rows = [(last[0], None, True)]
            items = [(int(r[0]), bytes(r[1]) if r[1] is not None else None, bool(r[2])) for r in rows]
            return (str(status[0]) if status is not None else None), items

        return self.read(unit)


def _insert_message(
    tx: Tx, destination_id: str, topic: str, message: bytes, idempotency_key: str | None, now: int
) -> bool:
    params = (destination_id, topic, message, idempotency_key, now, destination_id)
    if tx.one(_SEND, params) is not None:
        return True
    if tx.one(_STATUS, (destination_id,)) is None:
        raise NotFound(destination_id)
    return False  # the idempotency key was used before


def _insert_to_family(tx: Tx, destination_id: str, topic: str, message: bytes, now: int) -> list[str]:
    family = tx.all(_FAMILY, (destination_id,))
    if not family:
        raise NotFound(destination_id)  # rolls the unit back: nothing is sent
    targets = [str(r[0]) for r in family if str(r[1]) not in TERMINAL]
    tx.many(_INSERT_MESSAGE, [(ident, topic, message, None, now) for ident in targets])
    return targets


def _append(tx: Tx, workflow_id: str, key: str, value: bytes | None, closed: bool) -> None:
    last = tx.one(_STREAM_LAST, (workflow_id, key))
    if last is not None and bool(last[1]):
        if closed:
            return  # closing twice is harmless
        raise StreamClosed(key)
    seq = 0 if last is None else int(last[0]) + 1
    tx.run(_STREAM_APPEND, (workflow_id, key, seq, value, closed))
