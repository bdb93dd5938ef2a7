"""SIGKILL the seed's pipeline (a step enqueued per document) and a class workflow mid-run: the
restarted process finishes them, and no step that completed runs again."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path

from tests.conftest import spawn, wait_until
from transact import DBOSClient

APP = Path(__file__).parent / "apps" / "pipeline_app.py"


def effects(workdir: Path) -> list[str]:
    path = workdir / "effects.txt"
    lines = path.read_text().splitlines() if path.exists() else []
    return [line.rsplit(" pid=", 1)[0] for line in lines if line]


def crash_then_finish(
    db_url: str, workdir: Path, mode: str, held: str, started: str, recorded: Callable[[], bool] = lambda: True
) -> str:
    """Run the app until ``started`` ran and ``recorded()`` holds, SIGKILL it, run it again."""
    (workdir / f"hold-{held}").touch()
    proc = spawn(APP, db_url, mode, str(workdir))
    wait_until(lambda: started in effects(workdir) and recorded(), timeout=30, what=f"{started!r} to run")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    (workdir / f"hold-{held}").unlink()
    again = spawn(APP, db_url, mode, str(workdir))
    out, _ = again.communicate(timeout=60)
    return out


def test_the_seed_pipeline_resumes_after_sigkill(db_url: str, tmp_path: Path) -> None:
    def others_recorded() -> bool:
        # A step whose checkpoint was not committed before the kill runs again (at least once);
        # kill only once the three other documents' one-step workflows are recorded as done.
        try:
            with DBOSClient(db_url, migrate=False) as client:
                done = client.list_workflows(parent_workflow_id="pipeline", status="SUCCESS", load_output=False)
        except Exception:
            return False  # the app has not created the schema yet
        return len(done) == 3

    out = crash_then_finish(db_url, tmp_path, "pipeline", "ccc", "start ccc", others_recorded)
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
