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
from dataclasses import dataclass, replace
from typing import Any

from transact._lib.states import Hint
from transact.storage import postgres_sql, sqlite_sql
from transact.storage._base import DriverBase, Tx
from transact.storage.rows import WORKFLOW_COLUMNS, QueueClaim
from transact.storage.workflows import OWNED, to_workflow

__all__ = ["QueueClaim", "QueueRow", "QueueSql", "claim_sql", "lock_key"]

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
def claim_sql(dialect: str, partitioned: bool, pinned: bool = False, owned: bool = False) -> str:
    """Take up to N ready rows in claim order; their timeout starts now (deadline_at).
    ``dialect``: the driver's name, whose ``claim_row_lock`` keeps concurrent claimers apart.
    ``owned``: only rows of one application (``OWNED``, bound after the version pin)."""
    row_lock = _ROW_LOCK[dialect]
    # MATERIALIZED: the candidates are picked once. As a plain IN (subquery) Postgres may rescan
    # the subquery per outer row (nested-loop semi join), and each rescan skips the rows this
    # statement already locked, so more than LIMIT rows would be claimed.
    return (
        "WITH picked(picked_id) AS MATERIALIZED (SELECT workflow_id FROM workflow_status"
        f" WHERE status = 'ENQUEUED' AND queue_name = ?{_pk(partitioned)}"
        f"{' AND app_version = ?' if pinned else ''}{OWNED if owned else ''}"
        f" ORDER BY priority, created_at LIMIT ?{row_lock})"
        " UPDATE workflow_status SET status = 'PENDING', executor_id = ?, started_at = ?, updated_at = ?,"
        " deadline_at = CASE WHEN deadline_at IS NULL AND timeout_ms IS NOT NULL"
        " THEN timeout_ms + ? ELSE deadline_at END"
        " FROM picked WHERE workflow_id = picked_id"
        f" RETURNING {WORKFLOW_COLUMNS}"
    )


@functools.cache
def partitions_claim_sql(
    dialect: str, pinned: bool, busy: bool, rated: bool, global_cap: bool, owned: bool = False
) -> str:
    """Claim across every partition of a queue in one statement, round-robin: each partition's
    ready rows are ranked (priority, then age), and rank 1 of every partition goes before rank 2
    of any, so a partition with one row is served in the same claim as one with a thousand.
    Within a rank the partitions after the last one served come first (rotation). A partition's
    rows stop at its room: concurrency (PENDING anywhere), worker room (PENDING for this
    executor) and rate room (starts in the window); the whole claim stops at ``max_rows`` and at
    the queue-wide room (``global_cap``)."""
    row_lock = _ROW_LOCK[dialect]
    ctes = [
        "ready AS (SELECT workflow_id, queue_partition_key AS pk, row_number() OVER"
        " (PARTITION BY queue_partition_key ORDER BY priority, created_at) AS rn FROM workflow_status"
        " WHERE status = 'ENQUEUED' AND queue_name = ? AND queue_partition_key IS NOT NULL"
        f"{' AND app_version = ?' if pinned else ''}{OWNED if owned else ''})"
    ]
    joins, room = "", ""
    if busy:
        ctes.append(
            "busy AS (SELECT queue_partition_key AS pk, COUNT(*) AS n,"
            " SUM(CASE WHEN executor_id = ? THEN 1 ELSE 0 END) AS mine FROM workflow_status"
            " WHERE status = 'PENDING' AND queue_name = ? GROUP BY queue_partition_key)"
        )
        joins += " LEFT JOIN busy b ON b.pk = r.pk"
        room += " AND r.rn <= ? - COALESCE(b.n, 0) AND r.rn <= ? - COALESCE(b.mine, 0)"
    if rated:
        ctes.append(
            "recent AS (SELECT queue_partition_key AS pk, COUNT(*) AS n FROM workflow_status"
            " WHERE queue_name = ? AND started_at > ? GROUP BY queue_partition_key)"
        )
        joins += " LEFT JOIN recent s ON s.pk = r.pk"
        room += " AND r.rn <= ? - COALESCE(s.n, 0)"
    ctes.append(
        "cand AS MATERIALIZED (SELECT r.workflow_id, row_number() OVER (ORDER BY r.rn,"
        " CASE WHEN r.pk > ? THEN 0 ELSE 1 END, r.pk) AS g"
        f" FROM ready r{joins} WHERE 1 = 1{room})"
    )
    cap = " AND g <= ? - (SELECT COALESCE(SUM(n), 0) FROM busy)" if global_cap else ""
    # Locked without an ORDER BY or LIMIT: cand already holds exactly the rows to take.
    ctes.append(
        "picked(picked_id) AS MATERIALIZED (SELECT workflow_id FROM workflow_status"
        f" WHERE status = 'ENQUEUED' AND workflow_id IN (SELECT workflow_id FROM cand WHERE g <= ?{cap}){row_lock})"
    )
    return (
        f"WITH {', '.join(ctes)}"
        " UPDATE workflow_status SET status = 'PENDING', executor_id = ?, started_at = ?, updated_at = ?,"
        " deadline_at = CASE WHEN deadline_at IS NULL AND timeout_ms IS NOT NULL"
        " THEN timeout_ms + ? ELSE deadline_at END"
        " FROM picked WHERE workflow_id = picked_id"
        f" RETURNING {WORKFLOW_COLUMNS}"
    )


