"""Crash test for wait_first: the parent records its winner, is SIGKILLed, and the restarted
process's recovery returns the same winner from the record, without reading or waiting again,
while the other child is still blocked."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from tests.conftest import spawn, wait_until
from transact.engine import serialization
from transact.storage import Store

APP = Path(__file__).parent / "apps" / "waitfirst_app.py"


def effects(workdir: Path) -> list[str]:
    """Effect lines without their trailing pid."""
    path = workdir / "effects.txt"
    if not path.exists():
        return []
    return [line.rsplit(" pid=", 1)[0] for line in path.read_text().splitlines() if line.strip()]


def status(store: Store, workflow_id: str) -> str | None:
    row = store.workflow_get(workflow_id)
    return row.status if row is not None else None


def recorded_winners(store: Store) -> list[str]:
    rows = store.steps_load("wf-parent").values()
    return [serialization.loads(row.output) for row in rows if row.function_name == "DBOS.wait_first"]


def test_recovery_after_a_sigkill_returns_the_recorded_winner_without_waiting_again(
    db_url: str, tmp_path: Path, store: Store
) -> None:
    (tmp_path / "hold-slow").touch()
    (tmp_path / "hold-after").touch()
    first = spawn(APP, db_url, str(tmp_path))
    try:
        wait_until(lambda: "holding after" in effects(tmp_path), timeout=30, what="the winner recorded")
    finally:
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
    assert recorded_winners(store) == ["wf-fast"]
    assert status(store, "wf-slow") == "PENDING" and status(store, "wf-parent") == "PENDING"

    (tmp_path / "hold-after").unlink()
    restarted = spawn(APP, db_url, str(tmp_path), env={"WAITFIRST_FORBID_READS": "1"})
    try:
        wait_until(lambda: "result wf-fast" in effects(tmp_path), timeout=60, what="the recovered parent's result")
        assert status(store, "wf-slow") == "PENDING"  # the loser is still blocked: nothing was awaited
    finally:
        (tmp_path / "hold-slow").unlink()
        out, _ = restarted.communicate(timeout=60)
    assert restarted.returncode == 0, out
    assert "RESULT wf-fast" in out, out
    lines = effects(tmp_path)
    assert lines.count("winner wf-fast") == 1, lines  # recorded before the kill: not noted again
    assert lines.count("result wf-fast") == 1, lines
    assert recorded_winners(store) == ["wf-fast"]
    assert status(store, "wf-parent") == "SUCCESS" and status(store, "wf-slow") == "SUCCESS"
