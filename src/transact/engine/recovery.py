"""Recovery without an extra service: executor heartbeats, startup recovery, adoption of the
work of dead executors, hand-over on graceful shutdown, and the stranded-workflows view.

An executor is dead when its lease expired, when it marked itself STOPPED, or when it ran on this
host and its process (pid + start time) is gone. Adoption is one conditional UPDATE per workflow,
so two adopters never both win; the checkpoint fence stops a stale owner that wakes up.
Must not import the facade.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from transact._lib.states import Hint, Status
from transact.engine import workflow
from transact.engine.clock import now_ms, real_ms
from transact.engine.loop import LoopService
from transact.engine.runtime import Runtime, pid_alive
from transact.storage import Store, Unavailable
from transact.storage.rows import ExecutorRow, WorkflowRow

log = logging.getLogger("transact")

ADOPT_BATCH = 200


def dead_executors(
    store: Store, *, me: str | None, hostname: str, lease_ms: int, local_check: bool, now: int
) -> tuple[list[ExecutorRow], list[ExecutorRow]]:
    """Split the executor table into (live, dead) as seen from this host."""
    live: list[ExecutorRow] = []
    dead: list[ExecutorRow] = []
    for ex in store.executor_list():
        if ex.executor_id == me:
            continue
        gone = (
            ex.state != "RUNNING"
            or ex.last_seen_at < now - lease_ms
            or (local_check and ex.hostname == hostname and not pid_alive(ex.pid, ex.process_token))
        )
        (dead if gone else live).append(ex)
    return live, dead


def stranded_workflows(
    store: Store, *, lease_seconds: float = 30.0, hostname: str = "", limit: int = 1000
) -> list[WorkflowRow]:
    """PENDING workflows whose owner is gone and that no live executor can run (name not registered
    anywhere alive). Operators resume, fork or delete them; nobody adopts them on their own."""
    live, _ = dead_executors(
        store, me=None, hostname=hostname, lease_ms=int(lease_seconds * 1000), local_check=bool(hostname), now=real_ms()
    )
    runnable: set[str] = set()
    for ex in live:
        runnable.update(n for n in (ex.workflow_names or "").split("\n") if n)
    orphans = store.workflows_orphaned([ex.executor_id for ex in live], limit)
    return [row for row in orphans if not _runnable(row, runnable)]


def _runnable(row: WorkflowRow, names: set[str]) -> bool:
    """Whether a live executor registers the workflow of ``row`` (a method a client enqueued by
    bare name and class name is registered under ``Class.method``)."""
    return row.name in names or (row.class_name is not None and f"{row.class_name}.{row.name}" in names)


class RecoveryService(LoopService):
    thread_name = "transact-recovery"

    def __init__(self, rt: Runtime, *, on_sigterm: Callable[[], None] | None = None) -> None:
        """``on_sigterm``: how the application shuts down (``DBOS.destroy``) when SIGTERM arrives
        and nothing else handles it; None leaves SIGTERM alone."""
        super().__init__(rt)
        self._shutdown = on_sigterm
        self.scan_interval = min(rt.settings.heartbeat_seconds, 5.0 if rt.store.pushes_wakeups else 1.0)

    def _names(self) -> str:
        return "\n".join(sorted(self.rt.registry.workflows))

    def _register(self) -> None:
        rt = self.rt
        now = real_ms()  # liveness is judged between processes: never on a test clock
        rt.store.executor_register(
            ExecutorRow(
                rt.executor_id,
                rt.hostname,
                os.getpid(),
                rt.process_token,
                rt.app_version,
                now,
                now,
                "RUNNING",
                self._names(),
            )
        )

    def _prepare(self) -> None:
        self._register()
        self.recover_own()
        self.adopt()

    def start(self) -> None:
        super().start()
        if self.rt.settings.install_signal_handlers:
            self._install_sigterm()

    def stop(self) -> None:
        """Stopped last: intake services are already stopped, so drain, then hand over the rest."""
        super().stop()
        self.rt.drain(self.rt.shutdown_timeout_s)
        self.release()

    def release(self) -> None:
        """Graceful shutdown: hand unfinished work over at once instead of after the lease."""
        rt = self.rt
        try:
            rt.store.workflows_release(executor_id=rt.executor_id, now=now_ms())
            rt.store.executor_set_state(rt.executor_id, "STOPPED")
        except Unavailable:
            log.warning("could not release ownership at shutdown; other executors adopt after the lease")

    def on_hint(self, kind: str, ident: str, key: str) -> None:
        if kind == Hint.EXECUTOR:
            self._wake.set()

    # -- SIGTERM ------------------------------------------------------------------------------
    def _install_sigterm(self) -> None:
        if self._shutdown is None or threading.current_thread() is not threading.main_thread():
            return
        if signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, None):
            return  # the application (or its server) handles SIGTERM and calls DBOS.destroy() itself
        signal.signal(signal.SIGTERM, self._on_sigterm)

    def _on_sigterm(self, signum: int, frame: Any) -> None:
        # The handler runs on the main thread, which may hold our locks: shut down on another thread,
        # then die of SIGTERM as the process would have without us (a second SIGTERM kills at once).
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

        shutdown = self._shutdown

        def shut_down() -> None:
            try:
                if shutdown is not None and self.rt.launched:
                    shutdown()
            finally:
                os.kill(os.getpid(), signal.SIGTERM)

        threading.Thread(target=shut_down, name="transact-sigterm", daemon=False).start()

    # -- passes -------------------------------------------------------------------------------
    def recover_own(self) -> int:
        """Restart with a fixed executor id: resume the PENDING workflows it still owns, in
        batches (one update and one step read per batch, as adoption does)."""
        rt = self.rt
        count = 0
        running = set(rt.runs.ids())
        rows = [
            row
            for row in rt.store.workflows_pending([rt.executor_id], application_name=rt.settings.name)
            if row.workflow_id not in running and workflow.can_run(rt, row)
        ]
        for start in range(0, len(rows), ADOPT_BATCH):
            ids = [row.workflow_id for row in rows[start : start + ADOPT_BATCH]]
            updated = rt.store.workflows_rerun_own(workflow_ids=ids, executor_id=rt.executor_id, now=now_ms())
            count += workflow.resume_many(rt, workflow.in_order(updated, ids))  # oldest first, as listed
        return count

    def adopt(self) -> int:
        """Take over PENDING workflows whose owner is dead or gone."""
        rt = self.rt
        live, dead = dead_executors(
            rt.store,
            me=rt.executor_id,
            hostname=rt.hostname,
            lease_ms=int(rt.settings.lease_seconds * 1000),
            local_check=rt.settings.local_liveness_check,
            now=real_ms(),
        )
        adopted = 0
        owners = [rt.executor_id, *(ex.executor_id for ex in live)]
        names = rt.registry.row_names()
        while not rt.stopping.is_set():
            # Only this application's workflows and unowned ones: another application's wait for it.
            batch = rt.store.workflows_orphaned(owners, ADOPT_BATCH, names=names, application_name=rt.settings.name)
            runnable = [row for row in batch if workflow.can_run(rt, row)]
            by_owner: dict[str | None, list[str]] = {}
            for row in runnable:
                by_owner.setdefault(row.executor_id, []).append(row.workflow_id)
            taken: list[WorkflowRow] = []
            for owner, ids in by_owner.items():
                taken += rt.store.workflows_adopt(
                    workflow_ids=ids, from_executor=owner, to_executor=rt.executor_id, now=now_ms()
                )
            workflow.resume_many(rt, [row for row in taken if row.status == Status.PENDING])
            adopted += len(taken)
            if len(batch) < ADOPT_BATCH or not taken:
                break  # drained (or only other versions' work left, when pinned)
        for ex in dead:
            rt.store.executor_delete(ex.executor_id, only_if_idle=True)
        if adopted:
            log.info("adopted %d workflows from dead executors", adopted)
        return adopted

    def _run(self) -> None:
        rt = self.rt
        next_heartbeat = 0.0
        while not self._stop.is_set():
            self._wake.wait(self.scan_interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                if time.monotonic() >= next_heartbeat:
                    self._heartbeat()
                    next_heartbeat = time.monotonic() + rt.settings.heartbeat_seconds
                self.adopt()
            except Unavailable as exc:
                log.warning("recovery pass skipped: %s", exc)
            except Exception:
                log.exception("recovery pass failed")

    def _heartbeat(self) -> None:
        rt = self.rt
        if rt.store.executor_heartbeat(rt.executor_id, real_ms(), self._names()):
            return
        # Judged dead (e.g. after a long pause): our old work has new owners and the fence rejects
        # our stale writes; register again to take new work.
        log.warning("executor %s was marked dead by its peers; registering again", rt.executor_id)
        self._register()
