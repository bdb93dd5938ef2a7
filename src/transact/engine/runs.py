"""This process's runs: one future per workflow id, claimed, registered and settled through one
handle, and the timer that fires their deadlines.

A run is claimed before its row is inserted, so concurrent starts of one id in this process share
one execution; it is registered once its context exists (so cancellation can reach it) and settled
when it ends, which frees the id before the future is published (a resume or an adoption may claim
the id again at once). Must not import the facade, the runtime or the workflow context.
"""

from __future__ import annotations

import concurrent.futures
import heapq
import logging
import threading
from collections.abc import Callable
from typing import Any, Protocol

from transact.engine import clock
from transact.engine.clock import now_ms
from transact.errors import WorkflowConflictError

log = logging.getLogger("transact")


def check_same_workflow(workflow_id: str, holder: str, name: str) -> None:
    """An id already taken may be started again only for the same workflow (it then returns the
    first start's run); for another workflow it is a conflict."""
    if holder != name:
        raise WorkflowConflictError(
            f"workflow id {workflow_id!r} already belongs to workflow {holder!r}; "
            f"it cannot be reused for {name!r}. Choose another id."
        )


class NotLocal(Exception):
    """Set on a local future whose workflow runs elsewhere: waiters fall back to the database."""


class Cancellable(Protocol):
    """What the table needs of a running workflow's context."""

    @property
    def workflow_id(self) -> str: ...

    @property
    def deadline_at(self) -> int | None: ...

    @property
    def cancelled(self) -> threading.Event: ...


class Runs:
    """The table of workflows running in this process, and their deadlines.

    ``on_deadline(workflow_id)`` is called from the timer thread when a registered run's deadline
    passes while it still runs here (the runtime cancels its tree)."""

    def __init__(self, on_deadline: Callable[[str], None]) -> None:
        self._lock = threading.Lock()
        # workflow id -> (the run's future, the name of the workflow that holds the id)
        self._runs: dict[str, tuple[concurrent.futures.Future[Any], str]] = {}
        self._contexts: dict[str, Cancellable] = {}
        self._on_deadline = on_deadline
        self._heap: list[tuple[int, str]] = []
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopped = False

    # -- claim -> register -> settle -----------------------------------------------------------
    def claim(self, workflow_id: str, name: str) -> tuple[concurrent.futures.Future[Any], bool]:
        """The id's future, and True when the caller owns the run and must settle it. An id held
        here by another workflow is a conflict (WorkflowConflictError)."""
        with self._lock:
            held = self._runs.get(workflow_id)
            if held is None:
                fut: concurrent.futures.Future[Any] = concurrent.futures.Future()
                self._runs[workflow_id] = (fut, name)
                return fut, True
        check_same_workflow(workflow_id, held[1], name)
        return held[0], False

    def register(self, ctx: Cancellable) -> None:
        """Make a claimed run reachable by cancellation, and arm its deadline."""
        with self._lock:
            self._contexts[ctx.workflow_id] = ctx
        if ctx.deadline_at is not None:
            with self._cond:
                heapq.heappush(self._heap, (ctx.deadline_at, ctx.workflow_id))
                self._cond.notify()

    def settle(
        self,
        workflow_id: str,
        fut: concurrent.futures.Future[Any],
        value: Any = None,
        error: BaseException | None = None,
    ) -> None:
        """End a run: free the id (only if the slot is still this run's), then publish its outcome."""
        with self._lock:
            held = self._runs.get(workflow_id)
            if held is not None and held[0] is fut:
                del self._runs[workflow_id]
                self._contexts.pop(workflow_id, None)
        if fut.done():
            return
        if error is not None:
            fut.set_exception(error)
        else:
            fut.set_result(value)

    # -- reading -----------------------------------------------------------------------------
    def future(self, workflow_id: str) -> concurrent.futures.Future[Any] | None:
        with self._lock:
            held = self._runs.get(workflow_id)
        return held[0] if held is not None else None

    def ids(self) -> list[str]:
        with self._lock:
            return list(self._runs)

    def __contains__(self, workflow_id: object) -> bool:
        with self._lock:
            return workflow_id in self._runs

    def running_contexts(self) -> list[Cancellable]:
        with self._lock:
            return list(self._contexts.values())

    def mark_cancelled(self, workflow_ids: list[str] | tuple[str, ...]) -> None:
        """Wake the named runs' cancellation flags (they stop at their next step boundary)."""
        with self._lock:
            contexts = [self._contexts.get(wid) for wid in workflow_ids]
        for ctx in contexts:
            if ctx is not None:
                ctx.cancelled.set()

    # -- deadlines ---------------------------------------------------------------------------
    def start(self) -> None:
        self._stopped = False
        clock.subscribe(self)
        self._thread = threading.Thread(target=self._fire_deadlines, name="transact-deadlines", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout=2)

    def on_clock_jump(self, reset: bool) -> None:
        with self._cond:
            self._cond.notify()

    def _fire_deadlines(self) -> None:
        while True:
            with self._cond:
                while not self._stopped and (not self._heap or self._heap[0][0] > now_ms()):
                    timeout = None if not self._heap else clock.left_s(self._heap[0][0], None)
                    self._cond.wait(timeout)
                if self._stopped:
                    return
                _, workflow_id = heapq.heappop(self._heap)
            if workflow_id in self:
                try:
                    self._on_deadline(workflow_id)
                except Exception:
                    log.exception("could not cancel workflow %s at its deadline", workflow_id)
