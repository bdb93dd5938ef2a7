"""The storage contract's partitioned-queue claim (a concern of its own, so ``protocol.py`` stays
within its size budget). Implemented by ``queues.QueueSql``."""

from __future__ import annotations

from typing import Protocol

from transact.storage.rows import QueueClaim


class PartitionStore(Protocol):
    """Partitioned queues: which partitions have work, and claims across them (queues.py)."""

    def queue_partitions(self, *, queue_name: str) -> list[str]:
        """Partition keys with ready work, in key order (at most 1000). Round trips: 1."""
        ...

    def queue_claim_partitions(
        self,
        *,
        queue_name: str,
        executor_id: str,
        now: int,
        max_rows: int,
        after: str | None = None,
        concurrency: int | None = None,
        worker_concurrency: int | None = None,
        global_concurrency: int | None = None,
        rate_limit: int | None = None,
        rate_period_ms: int | None = None,
        app_version: str | None = None,
        application_name: str | None = None,
    ) -> QueueClaim:
        """Claim up to ``max_rows`` ready rows across a partitioned queue's partitions, round-robin
        from the one after ``after`` (each partition's first row before any second: none starves).
        Per partition: ``concurrency`` (any process), ``worker_concurrency`` (this executor),
        ``rate_limit``; queue-wide: ``global_concurrency``. Round trips: 1; under cross-process
        limits one transaction (Postgres: 4 with BEGIN/COMMIT), +2 when a limit holds work back."""
        ...
