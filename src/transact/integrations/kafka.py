"""Kafka consumers behind ``@DBOS.kafka_consumer``: one workflow per message, offsets committed after.

Exactly once: a message's workflow id is derived from (group, topic, partition, offset) and its row
is inserted, idempotently, *before* the offset is committed (auto-commit is off). A crash between
the two redelivers the message; its start then finds the existing row and starts nothing. So a
message is never lost and never starts two workflows, also across rebalances and processes.

Must not import transact._dbos: the facade imports this module lazily, keeping confluent-kafka an
optional extra (``pip install 'transact[kafka]'``).
"""

from __future__ import annotations

import collections
import inspect
import logging
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from transact._lib.backoff import Backoff
from transact._lib.states import Hint
from transact.engine import workflow as wf
from transact.engine.registry import REGISTRY, WorkflowInfo
from transact.engine.runtime import Runtime
from transact.errors import ConfigError, WorkflowConflictError
from transact.models import KafkaMessage

__all__ = ["KafkaMessage", "KafkaService", "kafka_workflow_id", "service_for"]

log = logging.getLogger("transact.kafka")

EXTRA = "pip install 'transact[kafka]'"
BATCH = 200  # messages per consume() call; their offsets are committed together
POLL_SECONDS = 0.5  # consume() timeout: also the latency of noticing a stop request
_TOPIC = re.compile(r"^[A-Za-z0-9._-]{1,249}$")

TP = tuple[str, int]  # (topic, partition)


def require() -> ModuleType:
    """The confluent_kafka module, or an ImportError saying which extra to install."""
    try:
        import confluent_kafka
    except ImportError as exc:
        raise ImportError(
            f"@DBOS.kafka_consumer needs the confluent-kafka package; install it with {EXTRA}",
            name="confluent_kafka",
        ) from exc
    return confluent_kafka


def kafka_workflow_id(group_id: str, topic: str, partition: int, offset: int) -> str:
    """The workflow id of one message: ``kafka:<group>:<topic>:<partition>:<offset>``.

    Unambiguous although a group id may contain ``:``: topic names cannot, so the last three
    fields always split off from the right."""
    return f"kafka:{group_id}:{topic}:{partition}:{offset}"


@dataclass(frozen=True, eq=False)
class ConsumerSpec:
    info: WorkflowInfo
    config: dict[str, Any]  # passed to confluent_kafka.Consumer as is
    topics: tuple[str, ...]
    in_order: bool

    @property
    def group_id(self) -> str:
        return str(self.config["group.id"])


# -- declaration --------------------------------------------------------------------------------
def validate(config: Any, topics: Any, in_order: Any) -> tuple[dict[str, Any], tuple[str, ...]]:
    """Check a consumer declaration; return the consumer config to use and the topic tuple."""
    where = "@DBOS.kafka_consumer"
    if not isinstance(config, Mapping):
        raise ConfigError(f"{where} config must be a dict of Kafka consumer settings, got {type(config).__name__}")
    for key in ("bootstrap.servers", "group.id"):
        value = config.get(key)
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(
                f"{where} config needs {key!r} (a non-empty string), got {value!r}; e.g. "
                "{'bootstrap.servers': 'localhost:9092', 'group.id': 'orders-consumer'}"
            )
    if str(config.get("enable.auto.commit", False)).lower() not in ("false", "0"):
        raise ConfigError(
            f"{where} config must not set 'enable.auto.commit' to true: Transact commits each offset "
            "itself, after the message's workflow is recorded; remove the key"
        )
    if isinstance(topics, str | bytes) or not isinstance(topics, Sequence) or not topics:
        raise ConfigError(f"{where} topics must be a non-empty list of topic names like ['orders'], got {topics!r}")
    for topic in topics:
        if not isinstance(topic, str) or not (_TOPIC.match(topic) or (topic.startswith("^") and len(topic) > 1)):
            raise ConfigError(
                f"{where} topic {topic!r} is not a valid Kafka topic name (letters, digits, '.', '_', '-'; "
                "or a '^regex' subscription)"
            )
    if not isinstance(in_order, bool):
        raise ConfigError(f"{where} in_order must be True or False, got {in_order!r}")
    consumer_config: dict[str, Any] = {
        # A new group starts at the beginning of each partition, so nothing produced before the
        # first launch is skipped; an explicit setting wins.
        "auto.offset.reset": "earliest",
        "logger": logging.getLogger("transact.kafka.client"),
        **config,
        "enable.auto.commit": False,
    }
    _check_with_client(consumer_config)
    return consumer_config, tuple(topics)


