"""Kafka consumers behind ``@DBOS.kafka_consumer``: one workflow per message, offsets committed after.

Exactly once: a message's workflow id is derived from (group, topic, partition, offset) and its row
is inserted, idempotently, *before* the offset is committed (auto-commit is off). A crash between
the two redelivers the message; its start then finds the existing row and starts nothing. So a
message is never lost and never starts two workflows, also across rebalances and processes.

Options: ``ordering`` runs the workflows of one partition (``"partition"``, also spelled
``in_order=True``) or of one topic (``"topic"``) one after another, committing offsets only up to
finished workflows; ``batch_size`` is how many messages one fetch takes (their offsets are committed
together; each message still gets its own workflow); ``queue_name`` enqueues each workflow on that
queue instead of starting it at once.

Must not import transact._dbos: the facade imports this module lazily, keeping confluent-kafka an
optional extra (``pip install 'transact[kafka]'``).
"""

from __future__ import annotations

import inspect
import logging
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Literal

from transact._lib.backoff import Backoff
from transact.engine import queues
from transact.engine import workflow as wf
from transact.engine.registry import REGISTRY, WorkflowInfo
from transact.engine.runtime import Runtime
from transact.engine.starts import QueueSpec
from transact.errors import ConfigError, WorkflowConflictError
from transact.integrations._kafka_chains import TP, Chains
from transact.models import KafkaMessage

__all__ = ["KafkaMessage", "KafkaService", "kafka_workflow_id", "service_for"]

log = logging.getLogger("transact.kafka")

EXTRA = "pip install 'transact[kafka]'"
BATCH = 200  # default batch_size: messages per consume() call; their offsets are committed together
POLL_SECONDS = 0.5  # consume() timeout: also the latency of noticing a stop request
_TOPIC = re.compile(r"^[A-Za-z0-9._-]{1,249}$")

Ordering = Literal["partition", "topic"]
ORDERINGS = ("partition", "topic")


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


@dataclass(frozen=True)
class ConsumerOptions:
    ordering: Ordering | None = None  # None: every message's workflow starts at once
    batch_size: int = BATCH
    queue_name: str | None = None


@dataclass(frozen=True, eq=False)
class ConsumerSpec:
    info: WorkflowInfo
    config: dict[str, Any]  # passed to confluent_kafka.Consumer as is
    topics: tuple[str, ...]
    options: ConsumerOptions

    @property
    def group_id(self) -> str:
        return str(self.config["group.id"])


# -- declaration --------------------------------------------------------------------------------
def validate(
    config: Any, topics: Any, in_order: Any, ordering: Any = None, batch_size: Any = None, queue_name: Any = None
) -> tuple[dict[str, Any], tuple[str, ...], ConsumerOptions]:
    """Check a consumer declaration; return the consumer config to use, the topic tuple and the options."""
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
    options = _options(in_order, ordering, batch_size, queue_name)
    consumer_config: dict[str, Any] = {
        # A new group starts at the beginning of each partition, so nothing produced before the
        # first launch is skipped; an explicit setting wins.
        "auto.offset.reset": "earliest",
        "logger": logging.getLogger("transact.kafka.client"),
        **config,
        "enable.auto.commit": False,
    }
    _check_with_client(consumer_config)
    return consumer_config, tuple(topics), options


def _options(in_order: Any, ordering: Any, batch_size: Any, queue_name: Any) -> ConsumerOptions:
    where = "@DBOS.kafka_consumer"
    if not isinstance(in_order, bool):
        raise ConfigError(f"{where} in_order must be True or False, got {in_order!r}")
    if ordering is not None and ordering not in ORDERINGS:
        raise ConfigError(f"{where} ordering must be 'partition', 'topic' or None, got {ordering!r}")
    if in_order and ordering is not None:
        raise ConfigError(
            f"{where} got both in_order=True and ordering={ordering!r}; in_order=True is the older spelling "
            "of ordering='partition': pass only one of them"
        )
    if batch_size is None:
        batch_size = BATCH
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or not 1 <= batch_size <= 100_000:
        raise ConfigError(
            f"{where} batch_size must be a whole number of messages per fetch from 1 to 100000, got {batch_size!r}"
        )
    if queue_name is not None and (not isinstance(queue_name, str) or not queue_name.strip()):
        raise ConfigError(f"{where} queue_name must be the name of a queue (a non-empty string), got {queue_name!r}")
    return ConsumerOptions("partition" if in_order else ordering, batch_size, queue_name)