_UNLIMITED = 1 << 30  # a room no limit reaches (stands in for "no limit" in shared SQL)
_AFTER_CLAIM = (
    "SELECT EXISTS (SELECT 1 FROM workflow_status WHERE status = 'ENQUEUED' AND queue_name = ?"
    " AND queue_partition_key IS NOT NULL),"
    " (SELECT MIN(started_at) FROM workflow_status WHERE queue_name = ? AND started_at > ?)"
)


def next_after(rows: list[tuple[str | None, int, int]], after: str | None) -> str | None:
    """The partition the rotation continues after: the last one served in claim order, given
    the claimed rows' (partition, priority, created_at)."""
    counts: dict[str, int] = {}
    for pk, _, _ in rows:
        if pk is not None:
            counts[pk] = counts.get(pk, 0) + 1
    if not counts:
        return after
    top = max(counts.values())
    deepest = [pk for pk, n in counts.items() if n == top]
    return max(deepest, key=lambda pk: (after is None or pk <= after, pk))


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


@dataclass(frozen=True)
class QueueRow:
    """A registered queue's limits (table ``queues``). None: no limit."""

    queue_name: str
    concurrency: int | None = None
    worker_concurrency: int | None = None
    rate_limit: int | None = None
    rate_period_ms: int | None = None
    priority_enabled: bool = False
    partitioned: bool = False
    poll_ms: int | None = None
    global_concurrency: int | None = None  # partitioned queues: PENDING across all partitions
    app_version: str | None = None
    created_at: int = 0
    updated_at: int = 0
    application_name: str | None = None  # the application that polls it (None: any that declares it)


