"""Recovery without an extra service: executor heartbeats, startup recovery, adoption of the
work of dead executors, and hand-over on graceful shutdown.

An executor is dead when its lease expired, when it marked itself STOPPED, or when it ran on this
host and its process (pid + start time) is gone. Adoption is one conditional UPDATE per workflow,
so two adopters never both win; the checkpoint fence stops a stale owner that wakes up.
Must not import the facade.
"""

from __future__ import annotations

import logging
import os
import threading
import time

from transact.engine import workflow
from transact.engine.clock import now_ms
from transact.engine.runtime import Runtime, pid_alive
from transact.storage import Unavailable
from transact.storage.rows import ExecutorRow

log = logging.getLogger("transact")

ADOPT_BATCH = 200


class RecoveryService:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.scan_interval = min(rt.settings.heartbeat_seconds, 1.0 if rt.store.dialect == "sqlite" else 5.0)

    def start(self) -> None:
        rt = self.rt
        now = now_ms()
        rt.store.executor_register(
            ExecutorRow(rt.executor_id, rt.hostname, _pid(), rt.process_token, rt.app_version, now, now, "RUNNING")
        )
        self.recover_own()
        self.adopt()
        self._thread = threading.Thread(target=self._loop, name="transact-recovery", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stopped last: intake services are already stopped, so drain, then hand over the rest."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.rt.drain(self.rt.shutdown_timeout_s)
        self.release()

    def release(self) -> None:
        """Graceful shutdown: hand unfinished work over at once instead of after the lease."""
        rt = self.rt
        try:
            rt.store.workflows_release(rt.executor_id, now_ms())
            rt.store.executor_set_state(rt.executor_id, "STOPPED")
        except Unavailable:
            log.warning("could not release ownership at shutdown; other executors adopt after the lease")

    def on_hint(self, kind: str, ident: str, key: str) -> None:
        if kind == "executor":
            self._wake.set()

    # -- passes -------------------------------------------------------------------------------
    def recover_own(self) -> int:
        """Restart with a fixed executor id: resume the PENDING workflows it still owns."""
        rt = self.rt
        count = 0
        for row in rt.store.workflows_pending([rt.executor_id]):
            if row.workflow_id in rt.running_ids() or rt.registry.workflow(row.name) is None:
                continue
            updated = rt.store.workflow_rerun_own(workflow_id=row.workflow_id, executor_id=rt.executor_id, now=now_ms())
            if updated is not None and workflow.resume(rt, updated):
                count += 1
        return count

    def adopt(self) -> int:
        """Take over PENDING workflows whose owner is dead or gone."""
        rt = self.rt
        now = now_ms()
        lease_ms = int(rt.settings.lease_seconds * 1000)
        live: list[str] = []
        dead: list[ExecutorRow] = []
        for ex in rt.store.executor_list():
            if ex.executor_id == rt.executor_id:
                continue
            gone = (
                ex.state != "RUNNING"
                or ex.last_seen_at < now - lease_ms
                or (ex.hostname == rt.hostname and not pid_alive(ex.pid, ex.process_token))
            )
            if gone:
                dead.append(ex)
            else:
                live.append(ex.executor_id)
        names = set(rt.registry.workflows)
        adopted = 0
        for row in rt.store.workflows_orphaned([rt.executor_id, *live], ADOPT_BATCH):
            if row.name not in names:
                continue  # a process that has this workflow registered will take it
            taken = rt.store.workflow_adopt(
                workflow_id=row.workflow_id,
                from_executor=row.executor_id,
                to_executor=rt.executor_id,
                app_version=rt.app_version,
                now=now_ms(),
            )
            if taken is None:
                continue
            adopted += 1
            if taken.status == "PENDING":
                workflow.resume(rt, taken)
        for ex in dead:
            if not rt.store.workflows_pending([ex.executor_id]):
                rt.store.executor_delete(ex.executor_id)
        if adopted:
            log.info("adopted %d workflows from dead executors", adopted)
        return adopted

    def _loop(self) -> None:
        rt = self.rt
        hb_every = rt.settings.heartbeat_seconds
        next_hb = 0.0
        while not self._stop.is_set():
            self._wake.wait(self.scan_interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                if time.monotonic() >= next_hb:
                    if not rt.store.executor_heartbeat(rt.executor_id, now_ms()):
                        # Judged dead (e.g. after a long pause): our adopted work has new owners and
                        # the fence rejects our stale writes; register again to take new work.
                        log.warning("executor %s was marked dead; registering again", rt.executor_id)
                        now = now_ms()
                        rt.store.executor_register(
                            ExecutorRow(
                                rt.executor_id,
                                rt.hostname,
                                _pid(),
                                rt.process_token,
                                rt.app_version,
                                now,
                                now,
                                "RUNNING",
                            )
                        )
                    next_hb = time.monotonic() + hb_every
                self.adopt()
            except Unavailable as exc:
                log.warning("recovery pass skipped: %s", exc)
            except Exception:
                log.exception("recovery pass failed")


def _pid() -> int:
    return os.getpid()
