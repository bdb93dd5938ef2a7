"""SQLite: WAL checkpoints run in the poller thread, not inside a committing write.

SQLite's default has the committing connection checkpoint every 1,000 WAL pages (with an fsync):
one commit in many then takes milliseconds (a 10-step workflow's p99 was 18 ms, against 1.4 ms
with background checkpoints). The library raises the writers' threshold to a far backstop and
checkpoints from its poller; this checks that the poller's checkpoints happen and that writers
no longer do them.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from tests.conftest import wait_until
from transact.storage import Store, open_store
from transact.storage.rows import StepRow, WorkflowRow
from transact.storage.sqlite import BACKSTOP_CHECKPOINT_PAGES


def _fill(store: Store, n: int) -> None:
    payload = os.urandom(1500)  # ~3 MB of WAL for 2,000 steps: past SQLite's 1,000-page default
    for i in range(n // 20):
        wid = f"w{i}"
        store.workflow_insert(
            WorkflowRow(workflow_id=wid, status="PENDING", name="wf", executor_id="ex", created_at=1, updated_at=1)
        )
        for fid in range(1, 21):
            step = StepRow(workflow_id=wid, function_id=fid, function_name="s", output=payload)
            store.step_record(step, executor_id="ex")


def test_writers_leave_checkpoints_to_the_poller(tmp_path: Path) -> None:
    path = tmp_path / "system.sqlite"
    store = open_store(f"sqlite:///{path}")
    store.migrate()
    try:
        conn = sqlite3.connect(path)
        assert conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000  # a foreign connection
        conn.close()
        base = path.stat().st_size
        _fill(store, 2000)
        # No poller yet: the writers alone never checkpointed (the main file only grows by one).
        assert path.stat().st_size == base
        assert os.path.getsize(f"{path}-wal") > 1000 * 4096
        store.start_listening()  # the poller: it checkpoints what was written
        wait_until(lambda: path.stat().st_size > base + 2_000_000, timeout=10, what="a background checkpoint")
    finally:
        store.close()
    assert BACKSTOP_CHECKPOINT_PAGES > 1000
