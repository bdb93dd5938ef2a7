"""Patching across a real code change: a run is SIGKILLed under one version of the code and
recovered by a process running the next version."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.conftest import spawn, wait_until

APP = Path(__file__).parent / "apps" / "patch_app.py"


def effects(workdir: Path) -> list[str]:
    path = workdir / "effects.txt"
    lines = path.read_text().splitlines() if path.exists() else []
    return [line.rsplit(" pid=", 1)[0] for line in lines if line]


def kill_under_then_recover(db_url: str, workdir: Path, first: str, then: str) -> str:
    """Start the run under ``first`` code, SIGKILL it while it holds in ``bar``, recover it
    under ``then`` code; returns the recovering process's output."""
    (workdir / "hold-bar").touch()
    proc = spawn(APP, db_url, first, str(workdir), "upgrade-run")
    wait_until(lambda: "start bar" in effects(workdir), timeout=30, what="bar to start")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    (workdir / "hold-bar").unlink()
    again = spawn(APP, db_url, then, str(workdir), "upgrade-run")
    out, _ = again.communicate(timeout=60)
    return out


@pytest.mark.parametrize(
    ("first", "then", "result", "ran"),
    [
        ("old", "patched", "foo+bar", "foo"),  # recorded under the old code: the patch says False
        ("patched", "patched", "baz+bar", "baz"),  # the patched run replays its branch
        ("patched", "deprecated", "baz+bar", "baz"),  # deprecate_patch follows the marker
        ("deprecated", "removed", "baz+bar", "baz"),  # no marker was kept: the call could go
    ],
)
def test_a_killed_run_recovers_under_the_next_code(
    db_url: str, tmp_path: Path, first: str, then: str, result: str, ran: str
) -> None:
    out = kill_under_then_recover(db_url, tmp_path, first, then)
    assert f"RESULT {result}" in out, out
    lines = effects(tmp_path)
    assert [line for line in lines if line in ("foo", "baz")] == [ran], lines  # the first step ran once


def test_deleting_a_patch_too_early_fails_naming_it(db_url: str, tmp_path: Path) -> None:
    out = kill_under_then_recover(db_url, tmp_path, "patched", "removed")
    assert "ERROR DeterminismError" in out and "'use-baz'" in out and "deprecate_patch" in out, out
    assert effects(tmp_path).count("baz") == 1  # nothing ran again under the wrong code
