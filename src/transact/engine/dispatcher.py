"""Queue dispatcher: claims ready queued workflows and runs them under each queue's limits.

One thread per process serves every queue declared in it (only those named by
``DBOS.listen_queues`` when set). Limits come from the queue registry (engine/queues.py), cached
here: a change anywhere re-reads them before the next claim (local change, Postgres NOTIFY
``qconf``, SQLite commits by others), and the fallback poll re-reads them too, so a claim costs no
extra round trip. It sleeps until something says a queue may have work or room: a local enqueue, a Postgres NOTIFY from another process, a local completion,
the end of a workflow holding a global slot, the due time of delayed work or of a rate-limit
window. A slow fallback poll (``queue_poll_seconds``) is a safety net only. Hints are never truth:
every wake re-reads the table. Must not import the facade.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from transact._lib.states import Hint, Status
from transact.engine import clock, serialization
from transact.engine import queues as registry
from transact.engine import workflow as wf
from transact.engine.clock import now_ms
from transact.engine.loop import LoopService
from transact.engine.queues import QueueConfig
from transact.engine.runtime import Runtime
from transact.storage import Unavailable
from transact.storage.queues import QueueClaim
from transact.storage.rows import WorkflowRow

log = logging.getLogger("transact")

CLAIM_BATCH = 100  # rows per claim: large enough for throughput, small enough to share work
STAR_THROTTLE_S = 0.1  # "*" hints (SQLite commits by other connections): probe at most this often
ERROR_BACKOFF_S = 1.0
# The safety-net re-read of the queue registry's limits. Changes arrive by push (Postgres NOTIFY
# qconf; on SQLite, any other connection's commit), so this poll only covers a lost wake-up; tying it
# to the queue poll would add a query a second to every idle SQLite process.
LIMITS_RECHECK_S = 10.0


__all__ = ["Dispatcher", "QueueConfig"]


@dataclass(eq=False)
class _QueueState:
    config: QueueConfig
    dirty: bool = True  # a claim may find work
    probe: bool = True  # a cheap read should check for ready and delayed work
    full: bool = False  # the global concurrency limit was reached; wait for a slot to free
    freed: int = 0  # counts slot ends, so a claim does not mark the queue full after one
    next_poll: float = 0.0  # monotonic time of the fallback probe
    next_due: int | None = None  # epoch ms: earliest delayed row becomes ready
    retry_at: int | None = None  # epoch ms: the rate-limit window lets another start in
    paused_until: float = 0.0  # monotonic: back off after errors
    running: dict[str | None, set[str]] = field(default_factory=dict)  # local, per partition
    after: str | None = None  # partitioned: the rotation continues after this partition


class Dispatcher(LoopService):
    thread_name = "transact-queues"

    def __init__(self, rt: Runtime) -> None:
        super().__init__(rt)
        self._lock = threading.Lock()
        self._states: dict[str, _QueueState] = {}
        self._inflight: dict[str, tuple[str, str | None]] = {}  # workflow id -> (queue, partition)
        self._watch: dict[str, tuple[str, str | None]] = {}  # id holding a global slot -> its queue
        self._star = False
        self._last_star = 0.0
        self.max_inflight = rt.settings.max_workflow_threads
        self._limits: dict[str, QueueConfig] = {}  # the registry's limits, cached
        self._limits_stale = True
        self._limits_due = 0.0  # monotonic: the fallback re-read of the limits
        clock.subscribe(self)

    # -- service ------------------------------------------------------------------------------
    def _prepare(self) -> None:
        # Queues declared in code (Queue(...)) before launch join the registry now. Recovery ran
        # first and registered this executor, so its version counts as the latest when it is.
        for queue in list(self.rt.registry.queues.values()):
            registry.register(
                self.rt.store,
                queue.config,
                on_conflict=registry.DEFAULT_ON_CONFLICT,
                app_version=self.rt.app_version,
                application_name=self.rt.settings.name,
            )
        self._reload_limits()
        # Recovery resumed this executor's own queued workflows: count them.
        running = set(self.rt.runs.ids())
        for row in self.rt.store.workflows_pending([self.rt.executor_id], application_name=self.rt.settings.name):
            if row.queue_name is not None and row.workflow_id in running:
                self._inflight[row.workflow_id] = (row.queue_name, row.queue_partition_key)

    # -- hints (any thread; cheap, never touches the database) --------------------------------
    def limits(self, name: str) -> QueueConfig | None:
        """The registered limits of queue ``name`` as last read (no round trip), or None."""
        return self._limits.get(name)

    def _reload_limits(self) -> None:
        self._limits_stale, self._limits_due = False, time.monotonic() + LIMITS_RECHECK_S
        self._limits = {c.name: c for c in registry.list_all(self.rt.store)}

    def on_hint(self, kind: str, ident: str, key: str) -> None:
        if kind == Hint.QUEUE_CONFIG:
            self._limits_stale = True
            self._wake.set()
        elif kind == Hint.QUEUE:
            with self._lock:
                st = self._states.get(ident)
                if st is None:
                    if ident not in self.rt.registry.queues:
                        return
                else:
                    st.dirty = True
                    st.probe = st.probe or key == "delayed"
                    if key == "requeued":  # a running workflow went back to the queue: a slot is free
                        st.full, st.freed = False, st.freed + 1
            self._wake.set()
        elif kind == Hint.DONE:
            with self._lock:
                entry = self._inflight.pop(ident, None)
                if entry is None:
                    entry = self._watch.pop(ident, None)
                    if entry is None:
                        return
                elif len(self._inflight) + 1 >= self.max_inflight:
                    for other in self._states.values():  # process-wide room freed up
                        other.dirty = True
                st = self._states.get(entry[0])
                if st is None:
                    return
                st.running.get(entry[1], set()).discard(ident)
                st.dirty, st.full, st.freed = True, False, st.freed + 1
            self._wake.set()
        elif kind == Hint.ALL:
            self._star = True
            self._wake.set()

    def on_clock_jump(self, reset: bool) -> None:
        """A test clock moved: delayed rows and rate-limit windows may be due now."""
        with self._lock:
            for st in self._states.values():
                st.probe = True
        self._wake.set()

    # -- loop ---------------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                timeout = self._tick()
            except Exception:
                log.exception("queue dispatcher pass failed")
                timeout = ERROR_BACKOFF_S
            self._wake.wait(timeout)

    def _tick(self) -> float:
        mono = time.monotonic()
        star = self._star and mono - self._last_star >= STAR_THROTTLE_S
        if star:
            self._star, self._last_star = False, mono
        if self._limits_stale or mono >= self._limits_due or (star and not self.rt.store.pushes_wakeups):
            try:
                self._reload_limits()
            except Unavailable as exc:
                log.warning("queue limits: system database unavailable (%s); retrying", exc)
                self._limits_due = mono + ERROR_BACKOFF_S
        wake = min(mono + self.rt.queue_poll_seconds, self._limits_due)
        for queue in self._served():
            if self._stop.is_set() or self.rt.stopping.is_set():
                break  # shutting down: take no new work
            st = self._state(self._limits.get(queue.name) or queue.config)
            try:
                self._serve(st, star)
            except Unavailable as exc:
                log.warning("queue %r: system database unavailable (%s); retrying", st.config.name, exc)
                st.paused_until = time.monotonic() + ERROR_BACKOFF_S
            except Exception:
                log.exception("queue %r: dispatch failed", st.config.name)
                st.paused_until = time.monotonic() + ERROR_BACKOFF_S
            wake = min(wake, self._wake_time(st))
        if self._star:
            wake = min(wake, self._last_star + STAR_THROTTLE_S)
        return max(0.0, wake - time.monotonic())

    def _served(self) -> list[Any]:
        """The queues declared in this process that it dispatches (``listen_queues``)."""
        only = registry.listened(self.rt)
        queues = list(self.rt.registry.queues.values())
        return queues if only is None else [q for q in queues if q.name in only]

    def _state(self, config: QueueConfig) -> _QueueState:
        with self._lock:
            st = self._states.get(config.name)
            if st is None:
                st = self._states[config.name] = _QueueState(config)
                for wid, (queue, part) in self._inflight.items():  # resumed by recovery before we started
                    if queue == config.name:
                        st.running.setdefault(part, set()).add(wid)
            elif st.config != config:  # limits changed (registry) or redeclared (after destroy_registry)
                st.config, st.dirty, st.probe, st.full, st.retry_at = config, True, True, False, None
            return st

    def _poll_seconds(self, config: QueueConfig) -> float:
        return config.poll_seconds or self.rt.queue_poll_seconds

    def _wake_time(self, st: _QueueState) -> float:
        mono, now = time.monotonic(), now_ms()
        wake = st.next_poll
        for at in (st.next_due, st.retry_at):
            left = None if at is None else clock.left_s(at, None)  # None: wait for the test clock
            if left is not None:
                wake = min(wake, mono + left)
        if st.dirty and self._claimable(st, now):
            wake = mono
        return max(wake, st.paused_until)

    def _claimable(self, st: _QueueState, now: int) -> bool:
        if st.full:
            return False
        # A partitioned queue's rate windows are per partition: retry_at is only a wake-up there.
        return st.config.partitioned or st.retry_at is None or now >= st.retry_at

    def _serve(self, st: _QueueState, star: bool) -> None:
        mono, now = time.monotonic(), now_ms()
        if mono < st.paused_until:
            return
        store, name = self.rt.store, st.config.name
        if st.next_due is not None and now >= st.next_due:
            st.next_due = store.queue_promote(queue_name=name, now=now)
            st.dirty = True
        if star or st.probe or mono >= st.next_poll:
            poll = mono >= st.next_poll
            st.probe, st.next_poll = False, mono + self._poll_seconds(st.config)
            ready, st.next_due = store.queue_probe(queue_name=name)
            if ready:
                # Completions elsewhere may go unannounced (SQLite, deletes): look again.
                with self._lock:
                    st.dirty, st.full, st.freed = True, False, st.freed + 1
            if poll:
                self._reconcile()
        if st.retry_at is not None and now >= st.retry_at:
            st.retry_at, st.dirty = None, True
        if st.dirty and self._claimable(st, now):
            self._claim(st, now)

    def _reconcile(self) -> None:
        """Forget local runs that ended without a hint (hand-offs, launch failures)."""
        running = set(self.rt.runs.ids())
        with self._lock:
            for wid in [w for w in self._inflight if w not in running]:
                queue, part = self._inflight.pop(wid)
                st = self._states.get(queue)
                if st is not None:
                    st.running.get(part, set()).discard(wid)
                    st.dirty = True

    # -- claiming -----------------------------------------------------------------------------
    def _room(self, st: _QueueState, partition: str | None) -> int:
        with self._lock:
            room = min(CLAIM_BATCH, self.max_inflight - len(self._inflight))
            if st.config.worker_concurrency is not None:
                room = min(room, st.config.worker_concurrency - len(st.running.get(partition, ())))
        return room

    def _claim(self, st: _QueueState, now: int) -> None:
        cfg = st.config
        if cfg.partitioned:
            self._claim_partitions(st, now)
            return
        with self._lock:
            # Consumed before reading: a hint arriving during the claim marks it dirty again.
            st.dirty = False
            freed = st.freed
        room = self._room(st, None)
        if room <= 0:
            return  # a local completion marks the queue dirty again
        claim = self.rt.store.queue_claim(
            queue_name=cfg.name,
            partition_key=None,
            executor_id=self.rt.executor_id,
            now=now,
            max_rows=room,
            concurrency=cfg.concurrency,
            rate_limit=cfg.rate_limit,
            rate_period_ms=int(cfg.rate_period_s * 1000) if cfg.rate_period_s is not None else None,
            app_version=self._pin(),
            application_name=self.rt.settings.name,
        )
        self._launch(st, claim.rows)
        st.retry_at = claim.retry_at
        if claim.running is not None:
            self._hold(cfg.name, None, claim)
        with self._lock:
            more = len(claim.rows) == room and claim.running is None and claim.retry_at is None
            st.dirty = st.dirty or more
            st.full = claim.running is not None and st.freed == freed

    def _claim_partitions(self, st: _QueueState, now: int) -> None:
        """One claim across every partition, round-robin (the store ranks each partition's rows
        and continues the rotation after the partition served last); the per-partition worker
        limit is counted by the store from this executor's PENDING rows."""
        cfg = st.config
        with self._lock:
            st.dirty = False
            room = min(CLAIM_BATCH, self.max_inflight - len(self._inflight))
        if room <= 0:
            return
        claim = self.rt.store.queue_claim_partitions(
            queue_name=cfg.name,
            executor_id=self.rt.executor_id,
            now=now,
            max_rows=room,
            after=st.after,
            concurrency=cfg.concurrency,
            worker_concurrency=cfg.worker_concurrency,
            global_concurrency=cfg.global_concurrency,
            rate_limit=cfg.rate_limit,
            rate_period_ms=int(cfg.rate_period_s * 1000) if cfg.rate_period_s is not None else None,
            app_version=self._pin(),
            application_name=self.rt.settings.name,
        )
        st.after = claim.after
        self._launch(st, claim.rows)
        st.retry_at = claim.retry_at
        if claim.running is not None:
            self._hold(cfg.name, None, claim)
        with self._lock:
            more = len(claim.rows) == room and claim.running is None and claim.retry_at is None
            st.dirty = st.dirty or more

    def _pin(self) -> str | None:
        return self.rt.app_version if self.rt.settings.pin_app_version else None

    def _hold(self, queue: str, partition: str | None, claim: QueueClaim) -> None:
        """Remember who holds the global slots, so the end of any of them wakes us."""
        entry = (queue, partition)
        with self._lock:
            self._watch = {w: e for w, e in self._watch.items() if e != entry}
            for wid in claim.running or ():
                if wid not in self._inflight:
                    self._watch[wid] = entry

    def _launch(self, st: _QueueState, rows: list[WorkflowRow]) -> None:
        if not rows:
            return
        # One read for the whole batch instead of one per workflow (this thread is the bottleneck).
        steps = self.rt.store.steps_load_many([r.workflow_id for r in rows])
        for row in sorted(rows, key=lambda r: (r.priority, r.created_at)):
            wid = row.workflow_id
            partition = row.queue_partition_key if st.config.partitioned else None
            with self._lock:
                self._inflight[wid] = (st.config.name, partition)
                st.running.setdefault(partition, set()).add(wid)
            started = False
            try:
                if self.rt.registry.for_row(row.name, row.class_name) is None:
                    self._give_back(st, row)
                else:
                    started = wf.resume(self.rt, row, recorded=steps.get(wid))
            except Exception as exc:
                self._fail(row, exc)
            if not started:
                with self._lock:
                    self._inflight.pop(wid, None)
                    st.running.get(partition, set()).discard(wid)

    def _give_back(self, st: _QueueState, row: WorkflowRow) -> None:
        """A workflow this process cannot run: return it for a process that has it registered."""
        log.error(
            "queue %r: workflow %s (%s) is not registered in this process; returning it to the queue",
            st.config.name,
            row.workflow_id,
            row.name,
        )
        self.rt.store.queue_release(workflow_id=row.workflow_id, executor_id=self.rt.executor_id, now=now_ms())
        # Do not claim it again at once: the release re-announces it to every process.
        st.paused_until = time.monotonic() + self._poll_seconds(st.config)

    def _fail(self, row: WorkflowRow, exc: Exception) -> None:
        """The claimed workflow cannot even start (e.g. its inputs no longer deserialize)."""
        log.error("queued workflow %s (%s) could not start: %s", row.workflow_id, row.name, exc)
        try:
            self.rt.store.workflow_finish(
                workflow_id=row.workflow_id,
                executor_id=self.rt.executor_id,
                status=Status.ERROR,
                output=None,
                error=serialization.dumps_error(exc),
                now=now_ms(),
            )
        except Exception:
            log.exception("could not record the start failure of workflow %s", row.workflow_id)
