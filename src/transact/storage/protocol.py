"""The storage contract: what the engine, the client and the CLI may ask of the system database.

One protocol per concern, composed into ``SystemStore`` (``transact.storage.Store`` is the same
type). Both drivers implement every method (``SqliteStore``, ``PostgresStore``; ``open_store``
returns them as ``SystemStore``, so the type checker proves it) and pass one conformance suite
(tests/storage/). Rules every method keeps:

- Keyword arguments in, frozen rows (rows.py) out; no driver object or driver exception leaves
  storage, only the errors of errors.py. Outages are retried with back-off inside the store
  (``retry_timeout_s``); ``Unavailable`` means the budget ran out.
- Times are epoch ms passed in by the caller; SQL never reads the clock.
- Checkpoint writes (``*_step``, ``step_record``, ``workflow_finish``, ``child_insert``) are fenced:
  they succeed only while the workflow is PENDING and owned by ``executor_id``. A miss returns the
  outcome recorded earlier at that position, or raises ``WorkflowNotPending`` / ``OwnershipLost``.
- After a commit someone may wait for, the store hints this process (``hint``); other processes
  learn of it through the driver's notifications. Hints are never truth: waiters re-read.
- "Round trips" count statements sent to the database by the calling thread
  (``thread_round_trips``); Postgres counts BEGIN and COMMIT of a transaction too.

Must not import the engine or the facade.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from transact._lib.states import HintHandler
from transact.storage.late_comms_protocol import LateCommsStore
from transact.storage.partitions_protocol import PartitionStore
from transact.storage.recovery_protocol import RecoveryStore
from transact.storage.retention_protocol import RetentionStore
from transact.storage.rewind_protocol import RewindStore
from transact.storage.rows import ExecutorRow, ListQuery, QueueClaim, ScheduleRow, StepRow, StreamItem, WorkflowRow
from transact.storage.stats_protocol import StatsStore
from transact.storage.transfer_protocol import TransferStore
from transact.storage.versions_protocol import VersionStore

if TYPE_CHECKING:
    from transact.storage.queues import QueueRow


class WorkflowStore(RecoveryStore, Protocol):
    """Workflow rows: start, finish, cancel, and the reads and writes of recovery (workflows.py)."""

    def workflow_insert(self, row: WorkflowRow) -> tuple[WorkflowRow, bool]:
        """Create the workflow unless its id exists. Returns (stored row, inserted): an existing
        row is returned unchanged. Hints ``queue`` when the new row is ENQUEUED (key ``delayed``
        when DELAYED). Round trips: 1 (2 when the id already exists)."""
        ...

    def child_insert(
        self, row: WorkflowRow, *, parent_id: str, function_id: int, executor_id: str, now: int
    ) -> tuple[WorkflowRow, bool]:
        """Create a child workflow and record it as the parent's step ``function_id``, in one
        transaction fenced on the parent. If the parent already recorded a child at that position,
        the recorded child is returned (inserted False)."""
        ...

    def workflow_get(self, workflow_id: str) -> WorkflowRow | None:
        """The row, or None. Round trips: 1."""
        ...

    def workflow_finish(
        self,
        *,
        workflow_id: str,
        executor_id: str,
        status: str,
        output: bytes | None,
        error: bytes | None,
        now: int,
    ) -> None:
        """Record the final outcome, fenced on ownership; hints ``done``. A retried finish whose
        first attempt committed is accepted. Round trips: 1 (why it missed is asked only then)."""
        ...

    def workflow_set_status(self, workflow_id: str, status: str, now: int) -> None:
        """Set the status unconditionally (no fence) and hint ``done``. Round trips: 1."""
        ...

    def workflow_cancel(self, workflow_id: str, now: int, *, with_children: bool = True) -> list[str]:
        """Cancel a workflow and (``with_children``) every unfinished descendant in one statement;
        hints ``done`` and ``cancel`` for each. Returns the ids that changed (finished ones are
        left alone)."""
        ...

    def workflows_cancelled(self, workflow_ids: Sequence[str]) -> list[str]:
        """Which of these workflows are CANCELLED. Round trips: 1 (0 for no ids)."""
        ...


class StepStore(Protocol):
    """Step outcomes: the fenced checkpoint and the reads of replay (steps.py)."""

    def step_record(self, step: StepRow, *, executor_id: str) -> StepRow | None:
        """Checkpoint a step outcome, fenced on ownership and status. Returns None when written,
        or the row recorded earlier at the same position (the caller must use it). Round trips: 1
        (the hot path: concurrent calls may share one group commit on Postgres)."""
        ...

    def step_record_cancelled(self, step: StepRow, *, executor_id: str) -> bool:
        """Record the outcome of a step that finished while its workflow was being cancelled:
        written only while the workflow is CANCELLED and still names ``executor_id`` as owner, so a
        later resume replays it instead of running it again. True when written. Round trips: 1."""
        ...

    def steps_load(self, workflow_id: str) -> dict[int, StepRow]:
        """Every recorded outcome of a workflow by function id, for replay. Round trips: 1."""
        ...

    def steps_load_many(self, workflow_ids: Sequence[str]) -> dict[str, dict[int, StepRow]]:
        """``steps_load`` for a batch (every id is a key, maybe empty). Round trips: 1."""
        ...

    def steps_list(self, workflow_id: str) -> list[StepRow]:
        """A workflow's recorded steps in function id order. Round trips: 1."""
        ...