def _check_with_client(consumer_config: dict[str, Any]) -> None:
    """Let librdkafka judge every key now (a typo fails at the decorator, not in a thread later)."""
    ck = require()
    try:
        probe = ck.Consumer({**consumer_config, "log_level": 0})
    except ck.KafkaException as exc:
        raise ConfigError(f"@DBOS.kafka_consumer config is invalid: {exc.args[0].str()}") from None
    probe.close()


def register(
    func: Callable[..., Any], config: dict[str, Any], topics: tuple[str, ...], in_order: bool, rt: Runtime | None
) -> None:
    """Record a consumer declaration; with a launched ``rt``, start consuming at once."""
    info: WorkflowInfo | None = getattr(func, "__transact_workflow__", None)
    if info is None:
        raise ConfigError(
            f"@DBOS.kafka_consumer must be stacked above @DBOS.workflow(): "
            f"{getattr(func, '__qualname__', func)!r} is not a workflow"
        )
    try:
        inspect.signature(info.func).bind(None)
    except TypeError:
        raise ConfigError(
            f"Kafka consumer workflow {info.name!r} must take exactly one argument, the KafkaMessage"
        ) from None
    spec = ConsumerSpec(info, config, topics, in_order)
    with REGISTRY.lock:
        specs: list[ConsumerSpec] = REGISTRY.kafka_consumers
        for i, other in enumerate(specs):
            if other.info.name == info.name and other.group_id == spec.group_id and other.topics == topics:
                specs[i] = spec  # the same declaration again (a module imported twice)
                break
            shared = set(other.topics) & set(topics)
            if other.group_id == spec.group_id and shared:
                raise ConfigError(
                    f"workflows {other.info.name!r} and {info.name!r} both consume topic {sorted(shared)[0]!r} "
                    f"in group {spec.group_id!r}; Kafka would give each message to only one of them. "
                    "Give each consumer its own 'group.id'"
                )
        else:
            specs.append(spec)
    if rt is not None and rt.launched:
        _attach(rt, spec)


_attach_lock = threading.Lock()


def _attach(rt: Runtime, spec: ConsumerSpec) -> None:
    """A consumer declared after launch() starts at once."""
    with _attach_lock:
        service = rt.consumers
        if service is None:
            service = rt.consumers = KafkaService(rt)
            rt.start_service(service)  # so destroy() stops it
            return
    service.add(spec)


