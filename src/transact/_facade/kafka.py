"""DBOS facade: event processing with ``@DBOS.kafka_consumer``.

The consumer machinery lives in ``transact.integrations.kafka``, imported only when a consumer is
declared, so confluent-kafka stays an optional extra. Must not import transact._dbos.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal, TypeVar

from transact._facade._base import FacadeBase

F = TypeVar("F", bound=Callable[..., Any])


class KafkaFacade(FacadeBase):
    @classmethod
    def kafka_consumer(
        cls,
        config: dict[str, Any],
        topics: Sequence[str],
        in_order: bool = False,
        *,
        ordering: Literal["partition", "topic"] | None = None,
        batch_size: int | None = None,
        queue_name: str | None = None,
    ) -> Callable[[F], F]:
        """Start one workflow per message of ``topics``, exactly once, whatever the redeliveries.

        Stack it above ``@DBOS.workflow()`` on a function taking one ``KafkaMessage``. ``config``
        is a confluent-kafka consumer config (``bootstrap.servers`` and ``group.id`` required);
        offsets are committed only after each message's workflow is recorded.

        ``ordering="partition"`` (or ``in_order=True``) runs the workflows of one partition one
        after another; ``ordering="topic"`` runs those of a whole topic one after another. Without
        it every message's workflow starts at once. ``batch_size`` is how many messages one fetch
        takes (default 200; their offsets are committed together, each message still gets its own
        workflow). ``queue_name`` enqueues each message's workflow on that queue, which must be
        declared (``Queue(...)``) or registered, and not partitioned.
        """
        from transact.integrations import kafka  # lazy: raises ImportError naming the extra

        kafka.require()
        consumer_config, topic_list, options = kafka.validate(
            config, topics, in_order, ordering=ordering, batch_size=batch_size, queue_name=queue_name
        )

        def decorate(func: F) -> F:
            kafka.register(func, consumer_config, topic_list, options, cls._rt_or_none())
            return func

        return decorate
