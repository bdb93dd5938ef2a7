"""Runtime: owns the store, worker threads, the background event loop, this process's runs and
the background services; launch/destroy order lives here.

Must not import the facade.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from transact._config import Settings
from transact._lib.states import Hint
from transact._lib.urls import redact
from transact.engine import status
from transact.engine.clock import now_ms
from transact.engine.registry import REGISTRY, Registry
from transact.engine.runs import NotLocal, Runs
from transact.engine.waiters import Waiters
from transact.errors import (
    ConfigError,
    DatabaseConfigurationError,
    DatabaseUnavailableError,
    WorkflowNotFoundError,
)
from transact.storage import Misconfigured, Store, Unavailable, open_store
from transact.storage.rows import WorkflowRow

if TYPE_CHECKING:
    from transact.storage.app_outcomes import AppDatabase

T = TypeVar("T")
log = logging.getLogger("transact")
__all__ = ["NotLocal", "Runtime", "Service"]


class Service(Protocol):
    """One start/stop shape for every background loop (recovery, queues, scheduler, consumers)."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


class ScheduleHost(Protocol):
    """The running scheduler, as the schedule admin functions see it."""

    poll_s: float  # how often it re-reads the schedules without a hint (config: scheduler_polling_interval_sec)

    def refresh(self) -> None: ...


