"""Stream offsets and sends that reach a workflow's forks (``protocol.LateCommsStore``).

Built on ``CommsSql``: a send to the forks commits its messages together with its step outcome,
fenced like every checkpoint write. Must not import the engine.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from transact._lib.states import TERMINAL, Hint
from transact.storage._base import Tx
from transact.storage.comms import CommsSql
from transact.storage.errors import NotFound
from transact.storage.rows import StepRow

__all__ = ["LateCommsSql"]

_STATUS = "SELECT status FROM workflow_status WHERE workflow_id = ?"
_STREAM_LAST = "SELECT seq, closed FROM streams WHERE workflow_id = ? AND key = ? ORDER BY seq DESC LIMIT 1"
# The workflow and everything forked from it, at any depth (each step down is served by the
# partial index on forked_from), the workflow first, then generation by generation.
_FAMILY = (
    "WITH RECURSIVE family(workflow_id, status, depth, created_at) AS ("
    " SELECT workflow_id, status, 0, created_at FROM workflow_status WHERE workflow_id = ?"
    " UNION SELECT w.workflow_id, w.status, f.depth + 1, w.created_at FROM workflow_status w"
    " JOIN family f ON w.forked_from = f.workflow_id WHERE w.forked_from IS NOT NULL) "
    "SELECT workflow_id, status FROM family ORDER BY depth, created_at, workflow_id"
)
_DELIVER = (
    "INSERT INTO notifications (destination_id, topic, message, idempotency_key, created_at) VALUES (?, ?, ?, NULL, ?)"
)


class LateCommsSql(CommsSql):
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

    def message_send_forks(self, *, destination_id: str, topic: str, message: bytes, now: int) -> list[str]:
        """Deliver ``message`` to ``destination_id`` and to every workflow forked from it at any
        depth, skipping those that have finished, in one transaction. Returns the ids delivered to
        (the destination first, then each generation of forks in creation order). Raises NotFound
        (nothing written) when the destination does not exist. Round trips: one transaction
        (BEGIN, the family read, one batched insert, COMMIT)."""
        targets = self.write(lambda tx: _deliver(tx, destination_id, topic, message, now))
        self._hint_targets(targets, topic)
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
            targets = _deliver(tx, destination_id, topic, message, now)
            recorded = replace(step, output=output(targets))
            self._fence(tx, recorded, executor_id)
            ours.append((recorded, targets))
            return recorded

        row = self._fenced_unit(unit)
        if ours and row is ours[-1][0]:
            self._hint_targets(ours[-1][1], topic)
        return row

    def _hint_targets(self, targets: Sequence[str], topic: str) -> None:
        for ident in targets:
            self.hint(Hint.MESSAGE, ident, topic)


def _deliver(tx: Tx, destination_id: str, topic: str, message: bytes, now: int) -> list[str]:
    family = tx.all(_FAMILY, (destination_id,))
    if not family:
        raise NotFound(destination_id)  # rolls the unit back: nothing is sent
    targets = [str(r[0]) for r in family if str(r[1]) not in TERMINAL]
    tx.many(_DELIVER, [(ident, topic, message, now) for ident in targets])
    return targets
