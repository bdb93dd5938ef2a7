"""Queue rows: claim ready work under global and rate limits, promote delayed work, probe cheaply.

Claim order is ``(priority, created_at)`` on ``ws_queue_ready_idx`` (``ws_queue_partition_ready_idx``
per partition). A claim without a global limit is one statement (Postgres: ``FOR UPDATE SKIP
LOCKED``, so concurrent claimers take disjoint rows). A claim under a global concurrency or rate
limit is one transaction under a per-queue (per-partition) advisory lock: without it two claimers
could count the same running rows and together exceed the limit. Under READ COMMITTED each
statement takes a fresh snapshot, so the count read after the lock sees every earlier claim.
SQLite writes are ``BEGIN IMMEDIATE``, which serializes claims the same way. The row lock and
the advisory lock are the dialect's (``sql.claim_row_lock``, ``sql.claim_lock``).
Must not import the engine or the facade.
"""

from __future__ import annotations

import functools
import hashlib

from transact._lib.states import Hint
from transact.storage import postgres_sql, sqlite_sql
from transact.storage._base import DriverBase, Tx
from transact.storage.rows import WORKFLOW_COLUMNS, QueueClaim
from transact.storage.workflows import to_workflow

__all__ = ["QueueClaim", "QueueSql", "claim_sql", "lock_key"]

_PARTITIONS_MAX = 1000
_ROW_LOCK = {sql.name: sql.claim_row_lock for sql in (sqlite_sql.SQL, postgres_sql.SQL)}


@functools.lru_cache(maxsize=4096)
def lock_key(queue_name: str, partition_key: str | None) -> int:
    """A stable signed 64-bit advisory-lock key per (queue, partition)."""
    text = f"transact-queue\x00{queue_name}\x00{partition_key or ''}"
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big", signed=True)


def _pk(partitioned: bool) -> str:
    return " AND queue_partition_key = ?" if partitioned else ""


@functools.cache
def claim_sql(dialect: str, partitioned: bool, pinned: bool = False) -> str:
    """Take up to N ready rows in claim order; their timeout starts now (deadline_at).
    ``dialect``: the driver's name, whose ``claim_row_lock`` keeps concurrent claimers apart."""
    row_lock = _ROW_LOCK[dialect]
    # MATERIALIZED: the candidates are picked once. As a plain IN (subquery) Postgres may rescan
    # the subquery per outer row (nested-loop semi join), and each rescan skips the rows this
    # statement already locked, so more than LIMIT rows would be claimed.
    return (
        "WITH picked(picked_id) AS MATERIALIZED (SELECT workflow_id FROM workflow_status"
        f" WHERE status = 'ENQUEUED' AND queue_name = ?{_pk(partitioned)}"
        f"{' AND app_version = ?' if pinned else ''}"
        f" ORDER BY priority, created_at LIMIT ?{row_lock})"
        " UPDATE workflow_status SET status = 'PENDING', executor_id = ?, started_at = ?, updated_at = ?,"
        " deadline_at = CASE WHEN deadline_at IS NULL AND timeout_ms IS NOT NULL"
        " THEN timeout_ms + ? ELSE deadline_at END"
        " FROM picked WHERE workflow_id = picked_id"
        f" RETURNING {WORKFLOW_COLUMNS}"
    )


@functools.cache
def _state_sql(partitioned: bool, concurrency: bool, rate: bool) -> str:
    """Running count (global concurrency) and starts inside the rate window, in one statement."""
    pk = _pk(partitioned)
    running = (
        f"(SELECT COUNT(*) FROM workflow_status WHERE status = 'PENDING' AND queue_name = ?{pk})"
        if concurrency
        else "0"
    )
    window = f"FROM workflow_status WHERE queue_name = ?{pk} AND started_at > ?"
    started = f"(SELECT COUNT(*) {window}), (SELECT MIN(started_at) {window})" if rate else "0, NULL"
    return f"SELECT {running}, {started}"


@functools.cache
def _running_sql(partitioned: bool) -> str:
    return f"SELECT workflow_id FROM workflow_status WHERE status = 'PENDING' AND queue_name = ?{_pk(partitioned)}"


_PROBE = (
    "SELECT EXISTS (SELECT 1 FROM workflow_status WHERE status = 'ENQUEUED' AND queue_name = ?),"
    " (SELECT MIN(available_at) FROM workflow_status WHERE status = 'DELAYED' AND queue_name = ?)"
)
_NEXT_DUE = "SELECT MIN(available_at) FROM workflow_status WHERE status = 'DELAYED' AND queue_name = ?"
_PROMOTE = (
    "UPDATE workflow_status SET status = 'ENQUEUED', updated_at = ?"
    " WHERE status = 'DELAYED' AND queue_name = ? AND available_at <= ?"
)
# A loose index scan: one index probe per distinct partition instead of reading every ready row.
_PARTITIONS = (
    "WITH RECURSIVE p(k) AS ("
    " SELECT MIN(queue_partition_key) FROM workflow_status"
    " WHERE status = 'ENQUEUED' AND queue_name = ? AND queue_partition_key IS NOT NULL"
    " UNION ALL SELECT (SELECT MIN(queue_partition_key) FROM workflow_status"
    " WHERE status = 'ENQUEUED' AND queue_name = ? AND queue_partition_key > p.k)"
    " FROM p WHERE p.k IS NOT NULL)"
    " SELECT k FROM p WHERE k IS NOT NULL LIMIT ?"
)
_RELEASE = (
    "UPDATE workflow_status SET status = 'ENQUEUED', executor_id = NULL, started_at = NULL, updated_at = ?"
    " WHERE workflow_id = ? AND status = 'PENDING' AND executor_id = ? RETURNING queue_name"
)


