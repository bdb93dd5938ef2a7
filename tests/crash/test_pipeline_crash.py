"""SIGKILL the seed's pipeline (a step enqueued per document) and a class workflow mid-run: the
restarted process finishes them, and no step that completed runs again."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from tests.conftest import spawn, wait_until

APP = Path(__file__).parent / "apps" / "pipeline_app.py"


def effects(workdir: Path) -> list[str]:
    path = workdir / "effects.txt"
    return [line for line in path.read_text().splitlines() if line] if path.exists() else []


def crash_then_finish(db_url: str, workdir: Path, mode: str, held: str, started: str) -> str:
    (workdir / f"hold-{held}").touch()
    proc = spawn(APP, db_url, mode, str(workdir))
    wait_until(lambda: started in effects(workdir), timeout=30, what=f"{started!r} to run")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    (workdir / f"hold-{held}").unlink()
    again = spawn(APP, db_url, mode, str(workdir))
    out, _ = again.communicate(timeout=60)
    return out


def test_the_seed_pipeline_resumes_after_sigkill(db_url: str, tmp_path: Path) -> None:
    out = crash_then_finish(db_url, tmp_path, "pipeline", "ccc", "start ccc")
    assert "RESULT 10" in out, out
    lines = effects(tmp_path)
    for url in ("a", "bb", "ccc", "dddd"):
        assert lines.count(f"done {url}") == 1, (url, lines)  # each document indexed once


def test_a_class_workflow_resumes_on_its_instance_after_sigkill(db_url: str, tmp_path: Path) -> None:
    out = crash_then_finish(db_url, tmp_path, "class", "y", "start doc-y")
    assert "RESULT doc-x,doc-y,doc-z" in out, out
    lines = effects(tmp_path)
    assert [lines.count(f"done doc-{n}") for n in "xyz"] == [1, 1, 1], lines
    assert lines.count("start doc-x") == 1, lines  # completed before the crash: replayed, not run