# -- the service --------------------------------------------------------------------------------
class KafkaService:
    """One consumer thread per declared consumer; started by launch(), stopped by destroy()."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self._lock = threading.Lock()
        self._loops: list[_ConsumerLoop] = []
        self._started = False

    def start(self) -> None:
        with self._lock:
            self._started = True
        for spec in list(self.rt.registry.kafka_consumers):
            self.add(spec)

    def add(self, spec: ConsumerSpec) -> None:
        with self._lock:
            if not self._started or any(loop.spec is spec for loop in self._loops):
                return
            loop = _ConsumerLoop(self.rt, spec)
            self._loops.append(loop)
        loop.start()

    def stop(self) -> None:
        """Finish the current batch (record, commit), leave the group, close the clients."""
        with self._lock:
            self._started = False
            loops, self._loops = self._loops, []
        for loop in loops:
            loop.request_stop()
        for loop in loops:
            loop.join(timeout=15)


def service_for(rt: Runtime) -> KafkaService | None:
    """The consumer service for ``launch()``, or None when no consumer is declared."""
    if not rt.registry.kafka_consumers:
        return None
    service = KafkaService(rt)
    rt.consumers = service
    return service


class _ConsumerLoop:
    """Consume, start one workflow per message, commit; reconnect with back-off on failure.

    Only this loop's thread touches the consumer (librdkafka callbacks run inside ``consume``)."""

    def __init__(self, rt: Runtime, spec: ConsumerSpec) -> None:
        self.rt = rt
        self.spec = spec
        self.name = spec.info.name
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"transact-kafka-{self.name}", daemon=True)
        self._chains: dict[TP, _Chain] = {}  # in_order: one per assigned partition

    def start(self) -> None:
        self._thread.start()

    def request_stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("Kafka consumer for workflow %r did not stop within %s s", self.name, timeout)

    def backoff(self) -> Backoff:
        """Reconnect and retry pacing; its waits return early when the loop is asked to stop."""
        return Backoff(initial=0.5, cap=10.0, cancel=self._stop)

    def stopping(self) -> bool:
        # destroy() sets rt.stopping before it stops the services: start no new work from then on.
        return self._stop.is_set() or self.rt.stopping.is_set()

    def _run(self) -> None:
        ck = require()
        pacing = self.backoff()
        while not self.stopping():
            try:
                consumer = ck.Consumer(self.spec.config)
            except Exception:
                log.exception("cannot create the Kafka consumer for workflow %r; retrying", self.name)
                pacing.wait()
                continue
            try:
                self._serve(ck, consumer)
                pacing.reset()
            except Exception:
                log.exception("Kafka consumer for workflow %r failed; reconnecting", self.name)
                pacing.wait()
            finally:
                try:
                    self._drop_chains(ck, consumer, list(self._chains))
                    consumer.close()  # leaves the group, so its partitions move on at once
                except Exception as exc:
                    log.warning("closing the Kafka consumer for workflow %r: %s", self.name, exc)

    def _serve(self, ck: ModuleType, consumer: Any) -> None:
        def on_assign(consumer: Any, partitions: list[Any]) -> None:
            log.info(
                "Kafka consumer for workflow %r (group %r) assigned: %s",
                self.name,
                self.spec.group_id,
                ", ".join(f"{p.topic}[{p.partition}]" for p in partitions) or "-",
            )

        def on_revoke(consumer: Any, partitions: list[Any]) -> None:
            # Batches are committed before the next consume(), inside which this runs; in-order
            # chains of the lost partitions stop and commit what they finished.
            self._drop_chains(ck, consumer, [(p.topic, p.partition) for p in partitions])
            log.info("Kafka consumer for workflow %r (group %r) revoked its partitions", self.name, self.spec.group_id)

        consumer.subscribe(list(self.spec.topics), on_assign=on_assign, on_revoke=on_revoke)
        paused = False
        while not self.stopping():
            if not self.spec.in_order:
                # Back-pressure: while every workflow thread of this process is busy, pause the
                # partitions but keep polling, so the group does not expel this consumer.
                full = len(self.rt.runs.ids()) >= self.rt.settings.max_workflow_threads
                if full != paused:
                    (consumer.pause if full else consumer.resume)(consumer.assignment())
                    paused = full
            batch = consumer.consume(num_messages=BATCH, timeout=POLL_SECONDS)
            messages = self._usable(ck, batch)
            if self.spec.in_order:
                self._feed_chains(consumer, messages)
                self._commit(ck, consumer, self._finished_offsets())
            elif messages:
                self._start_batch(ck, consumer, messages)

    def _usable(self, ck: ModuleType, batch: list[Any]) -> list[Any]:
        messages = []
        for m in batch:
            err = m.error()
            if err is None:
                messages.append(m)
            elif err.code() != ck.KafkaError._PARTITION_EOF:
                if err.fatal():
                    raise ck.KafkaException(err)
                log.warning("Kafka consumer for workflow %r: %s", self.name, err.str())
        return messages

    def _commit(self, ck: ModuleType, consumer: Any, offsets: dict[TP, int]) -> bool:
        """Commit ``offsets`` (the next offset to read, per partition) synchronously."""
        if not offsets:
            return True
        try:
            consumer.commit(
                offsets=[ck.TopicPartition(t, p, off) for (t, p), off in offsets.items()], asynchronous=False
            )
        except ck.KafkaException as exc:
            # Typically a rebalance moved the partitions away: their new owner receives these
            # messages again and their starts are deduplicated by workflow id.
            log.warning("Kafka consumer for workflow %r could not commit offsets: %s", self.name, exc)
            return False
        for tp, off in offsets.items():
            chain = self._chains.get(tp)
            if chain is not None:
                chain.committed = off
        return True

    def start_workflow(self, m: Any) -> str:
        """Record (and start) the message's workflow; returns its id. Idempotent."""
        msg = to_message(m)
        wid = kafka_workflow_id(self.spec.group_id, msg.topic, msg.partition, msg.offset)
        try:
            wf.start(self.rt, self.spec.info, (msg,), {}, workflow_id=wid)
        except WorkflowConflictError as exc:
            # The id belongs to another workflow (a renamed consumer): this message was handled.
            log.error("Kafka message %s[%d]@%d not started again: %s", msg.topic, msg.partition, msg.offset, exc)
        return wid

    # -- default mode: record a batch, then commit it -------------------------------------------
    def _start_batch(self, ck: ModuleType, consumer: Any, messages: list[Any]) -> None:
        """Record every message's workflow (they run in the background), then commit the batch.

        A partition whose message cannot be recorded is rewound to it: nothing after a failure
        is committed, so each partition's committed offsets stay contiguous."""
        recorded: dict[TP, int] = {}
        retry: dict[TP, int] = {}
        for m in messages:
            tp = (m.topic(), m.partition())
            if tp in retry:
                continue
            if self.stopping():
                retry[tp] = m.offset()
                continue
            try:
                self.start_workflow(m)
            except Exception:
                log.exception("cannot record the workflow of Kafka message %s[%d]@%d", tp[0], tp[1], m.offset())
                retry[tp] = m.offset()
                continue
            recorded[tp] = m.offset() + 1
        self._commit(ck, consumer, recorded)
        if retry and not self.stopping():
            for (t, p), off in retry.items():
                try:
                    consumer.seek(ck.TopicPartition(t, p, off))
                except ck.KafkaException as exc:
                    log.warning("cannot rewind %s[%d] to offset %d: %s", t, p, off, exc)
            self._stop.wait(1.0)  # give the database a moment before the rewound messages come again

    # -- in_order mode: one chain per partition ---------------------------------------------------
    def _feed_chains(self, consumer: Any, messages: list[Any]) -> None:
        by_tp: dict[TP, list[Any]] = {}
        for m in messages:
            by_tp.setdefault((m.topic(), m.partition()), []).append(m)
        for tp, items in by_tp.items():
            chain = self._chains.get(tp)
            if chain is None:
                chain = self._chains[tp] = _Chain(self, tp)
            chain.push(items)
        for tp, chain in self._chains.items():
            # A partition whose workflows are slow stops being fetched; the others go on.
            backlog = chain.backlog()
            if not chain.paused and backlog >= CHAIN_BACKLOG:
                consumer.pause([_tp(tp)])
                chain.paused = True
            elif chain.paused and backlog < CHAIN_BACKLOG // 2:
                consumer.resume([_tp(tp)])
                chain.paused = False

    def _finished_offsets(self) -> dict[TP, int]:
        offsets = {}
        for tp, chain in self._chains.items():
            finished = chain.finished
            if finished is not None and finished + 1 != chain.committed:
                offsets[tp] = finished + 1
        return offsets

    def _drop_chains(self, ck: ModuleType, consumer: Any, tps: list[TP]) -> None:
        """Stop the chains of partitions this consumer gives up, committing what they finished."""
        chains = [self._chains.pop(tp) for tp in tps if tp in self._chains]
        for chain in chains:
            chain.cancel()
        done = {c.tp: c.finished + 1 for c in chains if c.finished is not None and c.finished + 1 != c.committed}
        self._commit(ck, consumer, done)


