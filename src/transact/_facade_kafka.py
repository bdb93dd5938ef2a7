"""DBOS facade mixin. Event processing: @DBOS.kafka_consumer (issue 8).

Classmethods here are short delegations to the engine; reach the runtime with
``transact._current.runtime()``. Must not import transact._dbos.
"""

from __future__ import annotations


class _KafkaFacade:
    pass
