"""Crash tests for debouncing: SIGKILL the calling process inside the window, restart, and the
target still runs exactly once with the latest arguments; processes debouncing one key share a window."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from tests.conftest import spawn, wait_until
from transact.storage import Store

APP = Path(__file__).parent / "apps" / "debounce_app.py"


def lines(workdir: Path) -> list[str]:
    path = workdir / "effects.txt"
    if not path.exists():
        return []
    return [line.rsplit(" pid=", 1)[0] for line in path.read_text().splitlines()]


def kill(proc: subprocess.Popen[str]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


def stop(workdir: Path, proc: subprocess.Popen[str]) -> str:
    (workdir / "stop").touch()
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    return out


def test_a_window_survives_a_sigkill_and_runs_once_with_the_last_arguments(
    db_url: str, tmp_path: Path, store: Store
) -> None:
    caller = spawn(APP, db_url, "call", str(tmp_path), "50")
    wait_until(lambda: "calls done" in lines(tmp_path), timeout=60, what="the calls")
    kill(caller)  # inside the 3 s window: nothing has run yet
    called = [line.split() for line in lines(tmp_path) if line.startswith("called")]
    assert len(called) == 50 and {c[2] for c in called} == {called[0][2]}
    window = called[0][2]
    row = store.workflow_get(window)
    assert row is not None and row.status == "DELAYED"
    assert not [line for line in lines(tmp_path) if line.startswith("ran")]
    server = spawn(APP, db_url, "serve", str(tmp_path))
    try:
        wait_until(
            lambda: (r := store.workflow_get(window)) is not None and r.status == "SUCCESS",
            timeout=60,
            what="the window's run",
        )
    finally:
        out = stop(tmp_path, server)
    assert [line for line in lines(tmp_path) if line.startswith("ran")] == ["ran 49"], out


def test_two_processes_debouncing_one_key_share_one_window(db_url: str, tmp_path: Path, store: Store) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    procs = [spawn(APP, db_url, "call", str(d), "200") for d in (first, second)]
    try:
        for d in (first, second):
            wait_until(lambda d=d: "calls done" in lines(d), timeout=60, what="the calls")
    finally:
        for p in procs:
            kill(p)
    windows = {line.split()[2] for d in (first, second) for line in lines(d) if line.startswith("called")}
    assert len(windows) == 1  # the calls overlapped within one window
    (window,) = windows
    server = spawn(APP, db_url, "serve", str(tmp_path))
    try:
        wait_until(
            lambda: (r := store.workflow_get(window)) is not None and r.status == "SUCCESS",
            timeout=60,
            what="the window's run",
        )
    finally:
        stop(tmp_path, server)
    # whichever process ran it (a caller may, once the window closed before its kill), it ran once
    ran = [line for d in (tmp_path, first, second) for line in lines(d) if line.startswith("ran")]
    assert ran == ["ran 199"], ran