# The columns a live setter may change (the registry's limits), in table order.
QUEUE_LIMITS = (
    "concurrency",
    "worker_concurrency",
    "rate_limit",
    "rate_period_ms",
    "priority_enabled",
    "partitioned",
    "poll_ms",
    "global_concurrency",
)
_QUEUE_COLUMNS = f"queue_name, {', '.join(QUEUE_LIMITS)}, app_version, created_at, updated_at, application_name"
_QUEUE_SELECT = f"SELECT {_QUEUE_COLUMNS} FROM queues"
_QUEUE_INSERT = f"INSERT INTO queues ({_QUEUE_COLUMNS}) VALUES ({', '.join('?' * 13)})"
# Another application's queue is never overwritten (the WHERE leaves it as stored).
_QUEUE_OVERWRITE = (
    " ON CONFLICT (queue_name) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in (*QUEUE_LIMITS, "app_version", "updated_at"))
    + " WHERE queues.application_name IS NULL OR queues.application_name = excluded.application_name"
    " OR excluded.application_name IS NULL"
)
# An unowned queue (registered before ownership, or by an unnamed client) becomes the registrant's.
_QUEUE_ADOPT = "UPDATE queues SET application_name = ? WHERE queue_name = ? AND application_name IS NULL"
_LATEST_VERSION = "SELECT app_version FROM executors ORDER BY started_at DESC LIMIT 1"
_QUEUE_ACTIVE = (
    "SELECT COUNT(*) FROM workflow_status WHERE queue_name = ? AND status IN ('ENQUEUED', 'PENDING', 'DELAYED')"
)
_DEDUP_OWNER = (
    "SELECT workflow_id FROM workflow_status WHERE queue_name = ? AND deduplication_id = ?"
    " AND status IN ('ENQUEUED', 'PENDING', 'DELAYED')"
)
_SET_DELAY = (
    "UPDATE workflow_status SET available_at = ?, updated_at = ?"
    " WHERE workflow_id = ? AND status = 'DELAYED' RETURNING queue_name"
)
_STATUS_OF = "SELECT status FROM workflow_status WHERE workflow_id = ?"
ON_CONFLICT = ("update_if_latest_version", "always_update", "never_update")


def _queue_row(r: tuple[object, ...]) -> QueueRow:
    def opt(v: object) -> int | None:
        return None if v is None else int(str(v))

    return QueueRow(
        queue_name=str(r[0]),
        concurrency=opt(r[1]),
        worker_concurrency=opt(r[2]),
        rate_limit=opt(r[3]),
        rate_period_ms=opt(r[4]),
        priority_enabled=bool(r[5]),
        partitioned=bool(r[6]),
        poll_ms=opt(r[7]),
        global_concurrency=opt(r[8]),
        app_version=None if r[9] is None else str(r[9]),
        created_at=int(str(r[10])),
        updated_at=int(str(r[11])),
        application_name=None if r[12] is None else str(r[12]),
    )