CHAIN_BACKLOG = 2 * BATCH  # in_order: messages queued per partition before its fetching pauses


def _tp(tp: TP) -> Any:
    return require().TopicPartition(tp[0], tp[1])


class _Chain:
    """in_order: the messages of one partition, each workflow started once the previous finished.

    Offsets are committed only up to finished workflows: after a crash the unfinished one is
    redelivered, found, and waited for before its successor starts. A worker thread runs while
    the chain has messages."""

    def __init__(self, loop: _ConsumerLoop, tp: TP) -> None:
        self.loop = loop
        self.tp = tp
        self.finished: int | None = None  # offset of the last finished workflow
        self.committed: int | None = None  # next offset, as last committed (consumer thread only)
        self.paused = False  # consumer thread only
        self._queue: collections.deque[Any] = collections.deque()
        self._lock = threading.Lock()
        self._worker: threading.Thread | None = None
        self._cancelled = False

    def backlog(self) -> int:
        return len(self._queue)

    def push(self, messages: list[Any]) -> None:
        with self._lock:
            self._queue.extend(messages)
            if self._worker is None and not self._cancelled:
                self._worker = threading.Thread(
                    target=self._work, name=f"transact-kafka-{self.tp[0]}[{self.tp[1]}]", daemon=True
                )
                self._worker.start()

    def cancel(self) -> None:
        with self._lock:
            self._cancelled = True
            self._queue.clear()

    def _halted(self) -> bool:
        return self._cancelled or self.loop.stopping()

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
                log.exception("cannot record the workflow of Kafka message %s[%d]@%d", *self.tp, m.offset())
                pacing.wait()  # then try the same message again
                continue
            pacing.reset()
            if not self._wait_finished(wid):
                continue  # halted: the loop above exits
            with self._lock:
                if self._queue and self._queue[0] is m:
                    self._queue.popleft()
                self.finished = m.offset()

    def _wait_finished(self, workflow_id: str) -> bool:
        """Wait until the workflow is terminal (or gone); False if halted first."""
        rt = self.loop.rt

        def finished() -> bool | None:
            row = rt.store.workflow_get(workflow_id)
            return True if row is None or row.is_terminal else None

        return rt.waiters.until(Hint.DONE, workflow_id, "", finished, None, halted=self._halted) is not None


def to_message(m: Any) -> KafkaMessage:
    """A confluent_kafka.Message as the plain, picklable record a workflow receives."""
    ts_type, ts = m.timestamp()
    return KafkaMessage(
        topic=m.topic(),
        partition=m.partition(),
        offset=m.offset(),
        key=m.key(),
        value=m.value(),
        headers=list(m.headers() or []),
        timestamp=ts if ts_type != 0 else None,  # 0: TIMESTAMP_NOT_AVAILABLE
    )