class ExecutorStore(Protocol):
    """The registry of live processes: heartbeats, liveness, shutdown (executors.py)."""

    def executor_register(self, row: ExecutorRow) -> None:
        """Insert or replace this executor's row. Round trips: 1."""
        ...

    def executor_heartbeat(self, executor_id: str, now: int, workflow_names: str | None = None) -> bool:
        """Renew the lease (and the published workflow names when given). False when the row is
        gone or no longer RUNNING (another process judged it dead). Round trips: 1."""
        ...

    def executor_list(self) -> list[ExecutorRow]:
        """Every executor, oldest start first. Round trips: 1."""
        ...

    def executor_set_state(self, executor_id: str, state: str, *, only_if: str | None = None) -> bool:
        """Set the state (only from ``only_if`` when given); hints ``executor`` when it changed."""
        ...

    def executor_delete(self, executor_id: str, *, only_if_idle: bool = False) -> bool:
        """Forget an executor; ``only_if_idle``: only when it owns no PENDING workflow, decided in
        the same statement. True if deleted; hints ``executor``. Round trips: 1."""
        ...


class QueueStore(PartitionStore, Protocol):
    """Queued workflows: claims under limits, delayed work, partitions (queues.py)."""

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
        """Move up to ``max_rows`` ready rows (priority, then age) to PENDING for ``executor_id``;
        concurrent claimers never take the same row. ``concurrency`` caps the rows PENDING in the
        queue across every process, ``rate_limit`` the starts within ``rate_period_ms`` (per
        partition when ``partition_key`` is given); when a limit stops the claim the result says
        which (``running`` / ``retry_at``). ``app_version``: only work enqueued under it;
        ``application_name``: only that application's rows and unowned ones.
        Round trips: 1 without limits; with them one transaction (Postgres: 5 with BEGIN and
        COMMIT; SQLite: 2), plus 1 when the concurrency limit is reached."""
        ...

    def queue_probe(self, *, queue_name: str) -> tuple[bool, int | None]:
        """(ready work exists, earliest available_at of delayed work). Takes no lock. Round trips: 1."""
        ...

    def queue_promote(self, *, queue_name: str, now: int) -> int | None:
        """Make due delayed work ENQUEUED (hint ``queue`` if any); returns the next due time.
        Round trips: 2."""
        ...

    def queue_release(self, *, workflow_id: str, executor_id: str, now: int) -> bool:
        """Give a claimed, unstarted workflow back to its queue (ENQUEUED, unowned) if this
        executor still holds it; hints ``queue`` (key ``requeued``). Round trips: 1."""
        ...

    def queue_register(self, row: QueueRow, *, on_conflict: str) -> tuple[QueueRow, bool]:
        """Create a registered queue, or resolve the clash with the stored one (``on_conflict``:
        ``always_update``, ``never_update``, ``update_if_latest_version``). Returns (stored,
        written); hints ``qconf`` when written. Round trips: 1 transaction."""
        ...

    def queue_get(self, *, queue_name: str) -> QueueRow | None:
        """The registered queue, or None. Round trips: 1."""
        ...

    def queue_list(self) -> list[QueueRow]:
        """Every registered queue, by name. Round trips: 1."""
        ...

    def queue_update(self, *, queue_name: str, changes: dict[str, object], now: int) -> QueueRow | None:
        """Set some limits of a registered queue (None: no such queue); hints ``qconf``. Round trips: 1."""
        ...

    def queue_delete(self, *, queue_name: str) -> tuple[bool, int]:
        """Delete a registered queue unless workflows are still active in it: (deleted, active).
        Round trips: 1 transaction."""
        ...

    def queue_dedup_owner(self, *, queue_name: str, deduplication_id: str) -> str | None:
        """The active workflow holding ``deduplication_id`` in the queue, if any. Round trips: 1."""
        ...

    def queue_set_delay(self, *, workflow_id: str, available_at: int, now: int) -> str | None:
        """Move a DELAYED workflow's due time: None when done, else its status ("" if missing).
        Round trips: 1 (2 when not DELAYED)."""
        ...


