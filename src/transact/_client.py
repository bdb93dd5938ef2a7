"""DBOSClient: operate a system database from any process, without ``DBOS.launch()``.

A store and a serializer, no Runtime: enqueued, resumed and forked work is run by the live
application processes (queue workers claim ENQUEUED rows; unowned PENDING rows are adopted).
Waiting (results, events) is pushed when possible (Postgres LISTEN, SQLite data_version polling,
started on first use) with a backing-off re-read as the safety net.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, NoReturn, TypeVar

from transact._client_handles import WorkflowHandleClient, WorkflowHandleClientAsync
from transact._client_late_comms import ClientLateComms
from transact._client_queues import ClientQueues
from transact._client_schedules import ClientSchedules
from transact._client_transfer import ClientTransfer
from transact._client_versions import ClientVersions
from transact._facade import client_args
from transact._facade.waits import handle_ids, pick
from transact._lib.compat import Unpack
from transact._lib.states import Hint
from transact._lib.urls import redact
from transact.engine import admin, by_name, comms, outbox, retention, rewind, serialization, streams, waits
from transact.engine.by_name import EnqueueOptions
from transact.engine.clock import now_ms
from transact.engine.recovery import stranded_workflows
from transact.engine.status import outcome, to_status
from transact.engine.waiters import Waiters
from transact.errors import ConfigError, DatabaseConfigurationError, DatabaseUnavailableError, WorkflowNotFoundError
from transact.models import StepInfo, WorkflowStatus
from transact.storage import Misconfigured, NotFound, Store, Unavailable, open_store

R = TypeVar("R")
T = TypeVar("T")
_Options = EnqueueOptions | Mapping[str, Any]  # a TypedDict or any mapping of the same keys


def _reraise(exc: BaseException) -> NoReturn:
    raise exc


class DBOSClient(ClientSchedules, ClientQueues, ClientTransfer, ClientVersions, ClientLateComms):
    """``DBOSClient(system_database_url)``: enqueue, message, inspect and steer workflows of an
    application that shares this system database. URL default: ``TRANSACT_SYSTEM_DATABASE_URL``
    (``DBOS_SYSTEM_DATABASE_URL`` after ``system_database_engine``).

    ``migrate``: create or upgrade the schema if needed (so enqueues work before any app launched).
    ``retry_timeout_s``: how long database outages are retried before DatabaseUnavailableError.

    DBOS's other arguments are accepted: ``application_database_url`` (or ``database_url``) is
    unused (a client runs no transactions), ``system_database_engine`` lends only its URL,
    ``system_database_pool_size`` sizes the pool, ``dbos_system_schema`` names the Postgres schema
    of the system tables (as the application's config key; SQLite ignores it), ``application_name``
    is the application the client acts for (its enqueues and forks belong to it; the version
    methods read its versions); ``use_listen_notify``, ``system_database_polling_concurrency``, ``lazy``,
    ``retry_connection_errors`` and ``observability_query_timeout_sec`` change nothing.
    ``serializer`` must match the application's: values the client writes use it, and values
    written with it decode (pickle and portable JSON always do)."""

    def __init__(
        self,
        system_database_url: str | None = None,
        *,
        application_database_url: str | None = None,
        database_url: str | None = None,
        system_database_engine: Any = None,
        dbos_system_schema: str | None = None,
        serializer: Any = None,
        system_database_pool_size: int | None = None,
        system_database_polling_concurrency: int | None = None,
        use_listen_notify: bool = True,
        application_name: str | None = None,
        lazy: bool = False,
        retry_connection_errors: bool = True,
        observability_query_timeout_sec: float | None = None,
        migrate: bool = True,
        retry_timeout_s: float = 10.0,
        connect_timeout_s: float = 5.0,
    ) -> None:
        client_args.check_serializer(serializer)
        url = client_args.system_url(
            system_database_url, application_database_url or database_url, system_database_engine
        )
        self.system_database_url = url
        self._application_name = client_args.application(application_name)
        self.system_schema = client_args.schema(dbos_system_schema, url)
        try:
            self._store: Store = open_store(
                url,
                retry_timeout_s=retry_timeout_s,
                pool_size=client_args.pool_size(system_database_pool_size),
                connect_timeout_s=connect_timeout_s,
                schema=self.system_schema,
            )
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        except Misconfigured as exc:
            raise DatabaseConfigurationError(str(exc)) from None
        except Unavailable as exc:
            raise DatabaseUnavailableError(f"cannot open the system database {redact(url)}: {exc}") from None
        self._waiters = Waiters()
        self._listen_lock = threading.Lock()
        self._listening = False
        if migrate:
            self._call(self._store.migrate)

    @property
    def store(self) -> Store:
        return self._store

    def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        try:
            return fn(*args, **kwargs)
        except Misconfigured as exc:
            raise DatabaseConfigurationError(str(exc)) from None
        except Unavailable as exc:
            raise DatabaseUnavailableError(
                f"cannot reach the system database {redact(self.system_database_url)}: {exc}"
            ) from None

    async def _call_async(self, coro: Coroutine[Any, Any, T]) -> T:
        """``_call`` for a coroutine: storage errors become the same public errors."""
        try:
            return await coro
        except (Misconfigured, Unavailable) as exc:
            self._call(_reraise, exc)  # raises the public error

    def check_connection(self) -> None:
        """One round trip to the system database: returns when it answers and holds Transact's
        tables; raises DatabaseUnavailableError / DatabaseConfigurationError (or ConfigError
        for a database that was never migrated) naming the URL otherwise."""
        if self._call(self._store.schema_version) == 0:
            raise ConfigError(
                f"the system database {redact(self.system_database_url)} has no Transact tables: "
                "run `transact migrate --db URL` or launch the application once"
            )

    async def check_connection_async(self) -> None:
        await asyncio.to_thread(self.check_connection)

    def destroy(self) -> None:
        self._store.close()

    def __enter__(self) -> DBOSClient:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.destroy()

    # -- waiting ------------------------------------------------------------------------------
    def _listen(self) -> None:
        with self._listen_lock:
            if not self._listening:
                self._store.set_hint_handler(self._waiters.notify)
                self._store.start_listening()
                self._listening = True

    def _wait_for(
        self, kind: str, ident: str, key: str, read: Callable[[], T | None], timeout: float | None
    ) -> T | None:
        """Re-read until ``read()`` returns a value or ``timeout`` seconds pass (then None)."""
        self._listen()
        return self._waiters.until(kind, ident, key, read, timeout)

    def _result(self, workflow_id: str, timeout: float | None) -> Any:
        def finished() -> Any:
            row = self._call(self._store.workflow_get, workflow_id)
            if row is None:
                raise WorkflowNotFoundError(workflow_id)
            return row if row.is_terminal else None

        row = self._wait_for(Hint.DONE, workflow_id, "", finished, timeout)
        if row is None:
            raise TimeoutError(f"workflow {workflow_id!r} did not finish within {timeout} s")
        return outcome(row)

    # -- starting and messaging ---------------------------------------------------------------
    def enqueue(self, options: _Options, *args: Any, **kwargs: Any) -> WorkflowHandleClient[Any]:
        """Enqueue workflow ``options["workflow_name"]`` on queue ``options["queue_name"]``; an
        application process that registers both runs it. The other keys: see ``EnqueueOptions``
        (a method: its bare name plus ``workflow_class_name``, and ``workflow_config_name`` for a
        configured instance). ``application_name`` runs it (default the client's). Reusing a
        workflow id never runs it twice."""
        wid = self._call(by_name.enqueue, self._store, options, args, kwargs, application_name=self._application_name)
        return WorkflowHandleClient(self, wid)

    async def enqueue_async(self, options: _Options, *args: Any, **kwargs: Any) -> WorkflowHandleClientAsync[Any]:
        handle = await asyncio.to_thread(self.enqueue, options, *args, **kwargs)
        return WorkflowHandleClientAsync(self, handle.workflow_id)

    def enqueue_in_transaction(
        self, conn: Any, options: _Options, *args: Any, **kwargs: Any
    ) -> WorkflowHandleClient[Any]:
        """``enqueue`` written through ``conn``, the caller's open connection on the system database,
        in the caller's transaction (see ``DBOS.enqueue_in_transaction`` for the connections
        accepted): the workflow exists only if it commits. The queue must be registered. Returns
        its handle (wait on it after the commit)."""
        what = "DBOSClient.enqueue_in_transaction"
        wid = self._call(outbox.enqueue_by_name, self._store, conn, options, args, kwargs, what=what)
        return WorkflowHandleClient(self, wid)

    def send_in_transaction(
        self,
        conn: Any,
        destination_id: str,
        message: Any,
        topic: str | None = None,
        idempotency_key: str | None = None,
    ) -> None:
        """``send`` written through ``conn`` in the caller's transaction: received once if it commits."""
        what = "DBOSClient.send_in_transaction"
        self._call(outbox.send, self._store, conn, destination_id, message, topic, idempotency_key, what=what)

    async def enqueue_in_transaction_async(
        self, conn: Any, options: _Options, *args: Any, **kwargs: Any
    ) -> WorkflowHandleClientAsync[Any]:
        """``enqueue_in_transaction`` through an async connection (see
        ``DBOS.enqueue_in_transaction_async``)."""
        what = "DBOSClient.enqueue_in_transaction_async"
        wid = await self._call_async(outbox.enqueue_by_name_async(self._store, conn, options, args, kwargs, what=what))
        return WorkflowHandleClientAsync(self, wid)

    async def send_in_transaction_async(
        self,
        conn: Any,
        destination_id: str,
        message: Any,
        topic: str | None = None,
        idempotency_key: str | None = None,
    ) -> None:
        """``send_in_transaction`` through an async connection: received once if it commits."""
        what = "DBOSClient.send_in_transaction_async"
        await self._call_async(
            outbox.send_async(self._store, conn, destination_id, message, topic, idempotency_key, what=what)
        )

    def send(
        self, destination_id: str, message: Any, topic: str | None = None, idempotency_key: str | None = None
    ) -> None:
        """Deliver a message to workflow ``destination_id`` (``DBOS.recv`` takes it)."""
        # The same checks as DBOS.send (ids and topics travel in NOTIFY payloads: bounded length).
        destination_id = comms.checked_text(destination_id, "DBOSClient.send", "destination_id")
        topic = comms.checked_text(topic, "DBOSClient.send", "topic", optional=True)
        if idempotency_key is not None:
            idempotency_key = comms.checked_text(idempotency_key, "DBOSClient.send", "idempotency_key")
        data = serialization.dumps(message, what=f"the message sent to workflow {destination_id!r}")
        try:
            self._call(
                self._store.message_send,
                destination_id=destination_id,
                topic=topic,
                message=data,
                idempotency_key=idempotency_key,
                now=now_ms(),
            )
        except NotFound:
            raise WorkflowNotFoundError(destination_id) from None

    async def send_async(
        self, destination_id: str, message: Any, topic: str | None = None, idempotency_key: str | None = None
    ) -> None:
        await asyncio.to_thread(self.send, destination_id, message, topic, idempotency_key)

    def send_bulk(self, messages: Sequence[Any]) -> None:
        """Deliver many messages in one transaction (as ``DBOS.send_bulk``): all, or none when a
        destination does not exist (WorkflowNotFoundError)."""
        out = comms.bulk_messages(messages, "DBOSClient.send_bulk")
        if out:
            try:
                self._call(self._store.message_send_bulk, messages=out, now=now_ms())
            except NotFound as exc:
                raise WorkflowNotFoundError(str(exc)) from None

    async def send_bulk_async(self, messages: Sequence[Any]) -> None:
        await asyncio.to_thread(self.send_bulk, messages)

    def read_stream(
        self, workflow_id: str, key: str, *, offset: int = 0, timeout_seconds: float | None = None
    ) -> Iterator[Any]:
        """Yield the values of workflow ``workflow_id``'s stream ``key`` in order (as
        ``DBOS.read_stream``): waits for new ones, ends when the stream is closed or the workflow
        has ended. ``offset``: start at that value; ``timeout_seconds``: TimeoutError after that."""
        read = streams.checked("DBOSClient.read_stream", workflow_id, key, offset, timeout_seconds)
        self._listen()
        return self._unavailable_mapped(streams.values(self._store, self._waiters, read))

    def read_stream_async(
        self, workflow_id: str, key: str, *, offset: int = 0, timeout_seconds: float | None = None
    ) -> AsyncIterator[Any]:
        """``read_stream`` as an async generator: ``async for value in client.read_stream_async(...)``."""
        read = streams.checked("DBOSClient.read_stream", workflow_id, key, offset, timeout_seconds)
        return self._stream_async(read)

    def _unavailable_mapped(self, values: Iterator[Any]) -> Iterator[Any]:
        try:
            yield from values
        except Unavailable as exc:
            raise DatabaseUnavailableError(
                f"cannot reach the system database {redact(self.system_database_url)}: {exc}"
            ) from None

    async def _stream_async(self, read: streams.Read) -> AsyncIterator[Any]:
        await asyncio.to_thread(self._listen)
        try:
            async for value in streams.values_async(self._store, self._waiters, read, asyncio.to_thread):
                yield value
        except Unavailable as exc:
            raise DatabaseUnavailableError(
                f"cannot reach the system database {redact(self.system_database_url)}: {exc}"
            ) from None

    def get_event(self, workflow_id: str, key: str, timeout_seconds: float = 60) -> Any:
        """The value of event ``key`` set by workflow ``workflow_id``; None if not set in time."""
        workflow_id = comms.checked_text(workflow_id, "DBOSClient.get_event", "workflow_id")
        key = comms.checked_text(key, "DBOSClient.get_event", "key")
        timeout_ms = comms.checked_duration_ms(timeout_seconds, "DBOSClient.get_event", "timeout_seconds")
        data = self._wait_for(
            Hint.EVENT,
            workflow_id,
            key,
            lambda: self._call(self._store.event_get, workflow_id, key),
            timeout_ms / 1000,
        )
        return serialization.loads(data)

    def get_all_events(self, workflow_id: str) -> dict[str, Any]:
        """Every event workflow ``workflow_id`` has set, key -> latest value."""
        workflow_id = comms.checked_text(workflow_id, "DBOSClient.get_all_events", "workflow_id")
        events = self._call(self._store.events_get_all, workflow_id)
        return {key: serialization.loads(data) for key, data in events.items()}

    async def get_all_events_async(self, workflow_id: str) -> dict[str, Any]:
        return await asyncio.to_thread(self.get_all_events, workflow_id)

    async def get_event_async(self, workflow_id: str, key: str, timeout_seconds: float = 60) -> Any:
        return await asyncio.to_thread(self.get_event, workflow_id, key, timeout_seconds)

    def wait_first(
        self, handles: list[WorkflowHandleClient[Any]], *, polling_interval_sec: float = 1.0
    ) -> WorkflowHandleClient[Any]:
        """Wait until any of ``handles`` has finished and return that handle (the first to finish, if
        several have). Nothing is recorded: a client is not a workflow."""
        api = "DBOSClient.wait_first"
        ids = waits.checked_ids(handle_ids(handles, api, _CLIENT_HANDLES, "WorkflowHandleClient"), api)
        poll = waits.checked_poll(polling_interval_sec, api)
        self._listen()
        return pick(handles, ids, self._call(waits.first_finished, self._store, self._waiters, ids, poll))

    async def wait_first_async(
        self, handles: list[WorkflowHandleClientAsync[Any]], *, polling_interval_sec: float = 1.0
    ) -> WorkflowHandleClientAsync[Any]:
        """``wait_first`` for async code: waits on the event loop, reads on a worker thread."""
        api = "DBOSClient.wait_first_async"
        ids = waits.checked_ids(handle_ids(handles, api, _CLIENT_HANDLES, "WorkflowHandleClientAsync"), api)
        poll = waits.checked_poll(polling_interval_sec, api)
        await asyncio.to_thread(self._listen)
        try:
            won = await waits.first_finished_async(self._store, self._waiters, ids, poll, asyncio.to_thread)
        except Unavailable as exc:
            raise DatabaseUnavailableError(
                f"cannot reach the system database {redact(self.system_database_url)}: {exc}"
            ) from None
        return pick(handles, ids, won)

    # -- finding ------------------------------------------------------------------------------
    def retrieve_workflow(self, workflow_id: str, existing_workflow: bool = True) -> WorkflowHandleClient[Any]:
        if existing_workflow:
            self._call(admin.get_row, self._store, workflow_id)
        return WorkflowHandleClient(self, workflow_id)

    async def retrieve_workflow_async(
        self, workflow_id: str, existing_workflow: bool = True
    ) -> WorkflowHandleClientAsync[Any]:
        handle = await asyncio.to_thread(self.retrieve_workflow, workflow_id, existing_workflow)
        return WorkflowHandleClientAsync(self, handle.workflow_id)

    def get_workflow_status(self, workflow_id: str) -> WorkflowStatus | None:
        row = self._call(self._store.workflow_get, workflow_id)
        return to_status(row) if row is not None else None

    def list_workflows(self, **filters: Unpack[admin.ListFilters]) -> list[WorkflowStatus]:
        """Same filters as ``DBOS.list_workflows``: oldest first unless ``sort_desc``."""
        return self._call(admin.list_workflows, self._store, admin.list_query(**filters))

    async def list_workflows_async(self, **filters: Unpack[admin.ListFilters]) -> list[WorkflowStatus]:
        return await asyncio.to_thread(lambda: self.list_workflows(**filters))

    def list_queued_workflows(self, **filters: Unpack[admin.QueuedFilters]) -> list[WorkflowStatus]:
        """Workflows waiting in or running from a queue (ENQUEUED, DELAYED or PENDING)."""
        return self._call(admin.list_workflows, self._store, admin.list_query(queued_only=True, **filters))

    async def list_queued_workflows_async(self, **filters: Unpack[admin.QueuedFilters]) -> list[WorkflowStatus]:
        return await asyncio.to_thread(lambda: self.list_queued_workflows(**filters))

    def list_workflow_steps(
        self, workflow_id: str, *, load_output: bool = True, limit: int | None = None, offset: int | None = None
    ) -> list[StepInfo]:
        """The workflow's recorded steps in execution order (as ``DBOS.list_workflow_steps``)."""
        return self._call(
            admin.list_steps, self._store, workflow_id, load_output=load_output, limit=limit, offset=offset
        )

    async def list_workflow_steps_async(
        self, workflow_id: str, *, load_output: bool = True, limit: int | None = None, offset: int | None = None
    ) -> list[StepInfo]:
        return await asyncio.to_thread(
            lambda: self.list_workflow_steps(workflow_id, load_output=load_output, limit=limit, offset=offset)
        )

    def list_stranded_workflows(self, *, lease_seconds: float = 30.0, limit: int = 1000) -> list[WorkflowStatus]:
        """PENDING workflows whose owner is gone and that no live process can run."""
        rows = self._call(
            stranded_workflows, self._store, lease_seconds=lease_seconds, hostname=socket.gethostname(), limit=limit
        )
        return [to_status(row, load_output=False) for row in rows]

    # -- steering -----------------------------------------------------------------------------
    def cancel_workflow(self, workflow_id: str, *, cancel_children: bool = True) -> None:
        """Cancel the workflow and (by default) its unfinished descendants (running ones stop at
        their next step)."""
        self._call(admin.cancel, self._store, workflow_id, cancel_children=cancel_children)

    async def cancel_workflow_async(self, workflow_id: str, *, cancel_children: bool = True) -> None:
        await asyncio.to_thread(lambda: self.cancel_workflow(workflow_id, cancel_children=cancel_children))

    def update_workflow_attributes(
        self, workflow_id: str, attributes: dict[str, Any] | None, *, merge: bool = True
    ) -> None:
        """Add ``attributes`` to the workflow's own (``merge=False``: replace them; None clears).
        Raises WorkflowNotFoundError for an unknown id."""
        self._call(admin.update_attributes, self._store, workflow_id, attributes, merge=merge)

    async def update_workflow_attributes_async(
        self, workflow_id: str, attributes: dict[str, Any] | None, *, merge: bool = True
    ) -> None:
        await asyncio.to_thread(lambda: self.update_workflow_attributes(workflow_id, attributes, merge=merge))

    def resume_workflow(self, workflow_id: str, *, queue_name: str | None = None) -> WorkflowHandleClient[Any]:
        """Continue a CANCELLED, MAX_RECOVERY_ATTEMPTS_EXCEEDED, stuck PENDING or still-queued
        workflow: a live application process that registers it picks it up (``queue_name``:
        enqueue it on that queue instead)."""
        self._call(admin.resume, self._store, workflow_id, queue_name=queue_name)
        return WorkflowHandleClient(self, workflow_id)

    async def resume_workflow_async(
        self, workflow_id: str, *, queue_name: str | None = None
    ) -> WorkflowHandleClientAsync[Any]:
        await asyncio.to_thread(lambda: self.resume_workflow(workflow_id, queue_name=queue_name))
        return WorkflowHandleClientAsync(self, workflow_id)

    def rewind_workflow(
        self, workflow_id: str, start_step: int, *, queue_name: str | None = None
    ) -> WorkflowHandleClient[Any]:
        """As ``DBOS.rewind_workflow``: re-run from ``start_step`` under the same id (a live app runs it)."""
        self._call(rewind.rewind, self._store, workflow_id, start_step, queue_name=queue_name)
        return WorkflowHandleClient(self, workflow_id)

    async def rewind_workflow_async(
        self, workflow_id: str, start_step: int, *, queue_name: str | None = None
    ) -> WorkflowHandleClientAsync[Any]:
        await asyncio.to_thread(lambda: self.rewind_workflow(workflow_id, start_step, queue_name=queue_name))
        return WorkflowHandleClientAsync(self, workflow_id)

    def fork_workflow(
        self,
        workflow_id: str,
        start_step: int,
        *,
        application_version: str | None = None,
        new_workflow_id: str | None = None,
        queue_name: str | None = None,
        queue_partition_key: str | None = None,
        timeout_seconds: float | None = None,
    ) -> WorkflowHandleClient[Any]:
        """Run the workflow again under a new id, reusing the outcomes of steps before ``start_step``
        (``queue_name``: the fork waits in that queue; ``timeout_seconds``: default the original's)."""
        new_id = self._call(
            admin.fork,
            self._store,
            workflow_id,
            start_step,
            app_version=application_version,
            new_workflow_id=new_workflow_id,
            queue_name=queue_name,
            queue_partition_key=queue_partition_key,
            timeout_seconds=timeout_seconds,
            application_name=self._application_name,
        )
        return WorkflowHandleClient(self, new_id)

    async def fork_workflow_async(
        self,
        workflow_id: str,
        start_step: int,
        *,
        application_version: str | None = None,
        new_workflow_id: str | None = None,
        queue_name: str | None = None,
        queue_partition_key: str | None = None,
        timeout_seconds: float | None = None,
    ) -> WorkflowHandleClientAsync[Any]:
        handle = await asyncio.to_thread(
            lambda: self.fork_workflow(
                workflow_id,
                start_step,
                application_version=application_version,
                new_workflow_id=new_workflow_id,
                queue_name=queue_name,
                queue_partition_key=queue_partition_key,
                timeout_seconds=timeout_seconds,
            )
        )
        return WorkflowHandleClientAsync(self, handle.workflow_id)

    def delete_workflow(self, workflow_id: str, *, delete_children: bool = False) -> None:
        self._call(admin.delete, self._store, workflow_id, delete_children=delete_children)

    async def delete_workflow_async(self, workflow_id: str, *, delete_children: bool = False) -> None:
        await asyncio.to_thread(lambda: self.delete_workflow(workflow_id, delete_children=delete_children))

    # -- many at once -------------------------------------------------------------------------
    def cancel_workflows(self, workflow_ids: list[str]) -> None:
        """Cancel each listed workflow with its unfinished descendants (unknown ids: nothing changes)."""
        self._call(admin.cancel_many, self._store, workflow_ids)

    async def cancel_workflows_async(self, workflow_ids: list[str]) -> None:
        await asyncio.to_thread(self.cancel_workflows, workflow_ids)

    def resume_workflows(self, workflow_ids: list[str]) -> list[WorkflowHandleClient[Any]]:
        """Resume each listed workflow (as ``resume_workflow``); one handle per id, in order."""
        return [WorkflowHandleClient(self, i) for i in self._call(admin.resume_many, self._store, workflow_ids)]

    async def resume_workflows_async(self, workflow_ids: list[str]) -> list[WorkflowHandleClientAsync[Any]]:
        handles = await asyncio.to_thread(self.resume_workflows, workflow_ids)
        return [WorkflowHandleClientAsync(self, h.workflow_id) for h in handles]

    def delete_workflows(self, workflow_ids: list[str], *, delete_children: bool = False) -> None:
        """Delete each listed workflow and everything recorded for it (descendants too when asked)."""
        self._call(admin.delete_many, self._store, workflow_ids, delete_children=delete_children)

    async def delete_workflows_async(self, workflow_ids: list[str], *, delete_children: bool = False) -> None:
        await asyncio.to_thread(lambda: self.delete_workflows(workflow_ids, delete_children=delete_children))

    def garbage_collect(self, cutoff_epoch_ms: int | None = None, rows_threshold: int | None = None) -> int:
        """As ``DBOS.garbage_collect``: delete finished workflows beyond either limit; returns how many."""
        return self._call(retention.garbage_collect, self._store, cutoff_epoch_ms, rows_threshold)


_CLIENT_HANDLES = (WorkflowHandleClient, WorkflowHandleClientAsync)
