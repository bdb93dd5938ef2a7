"""Crash tests for durable time and communication: SIGKILL real processes, restart, check that
each message is received once, that recorded deadlines hold, and that streams stay in order."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import spawn, wait_until
from transact import DBOS
from transact.engine import serialization
from transact.storage import Store

APP = Path(__file__).parent / "apps" / "comms_app.py"
WAIT_S = 4.0  # comms_app.WAIT_S


def effects(workdir: Path) -> list[tuple[str, float]]:
    """(text, unix time) per effect line."""
    path = workdir / "effects.txt"
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        head, _, rest = line.partition(" at=")
        out.append((head, float(rest.split()[0])))
    return out


def texts(workdir: Path) -> list[str]:
    return [text for text, _ in effects(workdir)]


def run_to_end(db_url: str, mode: str, workdir: Path, *args: str) -> str:
    proc = spawn(APP, db_url, mode, str(workdir), *args)
    out, _ = proc.communicate(timeout=90)
    assert proc.returncode == 0, out
    return out


def kill(proc: subprocess.Popen[str]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


def recorded(store: Store, workflow_id: str, name: str) -> Any:
    rows = store.steps_load(workflow_id)
    for row in rows.values():
        if row.function_name == name:
            return serialization.loads(row.output)
    return None


def test_each_message_is_received_once_across_a_sigkill_between_two_recvs(
    db_url: str, tmp_path: Path, store: Store
) -> None:
    (tmp_path / "hold-between").touch()
    proc = spawn(APP, db_url, "recv", str(tmp_path))
    wait_until(lambda: "holding between" in texts(tmp_path), timeout=30, what="the first message received")
    kill(proc)  # 'a' was taken and recorded; 'b' and 'c' are waiting
    (tmp_path / "hold-between").unlink()
    out = run_to_end(db_url, "recv", tmp_path)
    assert "RESULT ['a', 'b']" in out, out
    lines = texts(tmp_path)
    assert lines.count("got a") == 1 and lines.count("got b") == 1, lines
    rows = store.read(
        lambda tx: tx.all("SELECT message FROM notifications WHERE consumed_at IS NULL ORDER BY message_id")
    )
    assert [serialization.loads(bytes(r[0])) for r in rows] == ["c"]  # and the resends were deduplicated


@pytest.mark.parametrize(("mode", "deadline_step"), [("sleep", "DBOS.sleep"), ("recv-timeout", "DBOS.recv.deadline")])
def test_durable_wait_wakes_at_the_recorded_time_after_a_crash(
    db_url: str, tmp_path: Path, store: Store, mode: str, deadline_step: str
) -> None:
    proc = spawn(APP, db_url, mode, str(tmp_path))
    wake_at = wait_until(lambda: recorded(store, mode, deadline_step), timeout=30, what="the deadline recorded") / 1000
    kill(proc)
    # Restart late enough that "restart + the full wait" would be clearly later than the recorded time.
    wait_until(lambda: time.time() >= wake_at - 2.5, timeout=10, what="time to restart")
    restarted = time.time()
    run_to_end(db_url, mode, tmp_path)
    woke = [at for text, at in effects(tmp_path) if text.startswith("woke")]
    assert len(woke) == 1, effects(tmp_path)
    assert wake_at - 0.05 <= woke[0] < wake_at + 1.0, (woke[0] - wake_at, mode)
    assert woke[0] < restarted + WAIT_S - 0.4  # not restart + delay
    if mode == "recv-timeout":
        assert "woke None" in texts(tmp_path)


def test_stream_of_1000_values_read_in_order_by_another_process_across_a_writer_crash(
    dbos: type[DBOS], tmp_path: Path, db_url: str
) -> None:
    (tmp_path / "hold-stream").touch()
    writer = spawn(APP, db_url, "stream", str(tmp_path), "1000")
    wait_until(lambda: DBOS.get_workflow_status("streamer"), timeout=30, what="the writer workflow")
    got: list[Any] = []
    reader = threading.Thread(target=lambda: got.extend(DBOS.read_stream("streamer", "values")), daemon=True)
    reader.start()
    wait_until(lambda: len(got) == 500, timeout=60, what="the first half read while the writer runs")
    kill(writer)
    (tmp_path / "hold-stream").unlink()
    run_to_end(db_url, "stream", tmp_path, "1000")
    reader.join(30)
    assert not reader.is_alive()
    assert got == list(range(1000))
