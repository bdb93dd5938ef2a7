"""Retention: delete finished workflows beyond a time or count limit, in small batches.

``garbage_collect`` (``DBOS.garbage_collect``, ``DBOSClient.garbage_collect``, ``transact workflow
gc``) collects once, now; ``RetentionService`` collects every ``interval_seconds`` in the
background when config ``retention`` is set. A workflow is collected once it has finished
(SUCCESS, ERROR, CANCELLED, MAX_RECOVERY_ATTEMPTS_EXCEEDED) before the time limit, or when it is
not among the ``rows_threshold`` most recently finished; PENDING, ENQUEUED and DELAYED work and a
finished parent whose child still runs are kept. Each batch is one short transaction (storage:
``retention_delete``); concurrent collectors delete disjoint rows. The background service collects
in one process of a fleet at a time (a session advisory lock on Postgres, held for the whole
collection; SQLite's write lock serializes).
Transaction outcome rows in the application database are not touched. Must not import the facade.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable

from transact._lib import checks
from transact.engine import clock
from transact.engine.loop import LoopService
from transact.engine.runtime import Runtime
from transact.errors import TransactError
from transact.storage import Cancelled, Store

log = logging.getLogger("transact.retention")

# Workflows per batch (~11 rows each). The workload's tail follows how long each batch holds the
# server more than how much rest lies between batches: measured at 1,000,000 rows on Postgres
# (bench.history_bench, 2 vCPUs), the workload's p99 rose 1.8-2.6x with 200 per batch, 1.3-1.8x
# with 100, 1.3-1.6x with 50 and 1.2-1.5x with 40, which still collects 20,700-25,700 workflows/s
# beside it (30: 20,000-21,000/s for no gentler tail).
BATCH = 40
# After each batch the collector rests for this fraction of the batch's own time, so the live
# workload keeps most of the database while a long history is collected. Measured, not monotonic:
# more rest (0.6, 1.0) collected slower without lowering the workload's p99 (bench/RESULTS.md).
PACE = 0.5
_rest = time.sleep  # a seam for tests
# A batch's late rows (a write whose existence check ran just before the delete committed) are
# swept inside the transaction of the batch this many later: later is surer (the write has had
# time to land), and one batch's ids per transaction keeps every batch the same size of work,
# where a sweep of many batches at once is a long statement the workload's tail feels.
SWEEP_DELAY = 8
# A workflow that finished this long before the collection started, and was not cancelled, takes
# no late step: a checkpoint's fence needs it PENDING, so only a checkpoint statement that began
# before it finished could land one, and none runs for minutes (the margin also covers skew
# between the finishing process's clock and the collector's). Its steps are not swept, which
# saves the sweep a visit to every deleted step (about a quarter of a collection's database time).
SETTLE_MS = 10 * 60_000
# A batch the database cancels (statement_timeout) runs again at half the size; after this many
# batches in a row go through, the size doubles again, up to the one asked for.
REGROW_AFTER = 8
# A batch of one workflow cancelled this many times in a row ends the collection: the timeout in
# effect is too short for any batch (or the locks it waits for are held that long).
CANCELS_AT_ONE = 3
_EVERYTHING = (1 << 62, "")  # later than any completion (rows_threshold=0: keep none)
_DAY_MS = 86_400_000


def cutoff(store: Store, *, cutoff_epoch_ms: int | None, rows_threshold: int | None) -> tuple[int, str] | None:
    """The completion position ((epoch ms, workflow id): ties in a millisecond ordered by id)
    before which finished workflows go: the later of the two limits (either one alone suffices to
    collect a workflow). None: no limit given, or nothing beyond it."""
    limits: list[tuple[int, str]] = []
    if cutoff_epoch_ms is not None:
        limits.append((cutoff_epoch_ms, ""))
    if rows_threshold is not None:
        boundary = _EVERYTHING if rows_threshold == 0 else store.retention_boundary(keep=rows_threshold)
        if boundary is not None:
            limits.append(boundary)
    return max(limits) if limits else None


def garbage_collect(
    store: Store,
    cutoff_epoch_ms: int | None = None,
    rows_threshold: int | None = None,
    *,
    batch: int = BATCH,
    pace: float = PACE,
    exclusive: bool = False,
    halted: Callable[[], bool] = lambda: False,
) -> int:
    """Delete every finished workflow that finished before ``cutoff_epoch_ms`` or is not among
    the ``rows_threshold`` most recently finished (a millisecond's ties ordered by workflow id).
    Returns how many were deleted. ``pace``: after each batch, rest for this fraction of the
    batch's time (0: collect flat out). ``exclusive``: give way when another process is collecting."""
    checks.optional_count(cutoff_epoch_ms, "garbage_collect cutoff_epoch_ms")
    checks.optional_count(rows_threshold, "garbage_collect rows_threshold")
    checks.count(batch, "garbage_collect batch", minimum=1)
    if isinstance(pace, bool) or not isinstance(pace, int | float) or not 0 <= pace < math.inf:
        raise checks.fail("garbage_collect pace", "a finite number >= 0 (0: no rest between batches)", pace)
    before = cutoff(store, cutoff_epoch_ms=cutoff_epoch_ms, rows_threshold=rows_threshold)
    if before is None:
        return 0
    total = 0
    after: tuple[int, str] | None = None  # where the last batch ended: the next starts there
    settled_before = clock.now_ms() - SETTLE_MS
    # Per batch, oldest first: (deleted, those of them whose steps the sweep takes), not yet swept.
    unswept: deque[tuple[list[str], list[str]]] = deque()
    size = _BatchSize(batch)
    with store.retention_collection(exclusive=exclusive) as collection:
        if collection is None:  # another process holds the collector's lock: it does this work
            return 0
        try:
            while not halted():
                started = time.monotonic()
                due, due_steps = unswept[0] if len(unswept) >= SWEEP_DELAY else ([], [])
                limit = size.now
                try:
                    done = store.retention_delete(
                        before=before,
                        limit=limit,
                        after=after,
                        sweep_also=due,
                        sweep_also_steps=due_steps,
                        settled_before=settled_before,
                        collection=collection,
                    )
                except Cancelled as exc:  # the batch is one statement: nothing of it was kept
                    size.cancelled(exc)
                else:
                    if done is None:  # it lost the lock in an outage, and another process took it
                        break
                    size.went_through()
                    if due:
                        unswept.popleft()
                    total += len(done.deleted)
                    if done.deleted:
                        unswept.append((done.deleted, done.unsettled))
                    if done.examined < limit or done.last is None:
                        break
                    after = done.last
                if pace > 0:  # after a cancelled batch too: the server just spent its timeout on it
                    _rest((time.monotonic() - started) * pace)
        finally:
            if unswept:
                store.retention_sweep([i for ids, _ in unswept for i in ids], [i for _, ids in unswept for i in ids])
    return total


class _BatchSize:
    """One collection's batch size: halved when the database cancels a batch (its
    ``statement_timeout``), so a strict timeout slows the collection instead of stopping it, and
    doubled again, up to the size asked for, after ``REGROW_AFTER`` batches in a row go through.
    A batch of one cancelled ``CANCELS_AT_ONE`` times in a row ends the collection with the fix."""

    def __init__(self, asked: int) -> None:
        self.asked = self.now = asked
        self._through = 0  # batches in a row that went through at this size
        self._cancelled_at_one = 0

    def cancelled(self, exc: Cancelled) -> None:
        self._through = 0
        if self.now > 1:
            log.warning(
                "retention: %s; going on with batches of %d workflows instead of %d", exc, self.now // 2, self.now
            )
            self.now //= 2
            return
        self._cancelled_at_one += 1
        if self._cancelled_at_one >= CANCELS_AT_ONE:
            raise TransactError(
                f"retention: the database cancelled a garbage-collection batch of a single workflow "
                f"{self._cancelled_at_one} times in a row ({exc}); the statement_timeout in effect (the role's or "
                "the database's, or `options` in the URL or PGOPTIONS) is too short, and time spent waiting for "
                "locks counts toward it: raise it, or collect when the database is less busy"
            ) from exc
        log.warning("retention: %s; trying the batch of one workflow again", exc)

    def went_through(self) -> None:
        self._cancelled_at_one = 0
        if self.now < self.asked:
            self._through += 1
            if self._through >= REGROW_AFTER:
                self.now, self._through = min(self.asked, self.now * 2), 0


class RetentionService(LoopService):
    """Collects every ``interval_seconds`` by the config's limits (``finished_for_days``,
    ``max_finished``), in batches of its ``batch_size`` at its ``pace``; the first collection runs
    soon after launch."""

    thread_name = "transact-retention"
    first_delay_s = 1.0

    def __init__(self, rt: Runtime) -> None:
        super().__init__(rt)
        settings = rt.settings.retention
        assert settings is not None
        self.settings = settings
        self.collected = 0  # workflows this service deleted (tests, logs)
        self.passes = 0

    def collect_once(self) -> int:
        s = self.settings
        before = None if s.finished_for_days is None else clock.now_ms() - int(s.finished_for_days * _DAY_MS)
        deleted = garbage_collect(
            self.rt.store,
            max(before, 0) if before is not None else None,
            s.max_finished,
            batch=s.batch_size if s.batch_size is not None else BATCH,
            pace=s.pace if s.pace is not None else PACE,
            exclusive=True,
            halted=self._stop.is_set,
        )
        self.collected += deleted
        self.passes += 1
        if deleted:
            log.info("retention: deleted %d finished workflows", deleted)
        return deleted

    def _run(self) -> None:
        wait = min(self.first_delay_s, self.settings.interval_seconds)
        while not self._stop.wait(wait):
            wait = self.settings.interval_seconds
            try:
                self.collect_once()
            except Exception:  # an outage or a bug must not end the loop: the next pass retries
                log.exception("retention: garbage collection failed; retrying in %.0f s", wait)


def service_for(rt: Runtime) -> RetentionService | None:
    """The background collector when config ``retention`` is set."""
    return RetentionService(rt) if rt.settings.retention is not None else None
