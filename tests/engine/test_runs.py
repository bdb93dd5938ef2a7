"""This process's run table: claim -> register -> settle, cancellation flags and deadlines."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import pytest

from transact.engine.clock import now_ms
from transact.engine.runs import NotLocal, Runs
from transact.errors import WorkflowConflictError


@dataclass
class _Ctx:
    workflow_id: str
    deadline_at: int | None = None
    cancelled: threading.Event = field(default_factory=threading.Event)


def test_one_claim_owns_the_run_and_others_share_its_future() -> None:
    runs = Runs(on_deadline=lambda wid: None)
    fut, owner = runs.claim("w", "wf")
    again, second_owner = runs.claim("w", "wf")
    assert owner and not second_owner and again is fut
    with pytest.raises(WorkflowConflictError, match="already belongs to workflow 'wf'"):
        runs.claim("w", "other")  # the id is held by another workflow
    assert "w" in runs and runs.ids() == ["w"] and runs.future("w") is fut
    runs.settle("w", fut, 42)
    assert "w" not in runs and runs.future("w") is None
    assert fut.result(timeout=0) == 42


def test_settle_publishes_errors_and_a_stale_settle_keeps_the_new_claim() -> None:
    runs = Runs(on_deadline=lambda wid: None)
    first, _ = runs.claim("w", "wf")
    runs.settle("w", first, error=NotLocal())
    with pytest.raises(NotLocal):
        first.result(timeout=0)
    second, owner = runs.claim("w", "wf")  # a resume claims the id again at once
    assert owner and second is not first
    runs.settle("w", first, error=RuntimeError("late"))  # the old run ends late: the new slot stays
    assert runs.future("w") is second and not second.done()


def test_mark_cancelled_reaches_registered_runs_only() -> None:
    runs = Runs(on_deadline=lambda wid: None)
    fut, _ = runs.claim("a", "wf")
    ctx = _Ctx("a")
    runs.register(ctx)
    runs.mark_cancelled(("a", "unknown"))
    assert ctx.cancelled.is_set()
    assert [c.workflow_id for c in runs.running_contexts()] == ["a"]
    runs.settle("a", fut, None)
    assert runs.running_contexts() == []


def test_deadline_fires_for_a_run_still_here_and_not_for_one_that_ended() -> None:
    fired: list[str] = []
    hit = threading.Event()

    def on_deadline(wid: str) -> None:
        fired.append(wid)
        hit.set()

    runs = Runs(on_deadline=on_deadline)
    runs.start()
    try:
        ended, _ = runs.claim("ended", "wf")
        runs.register(_Ctx("ended", deadline_at=now_ms() + 20))
        runs.settle("ended", ended, None)
        runs.claim("late", "wf")
        runs.register(_Ctx("late", deadline_at=now_ms() + 50))
        assert hit.wait(10), "the deadline of a running workflow never fired"
        assert fired == ["late"]
    finally:
        runs.stop()
