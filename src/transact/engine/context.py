"""Context variables for the running workflow and step; a run's context only reads state.

Must not import the facade.
"""

from __future__ import annotations

import contextvars
import threading
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from transact._lib.states import Hint
from transact.engine.clock import now_ms
from transact.engine.waiters import Waiter
from transact.errors import DBOSWorkflowCancelledError, TransactError
from transact.storage.rows import MAX_FUNCTION_ID, StepRow, WorkflowRow

if TYPE_CHECKING:
    from transact.engine.runtime import Runtime


class ShutdownInterrupt(BaseException):
    """Raised at a step boundary while the process shuts down: the workflow stays PENDING and is
    handed over to another executor. A BaseException so user code's ``except Exception`` passes it."""


@dataclass(eq=False)
class WorkflowContext:
    workflow_id: str
    name: str
    runtime: Runtime
    recorded: dict[int, StepRow]
    deadline_at: int | None = None
    function_id: int = 0
    cancelled: threading.Event = field(default_factory=threading.Event)
    resumed: bool = False  # recovered, adopted or dequeued-again: the previous run may have left work
    row: WorkflowRow | None = None  # the row the run was built from (its auth, trace context, queue)

    def next_function_id(self) -> int:
        self.function_id += 1
        if self.function_id > MAX_FUNCTION_ID:
            raise TransactError(
                f"workflow {self.workflow_id!r} has used all {MAX_FUNCTION_ID:,} step positions one workflow "
                "has; split the work into child workflows (or continue it in a new workflow)"
            )
        return self.function_id

    def cancel_watch(self, *, asynchronous: bool = False) -> AbstractContextManager[Waiter]:
        """Wake-ups for this run's end: its cancellation here, or a terminal status written elsewhere
        (Postgres NOTIFY 'done'). Not on '*': thousands of sleepers have nothing to re-read."""
        wid = self.workflow_id
        return self.runtime.waiters.watch(
            Hint.CANCEL, wid, also=[(Hint.DONE, wid, "")], asynchronous=asynchronous, wildcard=False
        )

    def past_deadline(self) -> bool:
        return self.deadline_at is not None and now_ms() >= self.deadline_at

    def check_cancelled(self) -> None:
        """Raise if the workflow was cancelled or passed its deadline, or the process is shutting
        down. Reads only: the deadline's cancellation is written by the deadline timer, or by the
        workflow's own run when it stops here first (``workflow.execute``)."""
        if self.runtime.stopping.is_set():
            raise ShutdownInterrupt(self.workflow_id)
        if self.cancelled.is_set() or self.past_deadline():
            raise DBOSWorkflowCancelledError.of(self.workflow_id)


current_workflow: contextvars.ContextVar[WorkflowContext | None] = contextvars.ContextVar(
    "transact_workflow", default=None
)
current_step: contextvars.ContextVar[int | None] = contextvars.ContextVar("transact_step", default=None)