class CommsStore(Protocol):
    """Messages, events and streams (comms.py). Each ``*_step`` method commits its row together
    with the workflow's step outcome, fenced like ``step_record``: a crash never leaves one
    without the other, and a replay returns the recorded outcome without writing again."""

    def message_send(
        self, *, destination_id: str, topic: str, message: bytes, idempotency_key: str | None, now: int
    ) -> bool:
        """Deliver a message; hints ``msg``. False when ``idempotency_key`` was already used for
        this destination. Raises NotFound when the destination does not exist. Round trips: 1
        (2 on a miss)."""
        ...

    def message_send_step(
        self,
        step: StepRow,
        *,
        executor_id: str,
        destination_id: str,
        topic: str,
        message: bytes,
        idempotency_key: str | None,
        now: int,
    ) -> StepRow | None:
        """``message_send`` from a workflow, with its step. None when written, else the outcome
        recorded earlier (nothing sent). NotFound (nothing written) for an unknown destination."""
        ...

    def message_send_bulk(self, *, messages: Sequence[tuple[str, str, bytes, str | None]], now: int) -> None:
        """Deliver every message (destination_id, topic, message, idempotency_key) in one
        transaction, or none: NotFound names the first unknown destination. A message whose
        idempotency key was used before for its destination is skipped; hints ``msg`` per
        (destination, topic). Round trips: one transaction."""
        ...

    def message_send_bulk_step(
        self, step: StepRow, *, executor_id: str, messages: Sequence[tuple[str, str, bytes, str | None]], now: int
    ) -> StepRow | None:
        """``message_send_bulk`` from a workflow, with its step. None when written, else the
        outcome recorded earlier (nothing sent). NotFound (nothing written) for an unknown destination."""
        ...

    def message_take_step(self, step: StepRow, *, executor_id: str, topic: str, now: int) -> StepRow | None:
        """Take the oldest unread message for (``step.workflow_id``, ``topic``) and record it as
        the step's output: each message is received once. Returns the recorded step (ours or an
        earlier one, then nothing is taken), or None when no message waits. Round trips: 1 when
        none waits (a plain read); otherwise that read plus one transaction."""
        ...

    def event_set(self, *, workflow_id: str, key: str, value: bytes, now: int) -> None:
        """Upsert an event without a checkpoint (inside a step); hints ``event``. Round trips: 1."""
        ...

    def event_set_step(
        self, step: StepRow, *, executor_id: str, workflow_id: str, key: str, value: bytes, now: int
    ) -> StepRow | None:
        """``event_set`` from a workflow, with its step; None when written, else the earlier outcome."""
        ...

    def event_get(self, workflow_id: str, key: str) -> bytes | None:
        """The event's value, or None when it is not set. Round trips: 1."""
        ...

    def events_get_all(self, workflow_id: str) -> dict[str, bytes]:
        """Every event the workflow set, key -> value (empty when none). Round trips: 1."""
        ...

    def stream_append(self, *, workflow_id: str, key: str, value: bytes | None, closed: bool) -> None:
        """Append the next item without a checkpoint (inside a step); hints ``stream``. Raises
        StreamClosed after a close (closing twice is harmless)."""
        ...

    def stream_append_step(
        self, step: StepRow, *, executor_id: str, workflow_id: str, key: str, value: bytes | None, closed: bool
    ) -> StepRow | None:
        """``stream_append`` from a workflow, with its step; None when written, else the earlier
        outcome. Raises StreamClosed (nothing written) after a close."""
        ...

    def stream_read(self, workflow_id: str, key: str, from_seq: int, limit: int) -> tuple[str | None, list[StreamItem]]:
        """(writer status, items with seq >= from_seq in order; just the close marker when the
        stream was closed before from_seq). The status is read first: every
        item is written before the writer ends, so a terminal status and no items means the stream
        is over. Status None: no such workflow. Round trips: 2 (one read unit)."""
        ...