class ConsumerHost(Service, Protocol):
    """A running event-consumer service that takes consumers declared after launch."""

    def add(self, spec: Any) -> None: ...


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
                sqlite_synchronous=settings.sqlite_synchronous,
                schema=settings.system_schema,
            )
        except Misconfigured as exc:
            raise DatabaseConfigurationError(str(exc)) from None
        except Unavailable as exc:
            raise DatabaseUnavailableError(f"cannot open system database: {exc}") from exc
        self.store.group_commit = self.store.group_commit and settings.group_commit
        # Queue wake-ups are pushed; the poll is only a safety net (LISTEN reconnects wake everyone).
        self.queue_poll_seconds = settings.queue_poll_seconds or (10.0 if self.store.pushes_wakeups else 1.0)
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
        self.runs = Runs(on_deadline=self._deadline_passed)
        self.services: list[Service] = []
        # Set by the service wiring at launch; None while the feature is unused.
        self.app_db: AppDatabase | None = None
        self.scheduler: ScheduleHost | None = None
        self.consumers: ConsumerHost | None = None
        self.shutdown_timeout_s = settings.shutdown_timeout_s
        self.launched = False
        self.stopping = threading.Event()
        self.hint_listeners: list[Callable[[str, str, str], None]] = []
        self._last_cancel_check = 0.0

    # -- lifecycle ----------------------------------------------------------------------------
    def launch(self, services: list[Service]) -> None:
        """Migrate (or, with ``run_migrations`` off, check the schema), listen, then start
        ``services`` in the given order (stopped in reverse)."""
        # At start-up, wait a while for the database (it may still be booting), then fail clearly.
        steady_timeout = self.store.retry_timeout_s
        self.store.retry_timeout_s = steady_timeout if steady_timeout is not None else 30.0
        try:
            if self.settings.run_migrations:
                self.store.migrate()
            else:
                self._check_schema()
        except Misconfigured as exc:
            raise DatabaseConfigurationError(str(exc)) from None
        except Unavailable as exc:
            raise DatabaseUnavailableError(
                f"cannot reach the system database {redact(self.settings.system_database_url)}: {exc}"
            ) from exc
        finally:
            self.store.retry_timeout_s = steady_timeout
        if self.scheduler is not None and self.settings.scheduler_poll_seconds is not None:
            self.scheduler.poll_s = self.settings.scheduler_poll_seconds
        self.store.start_listening()
        self.runs.start()
        self.launched = True
        try:
            for service in services:
                self.start_service(service)
        except BaseException:
            self.destroy()  # never leave a half-launched runtime with some services running
            raise

    def _check_schema(self) -> None:
        """``run_migrations`` is off: the tables must already be there, at this version's schema."""
        installed = self.store.schema_version()
        needed = max((version for version, _ in self.store.migration_scripts()), default=0)
        if installed >= needed:
            return
        where = redact(self.settings.system_database_url)
        fix = (
            f"run `transact migrate --db {where}` (as a role that may create tables) or launch once "
            "with run_migrations=True"
        )
        if installed == 0:
            raise ConfigError(f"run_migrations is False and the system database {where} has no Transact tables: {fix}")
        raise ConfigError(
            f"run_migrations is False and the system database {where} is at schema version {installed}, "
            f"this transact needs version {needed}: {fix}"
        )

    def start_service(self, service: Service) -> None:
        """Start one service; ``destroy()`` stops it with the others."""
        service.start()
        self.services.append(service)

    def destroy(self) -> None:
        self.stopping.set()
        # Wake workflows waiting in sleeps/receives so they reach a step boundary and stop there.
        for ctx in self.runs.running_contexts():
            ctx.cancelled.set()
            self.waiters.notify(Hint.CANCEL, ctx.workflow_id)
        for service in reversed(self.services):
            try:
                service.stop()
            except Exception:
                log.exception("error stopping %r", service)
        self.services.clear()
        self.runs.stop()
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
        pending = [f for f in map(self.runs.future, self.runs.ids()) if f is not None]
        if pending:
            concurrent.futures.wait(pending, timeout=timeout)

    # -- hints --------------------------------------------------------------------------------
    def _on_hint(self, kind: str, ident: str, key: str) -> None:
        if kind in (Hint.CANCEL, Hint.DONE):
            # A terminal status we did not write ourselves means another process cancelled the
            # workflow (after our own finish the context is done anyway).
            self.runs.mark_cancelled((ident,))
        elif kind == Hint.ALL:
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
        ids = [ctx.workflow_id for ctx in self.runs.running_contexts()]
        if not ids:
            return
        try:
            for ident in self.store.workflows_cancelled(ids):
                self.runs.mark_cancelled((ident,))
                self.waiters.notify(Hint.CANCEL, ident)
        except Exception:
            log.debug("cancel check failed", exc_info=True)

    # -- cancellation -------------------------------------------------------------------------
    def cancel_tree(self, workflow_id: str, *, with_children: bool = True) -> list[str]:
        """Cancel the workflow and its unfinished descendants; runs here stop at their next step."""
        ids = self.store.workflow_cancel(workflow_id, now_ms(), with_children=with_children)
        self.runs.mark_cancelled([workflow_id, *ids])
        return ids

    def _deadline_passed(self, workflow_id: str) -> None:
        self.cancel_tree(workflow_id)

    # -- results ------------------------------------------------------------------------------
    def await_result(self, workflow_id: str, timeout: float | None = None, *, local: bool = True) -> Any:
        fut = self.runs.future(workflow_id) if local else None
        if fut is not None:
            return self.future_result(fut, workflow_id, timeout)
        row = self.waiters.until(Hint.DONE, workflow_id, "", functools.partial(self._finished, workflow_id), timeout)
        if row is None:
            raise TimeoutError(f"workflow {workflow_id!r} did not finish within {timeout} s")
        return status.outcome(row)

    def future_result(self, fut: concurrent.futures.Future[Any], workflow_id: str, timeout: float | None) -> Any:
        """The result through this process's future; from the database when it runs elsewhere."""
        try:
            return fut.result(timeout)
        except NotLocal:
            return self.await_result(workflow_id, timeout, local=False)
        except concurrent.futures.TimeoutError:
            raise TimeoutError(f"workflow {workflow_id!r} did not finish within {timeout} s") from None

    async def await_result_async(self, workflow_id: str, timeout: float | None = None, *, local: bool = True) -> Any:
        fut = self.runs.future(workflow_id) if local else None
        if fut is not None:
            try:
                # shield: a timeout here must not cancel the run's future, which other waiters share
                return await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(fut)), timeout)
            except NotLocal:
                pass
            except asyncio.TimeoutError:
                raise TimeoutError(f"workflow {workflow_id!r} did not finish within {timeout} s") from None

        async def read() -> WorkflowRow | None:
            return await self.aio(self._finished, workflow_id)

        row = await self.waiters.until_async(Hint.DONE, workflow_id, "", read, timeout)
        if row is None:
            raise TimeoutError(f"workflow {workflow_id!r} did not finish within {timeout} s")
        return status.outcome(row)

    def _finished(self, workflow_id: str) -> WorkflowRow | None:
        row = self.store.workflow_get(workflow_id)
        if row is None:
            raise WorkflowNotFoundError(workflow_id)
        return row if row.is_terminal else None

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