def _check_with_client(consumer_config: dict[str, Any]) -> None:
    """Let librdkafka judge every key now (a typo fails at the decorator, not in a thread later)."""
    ck = require()
    try:
        probe = ck.Consumer({**consumer_config, "log_level": 0})
    except ck.KafkaException as exc:
        raise ConfigError(f"@DBOS.kafka_consumer config is invalid: {exc.args[0].str()}") from None
    probe.close()


def register(
    func: Callable[..., Any],
    config: dict[str, Any],
    topics: tuple[str, ...],
    options: ConsumerOptions,
    rt: Runtime | None,
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
    spec = ConsumerSpec(info, config, topics, options)
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
        self._queue: QueueSpec | None = None
        self._ordered = (
            Chains(self, spec.options.ordering, 2 * spec.options.batch_size) if spec.options.ordering else None
        )

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

    def _resolve_queue(self) -> bool:
        """With ``queue_name``: find the queue (declared queues are registered by launch()); log why not."""
        name = self.spec.options.queue_name
        if name is None or self._queue is not None:
            return True
        try:
            config = queues.get(self.rt.store, name)
        except Exception:
            log.exception("Kafka consumer for workflow %r cannot read queue %r; retrying", self.name, name)
            return False
        if config is None:
            log.error(
                "Kafka consumer for workflow %r waits for queue %r: declare it with Queue(%r) or "
                "DBOS.register_queue(%r, ...)",
                self.name,
                name,
                name,
                name,
            )
            return False
        if config.partitioned:
            log.error(
                "Kafka consumer for workflow %r cannot enqueue on partitioned queue %r: a message has no "
                "queue partition key; use a queue declared without partition_queue=True",
                self.name,
                name,
            )
            return False
        self._queue = QueueSpec(name)
        return True

    def _run(self) -> None:
        ck = require()
        pacing = self.backoff()
        while not self.stopping():
            if not self._resolve_queue():
                pacing.wait()
                continue
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
                    if self._ordered is not None:
                        self._commit(ck, consumer, self._ordered.drop(self._ordered.partitions()))
                    consumer.close()  # leaves the group, so its partitions move on at once
                except Exception as exc:
                    log.warning("closing the Kafka consumer for workflow %r: %s", self.name, exc)

    def _serve(self, ck: ModuleType, consumer: Any) -> None:
        ordered = self._ordered

        def on_assign(consumer: Any, partitions: list[Any]) -> None:
            log.info(
                "Kafka consumer for workflow %r (group %r) assigned: %s",
                self.name,
                self.spec.group_id,
                ", ".join(f"{p.topic}[{p.partition}]" for p in partitions) or "-",
            )

        def on_revoke(consumer: Any, partitions: list[Any]) -> None:
            # Batches are committed before the next consume(), inside which this runs; ordered
            # chains forget the lost partitions and commit what they finished of them.
            if ordered is not None:
                self._commit(ck, consumer, ordered.drop([(p.topic, p.partition) for p in partitions]))
            log.info("Kafka consumer for workflow %r (group %r) revoked its partitions", self.name, self.spec.group_id)

        consumer.subscribe(list(self.spec.topics), on_assign=on_assign, on_revoke=on_revoke)
        paused = False
        while not self.stopping():
            if ordered is None and self._queue is None:
                # Back-pressure: while every workflow thread of this process is busy, pause the
                # partitions but keep polling, so the group does not expel this consumer. Enqueued
                # workflows wait in their queue instead, which paces them.
                full = len(self.rt.runs.ids()) >= self.rt.settings.max_workflow_threads
                if full != paused:
                    (consumer.pause if full else consumer.resume)(consumer.assignment())
                    paused = full
            batch = consumer.consume(num_messages=self.spec.options.batch_size, timeout=POLL_SECONDS)
            messages = self._usable(ck, batch)
            if messages:
                log.debug("Kafka consumer for workflow %r fetched %d messages", self.name, len(messages))
            if ordered is not None:
                ordered.feed(consumer, messages)
                self._commit(ck, consumer, ordered.finished_offsets())
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
        if self._ordered is not None:
            self._ordered.committed(offsets)
        return True

    def start_workflow(self, m: Any) -> str:
        """Record (and start, or enqueue) the message's workflow; returns its id. Idempotent."""
        msg = to_message(m)
        wid = kafka_workflow_id(self.spec.group_id, msg.topic, msg.partition, msg.offset)
        try:
            wf.start(self.rt, self.spec.info, (msg,), {}, queue=self._queue, workflow_id=wid)
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
        latency=m.latency(),
        leader_epoch=m.leader_epoch(),
    )
