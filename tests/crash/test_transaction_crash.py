"""Crash tests for @DBOS.transaction: SIGKILL between the application commit and the system
checkpoint, restart, and check the transaction took effect exactly once."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.conftest import spawn
from tests.engine.test_transaction import app_url, items, outcomes, pg_app_database  # noqa: F401 - fixtures
from transact.storage import open_store

APP = Path(__file__).parent / "apps" / "txn_app.py"


def txn_runs(workdir: Path) -> int:
    path = workdir / "effects.txt"
    return path.read_text().count("txn-run") if path.exists() else 0


@pytest.mark.parametrize("mode", ["first", "after-step", "error"])
def test_sigkill_after_commit_before_checkpoint(db_url: str, app_url: str, tmp_path: Path, mode: str) -> None:  # noqa: F811
    wid = f"txn-crash-{mode}"
    first = spawn(APP, db_url, app_url, str(tmp_path), mode, env={"TXN_KILL_AFTER_COMMIT": "1"})
    out, _ = first.communicate(timeout=60)
    assert first.returncode == -signal.SIGKILL, out
    # The application transaction committed (with its outcome row); the system database has no step.
    expected_items = [] if mode == "error" else [(wid, "row")]
    assert items(app_url) == expected_items
    assert [row[:2] for row in outcomes(app_url)] == [(wid, 2 if mode == "after-step" else 1)]
    store = open_store(db_url)
    try:
        assert [s.function_name for s in store.steps_load(wid).values()] == (["before"] if mode == "after-step" else [])
    finally:
        store.close()

    second = spawn(APP, db_url, app_url, str(tmp_path), mode)
    out, _ = second.communicate(timeout=60)
    assert second.returncode == 0, out
    expected = "caught declined in the first process" if mode == "error" else f"added-by-{first.pid}"
    assert f"RESULT {expected}" in out, out  # the first process's outcome, not a second run's
    assert items(app_url) == expected_items  # exactly once
    assert len(outcomes(app_url)) == 1
    store = open_store(db_url)
    try:
        row = store.workflow_get(wid)
        assert row is not None and row.status == "SUCCESS"
    finally:
        store.close()
    if mode == "after-step":
        assert txn_runs(tmp_path) == 1  # a resumed workflow finds the outcome row before running