class ScheduleStore(Protocol):
    """Cron schedules, declared in code or created at run time (schedules.py)."""

    def schedule_create(self, row: ScheduleRow) -> bool:
        """Insert a new schedule; hints ``schedule``. False when the name is taken (nothing is
        written). Round trips: 1."""
        ...

    def schedule_declare(self, row: ScheduleRow) -> ScheduleRow:
        """Insert or refresh a schedule declared in code: the definition follows the code, the
        state and ``last_tick_at`` are kept. Returns the stored row. Round trips: 1."""
        ...

    def schedule_apply(self, rows: Sequence[ScheduleRow]) -> list[str]:
        """Create the schedules not stored yet and redefine those whose definition differs (state
        and ``last_tick_at`` kept), all in one transaction; hints ``schedule`` for each name written
        and returns those names. A name held by a schedule declared in code raises Conflict and
        nothing is written. Round trips: 2 + 1 per name already stored (+ 1 per redefinition)."""
        ...

    def schedule_get(self, schedule_name: str) -> ScheduleRow | None:
        """The row, or None. Round trips: 1."""
        ...

    def schedule_list(
        self,
        *,
        state: str | None = None,
        workflow_name: str | None = None,
        name_prefix: str | None = None,
    ) -> list[ScheduleRow]:
        """Schedules in name order, optionally filtered. Round trips: 1."""
        ...

    def schedule_set_state(self, schedule_name: str, state: str, now: int) -> ScheduleRow | None:
        """Pause or resume (``ACTIVE``); hints ``schedule``. Resuming restarts the progress mark at
        ``now``, so ticks that fell while paused are never backfilled. None for an unknown name."""
        ...

    def schedule_delete(self, schedule_name: str) -> bool:
        """Delete; True if it existed (hints ``schedule``). Round trips: 1."""
        ...

    def schedule_advance(self, schedule_name: str, tick_at: int) -> None:
        """Record that the tick at ``tick_at`` fired; the mark only moves forward (processes
        firing the same ticks race on it). Round trips: 1."""
        ...


class AdminStore(Protocol):
    """Management: listing, resume, fork, delete, schema probe, synthetic rows (admin.py)."""

    def workflows_list(self, q: ListQuery) -> list[WorkflowRow]:
        """Workflows matching ``q`` in creation order (ties by id, so paging is exact); blobs the
        caller did not ask for come back as None. Round trips: 1."""
        ...

    def workflows_explain(self, q: ListQuery) -> str:
        """The database's plan for ``workflows_list(q)``, one line per node."""
        ...

    def workflow_resume(
        self,
        *,
        workflow_id: str,
        from_statuses: Sequence[str],
        executor_id: str | None,
        now: int,
        queue_name: str | None = None,
    ) -> list[WorkflowRow]:
        """Restart a workflow in one of ``from_statuses`` from its checkpoints, with its CANCELLED
        descendants, in one transaction: queued ones go back to their queue, others become PENDING
        for ``executor_id`` (None: any live process adopts them); the recovery count restarts. A
        workflow still waiting in its queue (ENQUEUED, DELAYED) leaves the queue and becomes PENDING
        at once; with ``queue_name`` the workflow is ENQUEUED on that queue instead.
        Returns the updated rows, the workflow first; empty when its status did not match."""
        ...

    def workflow_set_attributes(self, workflow_id: str, attributes: str | None, *, merge: bool) -> bool:
        """Replace a workflow's attributes (JSON object text; None clears), or with ``merge`` add
        them to its own, in one transaction; ``updated_at`` is left alone. False: no such workflow."""
        ...

    def workflow_fork(self, row: WorkflowRow, *, source_id: str, start_step: int) -> int:
        """Insert ``row`` and copy the source's steps below ``start_step``, atomically. Raises
        Conflict if the new id exists. Returns the number of steps copied."""
        ...

    def workflow_delete(self, workflow_id: str, *, with_children: bool) -> list[str]:
        """Delete a workflow with its steps, messages, events and streams (and its descendants
        when asked); hints ``done`` for each. Returns the deleted ids (empty: no such workflow)."""
        ...

    def admin_wake_adopters(self) -> None:
        """Ask every live process to look for unowned PENDING work now. Round trips: at most 1."""
        ...

    def schema_version(self) -> int:
        """The installed schema version; 0 when Transact's tables do not exist yet."""
        ...

    def admin_insert_synthetic(
        self,
        *,
        count: int,
        id_prefix: str,
        names: Sequence[str],
        statuses: Sequence[str],
        now: int,
    ) -> None:
        """Insert ``count`` minimal rows (``id_prefix`` + n), 1 ms apart ending at ``now``, names
        and statuses cycling through the given ones; then refresh planner statistics (bench)."""
        ...


