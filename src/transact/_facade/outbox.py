"""DBOS facade: the transactional outbox, ``enqueue_in_transaction`` and ``send_in_transaction``
(Transact's own API: DBOS does not document these names). Delegates to engine/outbox.py.

Queue lookup comes from transact._queue, workflow resolution from transact._facade.targets; this
mixin does not import transact._dbos.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from transact import _queue
from transact._facade._base import FacadeBase
from transact._facade.targets import resolve
from transact._handles import WorkflowHandle, WorkflowHandleAsync
from transact._lib import checks
from transact._options import current_enqueue_options
from transact.engine import outbox


class OutboxFacade(FacadeBase):
    @classmethod
    def enqueue_in_transaction(
        cls, conn: Any, queue_name: str, workflow: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> WorkflowHandle[Any]:
        """Enqueue ``workflow(*args, **kwargs)`` on queue ``queue_name`` by writing its row through
        ``conn``, the caller's open connection on the system database, inside the caller's current
        transaction: the workflow exists (and workers are woken) only if that transaction commits;
        a rollback leaves no trace. Returns its handle (wait on it after the commit).

        ``conn``: a psycopg 3 ``Connection`` or a SQLAlchemy ``Connection``/``Session`` on the same
        Postgres database (tables in schema ``transact``; the caller's search_path does not matter),
        or, on SQLite, a ``sqlite3.Connection`` or SQLAlchemy connection on the system database file
        itself: the row joins the caller's write transaction on that file (the caller holds SQLite's
        single write lock until it commits, so any other write to the system database, this
        thread's own DBOS calls included, waits for that commit: commit promptly). A connection in autocommit mode
        outside a transaction, a closed one, or one on another database is refused with a
        ConfigError before anything is written; so is an unknown queue.

        ``SetWorkflowID``, ``SetWorkflowTimeout`` and ``SetEnqueueOptions`` apply as for
        ``Queue.enqueue``; reusing a workflow id returns the existing workflow (runs once). An
        active deduplication id raises QueueDeduplicatedError (the caller's transaction stays
        usable). Allowed outside workflows and in steps; refused in a workflow's body."""
        rt = cls._rt()
        if not isinstance(queue_name, str) or not queue_name:
            raise checks.fail("DBOS.enqueue_in_transaction queue_name", "a non-empty queue name", queue_name)
        queue = _queue.by_name(queue_name)
        info, call_args = resolve(workflow, args)
        spec = queue._spec(rt, current_enqueue_options())
        wid = outbox.enqueue(rt, conn, info, call_args, kwargs, spec, what="DBOS.enqueue_in_transaction")
        return WorkflowHandle(rt, wid)

    @classmethod
    async def enqueue_in_transaction_async(
        cls, conn: Any, queue_name: str, workflow: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> WorkflowHandleAsync[Any]:
        """``enqueue_in_transaction`` through an async connection on the system database: a
        SQLAlchemy ``AsyncConnection`` or ``AsyncSession`` (asyncpg is not supported: use
        ``postgresql+psycopg``; ``sqlite+aiosqlite`` on SQLite) or a psycopg ``AsyncConnection``,
        inside its open transaction. Same rules and errors as the synchronous form."""
        rt = cls._rt()
        what = "DBOS.enqueue_in_transaction_async"
        if not isinstance(queue_name, str) or not queue_name:
            raise checks.fail(f"{what} queue_name", "a non-empty queue name", queue_name)
        queue = await rt.aio(_queue.by_name, queue_name)
        info, call_args = resolve(workflow, args)
        spec = await rt.aio(queue._spec, rt, current_enqueue_options())
        wid = await outbox.enqueue_async(rt, conn, info, call_args, kwargs, spec, what=what)
        return WorkflowHandleAsync(rt, wid)

    @classmethod
    def send_in_transaction(
        cls,
        conn: Any,
        destination_id: str,
        message: Any,
        topic: str | None = None,
        idempotency_key: str | None = None,
    ) -> None:
        """Send ``message`` to workflow ``destination_id`` by writing it through ``conn`` (as for
        ``enqueue_in_transaction``) in the caller's current transaction: ``DBOS.recv`` receives it
        once if the transaction commits, never if it rolls back. The destination must exist as the
        caller's transaction sees it (it may have been enqueued earlier in the same transaction),
        else WorkflowNotFoundError. Not recorded as a workflow step."""
        rt = cls._rt()
        outbox.send(rt.store, conn, destination_id, message, topic, idempotency_key, what="DBOS.send_in_transaction")

    @classmethod
    async def send_in_transaction_async(
        cls,
        conn: Any,
        destination_id: str,
        message: Any,
        topic: str | None = None,
        idempotency_key: str | None = None,
    ) -> None:
        """``send_in_transaction`` through an async connection (as for
        ``enqueue_in_transaction_async``), in the caller's open transaction."""
        rt = cls._rt()
        what = "DBOS.send_in_transaction_async"
        await outbox.send_async(rt.store, conn, destination_id, message, topic, idempotency_key, what=what)
