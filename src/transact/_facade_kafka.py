"""DBOS facade mixin for event processing: ``@DBOS.kafka_consumer`` and the ``KafkaMessage`` type.

The consumer machinery lives in ``transact.integrations.kafka``, imported only when a consumer is
declared, so confluent-kafka stays an optional extra. Must not import transact._dbos.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class KafkaMessage:
    """One Kafka record, the single argument of a ``@DBOS.kafka_consumer`` workflow.

    ``key``/``value`` are the raw bytes (None when absent); ``timestamp`` is epoch milliseconds,
    or None when the record carries none.
    """

    topic: str
    partition: int
    offset: int
    key: bytes | None = None
    value: bytes | None = None
    headers: list[tuple[str, bytes | None]] = field(default_factory=list)
    timestamp: int | None = None


class _KafkaFacade:
    @classmethod
    def kafka_consumer(cls, config: dict[str, Any], topics: Sequence[str], in_order: bool = False) -> Callable[[F], F]:
        """Start one workflow per message of ``topics``, exactly once, whatever the redeliveries.

        Stack it above ``@DBOS.workflow()`` on a function taking one ``KafkaMessage``. ``config``
        is a confluent-kafka consumer config (``bootstrap.servers`` and ``group.id`` required);
        offsets are committed only after each message's workflow is recorded. ``in_order=True``
        runs the workflows of one partition one after another.
        """
        from transact.integrations import kafka  # lazy: raises ImportError naming the extra

        kafka.require()
        consumer_config, topic_list = kafka.validate(config, topics, in_order)

        def decorate(func: F) -> F:
            kafka.register(func, consumer_config, topic_list, in_order)
            return func

        return decorate