class DebounceStore(Protocol):
    """Debounce windows: DELAYED rows pushed back by each call (debounce.py)."""

    def workflow_debounce(self, row: WorkflowRow, *, max_wait_ms: int | None, now: int) -> tuple[str, bool]:
        """Push the open window of (``row.queue_name``, marker ``row.deduplication_id``): its inputs
        become ``row.inputs``, its due time ``row.available_at`` (at most ``max_wait_ms`` after it
        opened). With no open window, insert ``row`` (DELAYED) as the new one; concurrent callers in
        any process open one window between them. Returns (window workflow id, opened); a taken
        ``row.workflow_id`` is returned unchanged. Hints ``queue`` (``delayed``) when it opens.
        Round trips: 1 to push; opening is one transaction."""
        ...


class OutboxStore(Protocol):
    """Writes through the caller's open connection on the system database (sqlite3, psycopg, a
    SQLAlchemy Connection or Session), committed or rolled back with the caller's rows; nothing
    is hinted. A connection that cannot carry them raises ``outbox.BadConnection`` (outbox.py)."""

    def outbox_workflow_insert(self, conn: Any, row: WorkflowRow, *, what: str) -> tuple[WorkflowRow, bool]:
        """``workflow_insert`` in the caller's transaction; Conflict: the deduplication id is active."""
        ...

    def outbox_message_send(
        self,
        conn: Any,
        *,
        destination_id: str,
        topic: str,
        message: bytes,
        idempotency_key: str | None,
        now: int,
        what: str,
    ) -> bool:
        """``message_send`` in the caller's transaction; NotFound: no such destination (as it sees it)."""
        ...


class DriverStore(Protocol):
    """The driver and its lifecycle: schema, connections, hints, counters (_base.py and drivers)."""

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgres``: names the migrations folder and the statement table."""
        ...

    @property
    def url(self) -> str:
        """The database URL this store opened."""
        ...

    @property
    def pushes_wakeups(self) -> bool:
        """True when other processes' commits arrive as specific hints (Postgres NOTIFY); False
        when they arrive only as the catch-all ``*`` of a poller (SQLite), so loops that wait
        for another process's work should poll more often."""
        ...

    retry_timeout_s: float | None
    """How long outages are retried before ``Unavailable`` (None: forever). Settable."""

    group_commit: bool
    """Whether concurrent checkpoint writes may share one commit (drivers that can). Settable."""

    round_trips: int
    """Round trips made by every thread (bench: idle cost)."""

    def thread_round_trips(self) -> int:
        """Round trips made by the calling thread (budget tests, unaffected by background work)."""
        ...

    def hint(self, kind: str, ident: str, key: str = "") -> None:
        """Deliver a wake-up hint in this process (``kind`` is a ``states.Hint``)."""
        ...

    def set_hint_handler(self, handler: HintHandler | None) -> None:
        """Where hints go: this process's and, once listening, other processes'."""
        ...

    def start_listening(self) -> None:
        """Start delivering other processes' hints (Postgres LISTEN; SQLite data_version poll)."""
        ...

    def note_own_finish(self, workflow_id: str, finishing: bool) -> None:
        """This process is writing the workflow's final state and hints it itself (``finishing``),
        or that write missed; a driver whose notifications echo back may skip the echo."""
        ...

    def migration_scripts(self) -> Iterator[tuple[int, str]]:
        """The shipped migrations of this dialect as (version, script), in version order."""
        ...

    def migrate(self) -> int:
        """Apply every missing migration under a lock (concurrent launches are safe); returns the
        installed version."""
        ...

    def reset(self) -> None:
        """Drop every Transact table (tests and ``transact reset``)."""
        ...

    def close(self) -> None:
        """Stop listening, end retries in progress and close every connection."""
        ...


class SystemStore(
    WorkflowStore,
    StepStore,
    ExecutorStore,
    QueueStore,
    CommsStore,
    LateCommsStore,
    ScheduleStore,
    AdminStore,
    DebounceStore,
    OutboxStore,
    RetentionStore,
    StatsStore,
    TransferStore,
    VersionStore,
    RewindStore,
    DriverStore,
    Protocol,
):
    """Everything the engine, the client and the CLI may ask of the system database."""


CONCERNS: tuple[type, ...] = (
    WorkflowStore,
    RecoveryStore,
    StepStore,
    ExecutorStore,
    QueueStore,
    PartitionStore,
    CommsStore,
    LateCommsStore,
    ScheduleStore,
    AdminStore,
    DebounceStore,
    OutboxStore,
    RetentionStore,
    StatsStore,
    TransferStore,
    VersionStore,
    RewindStore,
    DriverStore,
)
