"""Row builders and small helpers shared by the storage conformance suite (one file per module)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from transact.storage import Store
from transact.storage.rows import ExecutorRow, ScheduleRow, StepRow, WorkflowRow

T = TypeVar("T")


def wf(wid: str, executor: str | None = "ex-1", status: str = "PENDING", **fields: Any) -> WorkflowRow:
    values: dict[str, Any] = {"name": "wf", "executor_id": executor, "created_at": 1, "updated_at": 1, **fields}
    return WorkflowRow(workflow_id=wid, status=status, **values)


def queued(wid: str, queue: str = "q", **fields: Any) -> WorkflowRow:
    return wf(wid, executor=None, status="ENQUEUED", queue_name=queue, **fields)


def step(wid: str, fid: int, output: bytes | None = b"x", **fields: Any) -> StepRow:
    return StepRow(workflow_id=wid, function_id=fid, function_name="s", output=output, **fields)


def executor(eid: str, state: str = "RUNNING", started_at: int = 1) -> ExecutorRow:
    return ExecutorRow(
        executor_id=eid,
        hostname="h",
        pid=1,
        process_token="t",
        app_version=None,
        started_at=started_at,
        last_seen_at=started_at,
        state=state,
    )


def schedule(name: str, *, workflow: str = "job", state: str = "ACTIVE", now: int = 1) -> ScheduleRow:
    return ScheduleRow(
        schedule_name=name,
        workflow_name=workflow,
        cron="* * * * *",
        timezone=None,
        state=state,
        backfill=False,
        dynamic=True,
        last_tick_at=None,
        created_at=now,
        updated_at=now,
    )


def trips(store: Store, fn: Callable[[], T]) -> tuple[T, int]:
    """``fn()`` and the round trips the calling thread made for it."""
    before = store.thread_round_trips()
    result = fn()
    return result, store.thread_round_trips() - before


class Hints:
    """Records the hints a store delivers in this process."""

    def __init__(self, store: Store) -> None:
        self.seen: list[tuple[str, str, str]] = []
        store.set_hint_handler(lambda kind, ident, key: self.seen.append((str(kind), ident, key)))

    def take(self) -> list[tuple[str, str, str]]:
        seen, self.seen = self.seen, []
        return seen
