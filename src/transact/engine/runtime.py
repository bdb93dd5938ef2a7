"""Runtime: owns the store, worker threads, the background event loop, local result futures,
deadlines and background services; launch/destroy order lives here.

Must not import the facade.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import heapq
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, Protocol, TypeVar

from transact._config import Settings
from transact.engine import status
from transact.engine.clock import now_ms
from transact.engine.context import WorkflowContext
from transact.engine.registry import REGISTRY, Registry
from transact.engine.waiters import Waiters
from transact.errors import (
    DatabaseUnavailableError,
    WorkflowNotFoundError,
)
from transact.storage import Store, Unavailable, open_store
from transact.storage.rows import WorkflowRow

T = TypeVar("T")
log = logging.getLogger("transact")


class NotLocal(Exception):
    """Set on a local future whose workflow runs elsewhere: waiters fall back to the database."""


class Service(Protocol):
    """One start/stop shape for every background loop (recovery, queues, scheduler, consumers)."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


def process_token() -> str:
    """Identifies this process instance; a reused pid gets a different token (Linux start time)."""
    try:
        with open(f"/proc/{os.getpid()}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except OSError:
        return str(time.time_ns())


def pid_alive(pid: int, token: str) -> bool:
    if os.path.exists("/proc/self/stat"):
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii") as f:
                return f.read().rsplit(")", 1)[1].split()[19] == token
        except (OSError, IndexError):
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Runtime:
    def __init__(self, settings: Settings, registry: Registry = REGISTRY) -> None:
        self.settings = settings
        self.registry = registry
        self.executor_id = settings.executor_id
        self.app_version = settings.app_version
        self.hostname = socket.gethostname()
        self.process_token = process_token()
        try:
            self.store: Store = open_store(
                settings.system_database_url,
                retry_timeout_s=settings.retry_timeout_s,
                pool_size=settings.pool_size,
            )
        except Unavailable as exc:
            raise DatabaseUnavailableError(f"cannot open system database: {exc}") from exc
        self.store.group_commit = self.store.group_commit and settings.group_commit
        # Queue wake-ups are pushed; the poll is only a safety net (LISTEN reconnects wake everyone).
        self.queue_poll_seconds = settings.queue_poll_seconds or (10.0 if self.store.dialect == "postgres" else 1.0)
        self.waiters = Waiters()
        self.store.set_hint_handler(self._on_hint)
        self.workflow_pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=settings.max_workflow_threads, thread_name_prefix="transact-wf"
        )
        self.io_pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=max(4, settings.pool_size), thread_name_prefix="transact-io"
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None
        self._loop_lock = threading.Lock()
        self._running: dict[str, concurrent.futures.Future[Any]] = {}
        self._contexts: dict[str, WorkflowContext] = {}
        self._running_lock = threading.Lock()
        self._deadlines = _Deadlines(self)
        self.services: list[Service] = []
        self.shutdown_timeout_s = settings.shutdown_timeout_s
        self.launched = False
        self.stopping = threading.Event()
        self.extensions: dict[str, Any] = {}
        self.hint_listeners: list[Callable[[str, str, str], None]] = []
        self._last_cancel_check = 0.0

    # -- lifecycle ----------------------------------------------------------------------------
    def launch(self, services: list[Service]) -> None:
        # At start-up, wait a while for the database (it may still be booting), then fail clearly.
        steady_timeout = self.store.retry_timeout_s
        self.store.retry_timeout_s = steady_timeout if steady_timeout is not None else 30.0
        try:
            self.store.migrate()
        except Unavailable as exc:
            raise DatabaseUnavailableError(
                f"cannot reach the system database {_redact(self.settings.system_database_url)}: {exc}"
            ) from exc
        finally:
            self.store.retry_timeout_s = steady_timeout
        self.store.start_listening()
        self._deadlines.start()
        self.launched = True
        try:
            for service in services:
                service.start()
                self.services.append(service)
        except BaseException:
            self.destroy()  # never leave a half-launched runtime with some services running
            raise

    def destroy(self) -> None:
        self.stopping.set()
        # Wake workflows waiting in sleeps/receives so they reach a step boundary and stop there.
        with self._running_lock:
            contexts = list(self._contexts.values())
        for ctx in contexts:
            ctx.cancelled.set()
            self.waiters.notify("cancel", ctx.workflow_id)
        for service in reversed(self.services):
            try:
                service.stop()
            except Exception:
                log.exception("error stopping %r", service)
        self.services.clear()
        self._deadlines.stop()
        self.workflow_pool.shutdown(wait=False, cancel_futures=True)
        loop = self._loop
        if loop is not None:
            loop.call_soon_threadsafe(loop.stop)
            if self._loop_thread is not None:
                self._loop_thread.join(timeout=2)
        self.io_pool.shutdown(wait=False, cancel_futures=True)
        self.store.close()
        self.launched = False

    def drain(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for workflows running in this process to finish."""
        with self._running_lock:
            pending = list(self._running.values())
        if pending:
            concurrent.futures.wait(pending, timeout=timeout)

    # -- hints --------------------------------------------------------------------------------
    def _on_hint(self, kind: str, ident: str, key: str) -> None:
        if kind in ("cancel", "done"):
            # A terminal status we did not write ourselves means another process cancelled the
            # workflow (after our own finish the context is done anyway).
            self._mark_cancelled(ident)
        elif kind == "*":
            self._check_remote_cancels()
        self.waiters.notify(kind, ident, key)
        for listener in self.hint_listeners:
            listener(kind, ident, key)

    def _check_remote_cancels(self) -> None:
        """SQLite: another process committed something; see (at most twice a second) whether it
        cancelled a workflow running here, so its sleeps and receives stop promptly."""
        now = time.monotonic()
        if now - self._last_cancel_check < 0.5:
            return
        self._last_cancel_check = now
        with self._running_lock:
            ids = list(self._contexts)
        if not ids:
            return
        try:
            for ident in self.store.workflows_cancelled(ids):
                self._mark_cancelled(ident)
                self.waiters.notify("cancel", ident)
        except Exception:
            log.debug("cancel check failed", exc_info=True)

    def _mark_cancelled(self, workflow_id: str) -> None:
        with self._running_lock:
            ctx = self._contexts.get(workflow_id)
        if ctx is not None:
            ctx.cancelled.set()

    # -- local running table ------------------------------------------------------------------
    def claim_local(self, workflow_id: str) -> tuple[concurrent.futures.Future[Any], bool]:
        """The in-process future for a workflow id; True if the caller must produce its result.

        Taken before the database insert, so concurrent starts in this process share one run."""
        with self._running_lock:
            fut = self._running.get(workflow_id)
            if fut is not None:
                return fut, False
            fut = concurrent.futures.Future()
            self._running[workflow_id] = fut
            return fut, True

    def release_local(self, workflow_id: str, fut: concurrent.futures.Future[Any] | None = None) -> None:
        """Free the id's slot; with ``fut``, only if the slot still belongs to that run."""
        with self._running_lock:
            if fut is not None and self._running.get(workflow_id) is not fut:
                return
            self._running.pop(workflow_id, None)
            self._contexts.pop(workflow_id, None)

    def register_context(self, ctx: WorkflowContext) -> None:
        with self._running_lock:
            self._contexts[ctx.workflow_id] = ctx
        if ctx.deadline_at is not None:
            self._deadlines.add(ctx.deadline_at, ctx.workflow_id)

    def running_ids(self) -> list[str]:
        with self._running_lock:
            return list(self._running)

    # -- cancellation -------------------------------------------------------------------------
    def cancel_tree(self, workflow_id: str) -> list[str]:
        ids = self.store.workflow_cancel(workflow_id, now_ms())
        with self._running_lock:
            for ident in [workflow_id, *ids]:
                ctx = self._contexts.get(ident)
                if ctx is not None:
                    ctx.cancelled.set()
        return ids

    # -- results ------------------------------------------------------------------------------
    def await_result(self, workflow_id: str, timeout: float | None = None, *, local: bool = True) -> Any:
        if local:
            with self._running_lock:
                fut = self._running.get(workflow_id)
            if fut is not None:
                return self.future_result(fut, workflow_id, timeout)

        def finished() -> WorkflowRow | None:
            row = self.store.workflow_get(workflow_id)
            if row is None:
                raise WorkflowNotFoundError(workflow_id)
            return row if row.is_terminal else None

        row = self.waiters.until("done", workflow_id, "", finished, timeout)  # completions are pushed
        if row is None:
            raise TimeoutError(f"workflow {workflow_id!r} did not finish within {timeout} s")
        return status.outcome(row)

    def local_future(self, workflow_id: str) -> concurrent.futures.Future[Any] | None:
        with self._running_lock:
            return self._running.get(workflow_id)

    def future_result(self, fut: concurrent.futures.Future[Any], workflow_id: str, timeout: float | None) -> Any:
        """The result through this process's future; from the database when it runs elsewhere."""
        try:
            return fut.result(timeout)
        except NotLocal:
            return self.await_result(workflow_id, timeout, local=False)
        except concurrent.futures.TimeoutError:
            raise TimeoutError(f"workflow {workflow_id!r} did not finish within {timeout} s") from None

    async def await_result_async(self, workflow_id: str, timeout: float | None = None, *, local: bool = True) -> Any:
        with self._running_lock:
            fut = self._running.get(workflow_id) if local else None
        if fut is not None:
            try:
                return await asyncio.wait_for(asyncio.wrap_future(fut), timeout)
            except NotLocal:
                pass
        deadline = None if timeout is None else time.monotonic() + timeout
        poll = 0.05
        while True:
            with self.waiters.watch("done", workflow_id, asynchronous=True) as waiter:
                row = await self.aio(self.store.workflow_get, workflow_id)
                if row is None:
                    raise WorkflowNotFoundError(workflow_id)
                if row.is_terminal:
                    return status.outcome(row)
                wait = poll if deadline is None else min(poll, deadline - time.monotonic())
                if wait <= 0:
                    raise TimeoutError(f"workflow {workflow_id!r} did not finish within {timeout} s")
                await waiter.wait_async(wait)
            poll = min(poll * 2, 1.0)

    # -- threads and loops --------------------------------------------------------------------
    async def aio(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """The only bridge from async code to the (sync) store: a call on the I/O pool."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.io_pool, functools.partial(fn, *args, **kwargs))

    def background_loop(self) -> asyncio.AbstractEventLoop:
        with self._loop_lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                ready = threading.Event()

                def run() -> None:
                    asyncio.set_event_loop(loop)
                    ready.set()
                    loop.run_forever()

                self._loop_thread = threading.Thread(target=run, name="transact-loop", daemon=True)
                self._loop_thread.start()
                ready.wait()
                self._loop = loop
            return self._loop

    def run_coroutine(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run an async workflow body in the background: on the caller's loop if there is one."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            asyncio.run_coroutine_threadsafe(coro, self.background_loop())
            return
        task = loop.create_task(coro)
        _background_tasks.add(task)
        task.add_done_callback(_background_tasks.discard)


_background_tasks: set[asyncio.Task[Any]] = set()


class _Deadlines:
    """One timer thread for every workflow deadline in this process."""

    def __init__(self, runtime: Runtime) -> None:
        self._rt = runtime
        self._heap: list[tuple[int, str]] = []
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopped = False

    def start(self) -> None:
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="transact-deadlines", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout=2)

    def add(self, deadline_at: int, workflow_id: str) -> None:
        with self._cond:
            heapq.heappush(self._heap, (deadline_at, workflow_id))
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopped and (not self._heap or self._heap[0][0] > now_ms()):
                    timeout = None if not self._heap else (self._heap[0][0] - now_ms()) / 1000
                    self._cond.wait(timeout)
                if self._stopped:
                    return
                _, workflow_id = heapq.heappop(self._heap)
            if workflow_id in self._rt.running_ids():
                try:
                    self._rt.cancel_tree(workflow_id)
                except Exception:
                    log.exception("could not cancel workflow %s at its deadline", workflow_id)


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}" if ":" in creds else f"{scheme}://{user}@{host}"
    return url
