"""Ordered Kafka consumers: chains that start a message's workflow only once the previous one finished.

``ordering="partition"`` keeps one chain per partition (partitions run side by side);
``ordering="topic"`` keeps one chain per topic, so the workflows of all its partitions run one at a
time, each partition's messages in offset order. Offsets are committed only up to finished
workflows: after a crash the unfinished message is redelivered, its workflow found by id and waited
for before its successor starts.
"""

from __future__ import annotations

import collections
import logging
import threading
from typing import Any, Protocol

from transact._lib.backoff import Backoff
from transact._lib.states import Hint
from transact.engine.runtime import Runtime

log = logging.getLogger("transact.kafka")

TP = tuple[str, int]  # (topic, partition)


class Loop(Protocol):
    """What a chain needs of its consumer loop."""

    rt: Runtime

    def start_workflow(self, m: Any) -> str: ...

    def backoff(self) -> Backoff: ...

    def stopping(self) -> bool: ...


def _tp_of(m: Any) -> TP:
    return (m.topic(), m.partition())


class Chains:
    """The chains of one consumer; every method runs on the consumer thread."""

    def __init__(self, loop: Loop, ordering: str, backlog_limit: int) -> None:
        self.loop = loop
        self.per_topic = ordering == "topic"
        self.backlog_limit = backlog_limit  # messages queued per chain before its partitions pause
        self._chains: dict[TP | str, _Chain] = {}
        self._committed: dict[TP, int] = {}  # next offset, as last committed

    def _key(self, tp: TP) -> TP | str:
        return tp[0] if self.per_topic else tp

    def partitions(self) -> list[TP]:
        return [tp for chain in self._chains.values() for tp in chain.tps]

    def feed(self, consumer: Any, messages: list[Any]) -> None:
        """Queue fetched messages on their chains; pause the partitions of chains that fall behind."""
        by_key: dict[TP | str, list[Any]] = {}
        for m in messages:
            by_key.setdefault(self._key(_tp_of(m)), []).append(m)
        for key, items in by_key.items():
            chain = self._chains.get(key)
            if chain is None:
                chain = self._chains[key] = _Chain(self.loop, str(key))
            chain.push(items)
        ck = _ck()
        for chain in self._chains.values():
            # A chain whose workflows are slow stops being fetched; the others go on.
            backlog = chain.backlog()
            if not chain.paused and backlog >= self.backlog_limit:
                consumer.pause([ck.TopicPartition(t, p) for t, p in chain.tps])
                chain.paused = True
            elif chain.paused and backlog < self.backlog_limit // 2:
                consumer.resume([ck.TopicPartition(t, p) for t, p in chain.tps])
                chain.paused = False

    def finished_offsets(self) -> dict[TP, int]:
        """The next offset to commit per partition, where it moved since the last commit."""
        offsets = {}
        for chain in self._chains.values():
            for tp, finished in chain.finished().items():
                if finished + 1 != self._committed.get(tp):
                    offsets[tp] = finished + 1
        return offsets

    def committed(self, offsets: dict[TP, int]) -> None:
        self._committed.update(offsets)

    def drop(self, tps: list[TP]) -> dict[TP, int]:
        """Forget partitions this consumer gives up; returns what they finished, still to commit.

        A chain left without partitions stops; a topic chain keeps serving its other partitions."""
        done: dict[TP, int] = {}
        for tp in tps:
            key = self._key(tp)
            chain = self._chains.get(key)
            if chain is None:
                continue
            finished = chain.drop(tp)
            if finished is not None and finished + 1 != self._committed.get(tp):
                done[tp] = finished + 1
            self._committed.pop(tp, None)
            if not chain.tps:
                chain.cancel()
                del self._chains[key]
        return done


def _ck() -> Any:
    import confluent_kafka

    return confluent_kafka


class _Chain:
    """Messages started one at a time, each once the previous one's workflow finished. A worker
    thread runs while the chain has messages."""

    def __init__(self, loop: Loop, label: str) -> None:
        self.loop = loop
        self.label = label
        self.tps: set[TP] = set()  # consumer thread only
        self.paused = False  # consumer thread only
        self._finished: dict[TP, int] = {}  # offset of the last finished workflow, per partition
        self._queue: collections.deque[Any] = collections.deque()
        self._lock = threading.Lock()
        self._worker: threading.Thread | None = None
        self._cancelled = False

    def backlog(self) -> int:
        return len(self._queue)

    def finished(self) -> dict[TP, int]:
        with self._lock:
            return dict(self._finished)

    def push(self, messages: list[Any]) -> None:
        with self._lock:
            self.tps.update(_tp_of(m) for m in messages)
            self._queue.extend(messages)
            if self._worker is None and not self._cancelled:
                self._worker = threading.Thread(target=self._work, name=f"transact-kafka-{self.label}", daemon=True)
                self._worker.start()

    def drop(self, tp: TP) -> int | None:
        """Remove partition ``tp``'s queued messages; returns its last finished offset."""
        with self._lock:
            self.tps.discard(tp)
            self._queue = collections.deque(m for m in self._queue if _tp_of(m) != tp)
            return self._finished.pop(tp, None)

    def cancel(self) -> None:
        with self._lock:
            self._cancelled = True
            self._queue.clear()

    def _halted(self) -> bool:
        return self._cancelled or self.loop.stopping()

    def _is_next(self, m: Any) -> bool:
        with self._lock:
            return bool(self._queue) and self._queue[0] is m

    def _work(self) -> None:
        pacing = self.loop.backoff()
        while True:
            with self._lock:
                if self._halted() or not self._queue:
                    self._worker = None
                    return
                m = self._queue[0]
            try:
                wid = self.loop.start_workflow(m)
            except Exception:
                log.exception(
                    "cannot record the workflow of Kafka message %s[%d]@%d", m.topic(), m.partition(), m.offset()
                )
                pacing.wait()  # then try the same message again
                continue
            pacing.reset()
            if not self._wait_finished(wid, m):
                continue  # halted, or the message's partition was dropped: the loop above decides
            with self._lock:
                if self._queue and self._queue[0] is m:
                    self._queue.popleft()
                    self._finished[_tp_of(m)] = m.offset()

    def _wait_finished(self, workflow_id: str, m: Any) -> bool:
        """Wait until the workflow is terminal (or gone); False if halted or ``m`` was dropped first."""
        rt = self.loop.rt

        def finished() -> bool | None:
            row = rt.store.workflow_get(workflow_id)
            return True if row is None or row.is_terminal else None

        def halted() -> bool:
            return self._halted() or not self._is_next(m)

        return rt.waiters.until(Hint.DONE, workflow_id, "", finished, None, halted=halted) is not None
