"""Crash test for datasource transactions: SIGKILL between the datasource commit and the system
checkpoint, restart, and check the transaction took effect exactly once (sync and async)."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.conftest import spawn
from tests.engine.test_datasource import ds_outcomes, ds_url  # noqa: F401 - fixtures
from tests.engine.test_transaction import app_url, items, pg_app_database  # noqa: F401 - fixtures
from transact.storage import open_store

APP = Path(__file__).parent / "apps" / "datasource_app.py"


def txn_runs(workdir: Path) -> int:
    path = workdir / "effects.txt"
    return path.read_text().count("txn-run") if path.exists() else 0


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_sigkill_after_commit_before_checkpoint(db_url: str, ds_url: str, tmp_path: Path, kind: str) -> None:  # noqa: F811
    wid = f"ds-crash-{kind}"
    first = spawn(APP, db_url, ds_url, str(tmp_path), kind, env={"DS_KILL_AFTER_COMMIT": "1"})
    out, _ = first.communicate(timeout=60)
    assert first.returncode == -signal.SIGKILL, out
    assert items(ds_url) == [(wid, "row")]
    assert [row[:2] for row in ds_outcomes(ds_url)] == [(wid, 2)]
    store = open_store(db_url)
    try:
        assert [s.function_name for s in store.steps_load(wid).values()] == ["before"]
    finally:
        store.close()

    second = spawn(APP, db_url, ds_url, str(tmp_path), kind)
    out, _ = second.communicate(timeout=60)
    assert second.returncode == 0, out
    assert f"RESULT added-by-{first.pid}" in out, out  # the first process's outcome, not a second run's
    assert items(ds_url) == [(wid, "row")]  # exactly once
    assert txn_runs(tmp_path) == 1  # the resumed workflow found the outcome row before running
    store = open_store(db_url)
    try:
        row = store.workflow_get(wid)
        assert row is not None and row.status == "SUCCESS"
    finally:
        store.close()