def _queue_values(row: QueueRow) -> tuple[object, ...]:
    return (
        row.queue_name,
        row.concurrency,
        row.worker_concurrency,
        row.rate_limit,
        row.rate_period_ms,
        int(row.priority_enabled),
        int(row.partitioned),
        row.poll_ms,
        row.global_concurrency,
        row.app_version,
        row.created_at,
        row.updated_at,
        row.application_name,
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
        application_name: str | None = None,
    ) -> QueueClaim:
        """Move up to ``max_rows`` ready rows of a queue (partition) to PENDING for ``executor_id``.

        ``concurrency`` caps the rows PENDING in the queue across every process; ``rate_limit``
        caps starts within the last ``rate_period_ms``. Both apply per partition when
        ``partition_key`` is given. Round trips: 1 without global limits; with them a transaction
        of 3 on Postgres (lock, counts, claim; 5 with BEGIN and COMMIT) and 2 on SQLite, plus 1 to
        list the slot holders when the concurrency limit is reached. ``app_version``: only claim work
        enqueued under that version (pinned apps). ``application_name``: only rows that application
        owns, or that have no owner."""
        part = partition_key is not None
        claim = claim_sql(self.dialect, part, app_version is not None, application_name is not None)
        owner = (application_name,) if application_name is not None else ()

        def claim_params(n: int) -> tuple[object, ...]:
            keys = (queue_name, partition_key) if part else (queue_name,)
            pin = (app_version,) if app_version is not None else ()
            return (*keys, *pin, *owner, n, executor_id, now, now, now)

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
        """Claim across every partition of a partitioned queue, round-robin (partitions_claim_sql).
        Per partition: ``concurrency`` (PENDING in any process), ``worker_concurrency`` (PENDING
        for ``executor_id``), ``rate_limit`` per ``rate_period_ms``; queue-wide:
        ``global_concurrency`` and ``max_rows``. ``after``: the partition the rotation continues
        after (``QueueClaim.after`` of the previous claim). Under a cross-process limit the claim
        runs under the queue's advisory lock (Postgres) or BEGIN IMMEDIATE (SQLite).
        ``application_name``: only rows that application owns, or that have no owner."""
        busy = concurrency is not None or worker_concurrency is not None or global_concurrency is not None
        rated = rate_limit is not None and rate_period_ms is not None
        pinned = app_version is not None
        owned = application_name is not None
        sql = partitions_claim_sql(self.dialect, pinned, busy, rated, global_concurrency is not None, owned)
        window_start = now - (rate_period_ms or 0)
        # In the statement's order: ready, busy, recent, the rotation, the rooms, the caps, the update.
        params: list[object] = [
            queue_name,
            *((app_version,) if pinned else ()),
            *((application_name,) if owned else ()),
        ]
        params += [executor_id, queue_name] if busy else []
        params += [queue_name, window_start] if rated else []
        params.append(after)
        params += [concurrency or _UNLIMITED, worker_concurrency or _UNLIMITED] if busy else []
        params += [rate_limit] if rated else []
        params.append(max_rows)
        if global_concurrency is not None:
            params.append(global_concurrency)
        params += [executor_id, now, now, now]
        shared = concurrency is not None or global_concurrency is not None or rated

        def finish(tx: Tx | None, raw: list[Any]) -> QueueClaim:
            rows = [to_workflow(r) for r in raw]
            nxt = next_after([(r.queue_partition_key, r.priority, r.created_at) for r in rows], after)
            if tx is None or len(rows) == max_rows:
                return QueueClaim(rows, after=nxt)
            state = tx.one(_AFTER_CLAIM, (queue_name, queue_name, window_start if rated else now))
            if state is None or not state[0]:
                return QueueClaim(rows, after=nxt)  # ran dry: no limit holds work back
            held = None
            if concurrency is not None or global_concurrency is not None:
                held = tuple(str(r[0]) for r in tx.all(_running_sql(False), (queue_name,)))
            retry_at = None
            if rated and rate_period_ms is not None:
                retry_at = (now if state[1] is None else min(int(str(state[1])), now)) + rate_period_ms
            return QueueClaim(rows, held, retry_at, after=nxt)

        if not shared:
            raw = self.write(lambda tx: tx.all(sql, params), single=True)
            return finish(None, raw)
        lock = self.sql.claim_lock

        def unit(tx: Tx) -> QueueClaim:
            if lock is not None:
                tx.one(lock, (lock_key(queue_name, None),))
            return finish(tx, tx.all(sql, params))

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

    # -- the queue registry -------------------------------------------------------------------
    def queue_register(self, row: QueueRow, *, on_conflict: str) -> tuple[QueueRow, bool]:
        """Create queue ``row.queue_name`` with ``row``'s limits, or resolve the clash with the
        stored queue: ``always_update`` overwrites it, ``never_update`` keeps it, and
        ``update_if_latest_version`` overwrites it only when ``row.app_version`` is the version of
        the most recently started executor (an older deploy still running cannot revert a newer
        one's limits). Returns (stored row, written). Hints ``qconf`` when written. A queue another
        application owns (``application_name``) is never changed: the stored row comes back with
        its owner, for the caller to refuse; an unowned one becomes ``row.application_name``'s.

        Round trips: 1 transaction (2 statements; 3 for ``update_if_latest_version``; +1 to adopt
        an unowned queue)."""
        if on_conflict not in ON_CONFLICT:
            raise ValueError(f"on_conflict must be one of {ON_CONFLICT}, got {on_conflict!r}")

        def unit(tx: Tx) -> tuple[QueueRow, bool]:
            overwrite = on_conflict == "always_update"
            if on_conflict == "update_if_latest_version":
                latest = tx.one(_LATEST_VERSION, ())
                overwrite = latest is None or latest[0] is None or latest[0] == row.app_version
            tail = _QUEUE_OVERWRITE if overwrite else " ON CONFLICT (queue_name) DO NOTHING"
            written = tx.run(_QUEUE_INSERT + tail, _queue_values(row)) == 1
            stored = tx.one(f"{_QUEUE_SELECT} WHERE queue_name = ?", (row.queue_name,))
            assert stored is not None
            found = _queue_row(tuple(stored))
            if found.application_name is None and row.application_name is not None:
                tx.run(_QUEUE_ADOPT, (row.application_name, row.queue_name))
                found = replace(found, application_name=row.application_name)
            return found, written

        stored, written = self.write(unit)
        if written:
            self.hint(Hint.QUEUE_CONFIG, row.queue_name)
        return stored, written

    def queue_get(self, *, queue_name: str) -> QueueRow | None:
        """The registered queue, or None. Round trips: 1."""
        row = self.read(lambda tx: tx.one(f"{_QUEUE_SELECT} WHERE queue_name = ?", (queue_name,)))
        return None if row is None else _queue_row(tuple(row))

    def queue_list(self) -> list[QueueRow]:
        """Every registered queue, by name. Round trips: 1."""
        rows = self.read(lambda tx: tx.all(f"{_QUEUE_SELECT} ORDER BY queue_name", ()))
        return [_queue_row(tuple(r)) for r in rows]

    def queue_update(self, *, queue_name: str, changes: dict[str, object], now: int) -> QueueRow | None:
        """Set some limits (columns of ``QUEUE_LIMITS``) of a registered queue; the others stay.
        Returns the stored row, or None when no such queue. Hints ``qconf``. Round trips: 1."""
        bad = set(changes) - set(QUEUE_LIMITS)
        if bad:
            raise ValueError(f"not queue limits: {sorted(bad)}")
        cols = list(changes)
        values = [int(v) if isinstance(v, bool) else v for v in changes.values()]
        sets = ", ".join(f"{c} = ?" for c in (*cols, "updated_at"))
        sql = f"UPDATE queues SET {sets} WHERE queue_name = ? RETURNING {_QUEUE_COLUMNS}"
        row = self.write(lambda tx: tx.one(sql, (*values, now, queue_name)), single=True)
        if row is None:
            return None
        self.hint(Hint.QUEUE_CONFIG, queue_name)
        return _queue_row(tuple(row))

    def queue_delete(self, *, queue_name: str) -> tuple[bool, int]:
        """Delete a registered queue unless workflows still wait or run in it:
        (deleted, active workflows). Nothing is deleted while any is active. Round trips: 1
        transaction (2 statements)."""

        def unit(tx: Tx) -> tuple[bool, int]:
            active = tx.one(_QUEUE_ACTIVE, (queue_name,))
            n = int(active[0]) if active is not None else 0
            if n:
                return False, n
            return tx.run("DELETE FROM queues WHERE queue_name = ?", (queue_name,)) == 1, 0

        deleted, active = self.write(unit)
        if deleted:
            self.hint(Hint.QUEUE_CONFIG, queue_name)
        return deleted, active

    def queue_dedup_owner(self, *, queue_name: str, deduplication_id: str) -> str | None:
        """The id of the active workflow holding ``deduplication_id`` in the queue, if any."""
        row = self.read(lambda tx: tx.one(_DEDUP_OWNER, (queue_name, deduplication_id)))
        return None if row is None else str(row[0])

    def queue_set_delay(self, *, workflow_id: str, available_at: int, now: int) -> str | None:
        """Move a DELAYED workflow's due time to ``available_at``. Returns None when done, else
        the workflow's status ("" when it does not exist). Hints ``queue`` (``delayed``).

        Round trips: 1 (2 when the workflow is not DELAYED)."""
        row = self.write(lambda tx: tx.one(_SET_DELAY, (available_at, now, workflow_id)), single=True)
        if row is not None:
            self.hint(Hint.QUEUE, str(row[0]), "delayed")
            return None
        status = self.read(lambda tx: tx.one(_STATUS_OF, (workflow_id,)))
        return "" if status is None else str(status[0])