class QueueSql(DriverBase):
    def queue_claim(
        self,
        *,
        queue_name: str,
        partition_key: str | None,
        executor_id: str,
        now: int,
        max_rows: int,
        concurrency: int | None = None,
        rate_limit: int | None = None,
        rate_period_ms: int | None = None,
        app_version: str | None = None,
    ) -> QueueClaim:
        """Move up to ``max_rows`` ready rows of a queue (partition) to PENDING for ``executor_id``.

        ``concurrency`` caps the rows PENDING in the queue across every process; ``rate_limit``
        caps starts within the last ``rate_period_ms``. Both apply per partition when
        ``partition_key`` is given. Round trips: 1 without global limits; with them a transaction
        of 3 on Postgres (lock, counts, claim; 5 with BEGIN and COMMIT) and 2 on SQLite, plus 1 to
        list the slot holders when the concurrency limit is reached. ``app_version``: only claim work enqueued under that version (pinned apps)."""
        part = partition_key is not None
        claim = claim_sql(self.dialect, part, app_version is not None)

        def claim_params(n: int) -> tuple[object, ...]:
            keys = (queue_name, partition_key) if part else (queue_name,)
            pin = (app_version,) if app_version is not None else ()
            return (*keys, *pin, n, executor_id, now, now, now)

        if concurrency is None and rate_limit is None:
            rows = self.write(lambda tx: tx.all(claim, claim_params(max_rows)), single=True)
            return QueueClaim([to_workflow(r) for r in rows])

        rated = rate_limit is not None and rate_period_ms is not None
        window_start = now - (rate_period_ms or 0)
        keys = (queue_name, partition_key) if part else (queue_name,)
        state_params: tuple[object, ...] = (
            *(keys if concurrency is not None else ()),
            *((*keys, window_start, *keys, window_start) if rated else ()),
        )

        lock = self.sql.claim_lock

        def unit(tx: Tx) -> QueueClaim:
            if lock is not None:
                tx.one(lock, (lock_key(queue_name, partition_key),))
            state = tx.one(_state_sql(part, concurrency is not None, rated), state_params)
            assert state is not None
            running, started, oldest = int(state[0]), int(state[1]), state[2]
            concurrency_room = concurrency - running if concurrency is not None else max_rows
            rate_room = rate_limit - started if rated and rate_limit is not None else max_rows
            allowed = max(0, min(max_rows, concurrency_room, rate_room))
            by_concurrency = concurrency is not None and concurrency_room <= allowed
            by_rate = rated and rate_room <= allowed
            rows = [to_workflow(r) for r in tx.all(claim, claim_params(allowed))] if allowed else []
            if len(rows) < allowed:
                return QueueClaim(rows)  # the queue ran dry before any limit did
            held = None
            if by_concurrency:
                held = tuple(str(r[0]) for r in tx.all(_running_sql(part), keys))
            retry_at = None
            if by_rate and rate_period_ms is not None:
                first = now if oldest is None else min(int(oldest), now)
                retry_at = first + rate_period_ms
            return QueueClaim(rows, held, retry_at)

        return self.write(unit)

    def queue_probe(self, *, queue_name: str) -> tuple[bool, int | None]:
        """(ready work exists, earliest available_at of delayed work). A read: takes no lock.

        Round trips: 1."""
        row = self.read(lambda tx: tx.one(_PROBE, (queue_name, queue_name)))
        assert row is not None
        return bool(row[0]), None if row[1] is None else int(row[1])

    def queue_promote(self, *, queue_name: str, now: int) -> int | None:
        """Make delayed work that is due ready (ENQUEUED). Returns the next due time, if any.

        Round trips: 2 (two statements, each atomic alone: the next due time only says when to
        look again, so a row enqueued in between is at worst found one pass early)."""
        promoted = self.write(lambda tx: tx.run(_PROMOTE, (now, queue_name, now)), single=True)
        if promoted:
            self.hint(Hint.QUEUE, queue_name, "")
        row = self.read(lambda tx: tx.one(_NEXT_DUE, (queue_name,)))
        return None if row is None or row[0] is None else int(row[0])

    def queue_partitions(self, *, queue_name: str) -> list[str]:
        """Partition keys that have ready work, in key order (at most 1000)."""
        rows = self.read(lambda tx: tx.all(_PARTITIONS, (queue_name, queue_name, _PARTITIONS_MAX)))
        return [str(r[0]) for r in rows]

    def queue_release(self, *, workflow_id: str, executor_id: str, now: int) -> bool:
        """Give a claimed but unstarted workflow back to its queue (ENQUEUED, unowned)."""
        row = self.write(lambda tx: tx.one(_RELEASE, (now, workflow_id, executor_id)), single=True)
        if row is None:
            return False
        self.hint(Hint.QUEUE, str(row[0]), "requeued")
        return True
