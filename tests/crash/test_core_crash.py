"""Crash tests: SIGKILL real processes mid-workflow, restart, and check what ran again."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from tests.conftest import spawn, wait_until

APP = Path(__file__).parent / "apps" / "core_app.py"


def effects(workdir: Path) -> list[str]:
    path = workdir / "effects.txt"
    if not path.exists():
        return []
    return [" ".join(line.split()[:-1]) for line in path.read_text().splitlines() if line.strip()]


def run_to_end(db_url: str, mode: str, workdir: Path, *args: str, env: dict[str, str] | None = None) -> str:
    proc = spawn(APP, db_url, mode, str(workdir), *args, env=env)
    out, _ = proc.communicate(timeout=60)
    return out


def kill(proc: subprocess.Popen[str]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


def test_sigkill_during_step_k_resumes_without_rerunning_earlier_steps(db_url: str, tmp_path: Path) -> None:
    n, k = 5, 3
    (tmp_path / f"hold-{k}").touch()
    proc = spawn(APP, db_url, "steps", str(tmp_path), str(n))
    wait_until(lambda: f"start steps-wf {k}" in effects(tmp_path), timeout=30, what="step k to start")
    kill(proc)
    (tmp_path / f"hold-{k}").unlink()
    out = run_to_end(db_url, "steps", tmp_path, str(n))
    assert f"RESULT {sum(i * 10 for i in range(1, n + 1))}" in out, out
    lines = effects(tmp_path)
    for i in range(1, n + 1):
        expected_starts = 2 if i == k else 1  # step k was interrupted, so it runs again
        assert lines.count(f"start steps-wf {i}") == expected_starts, (i, lines)
        assert lines.count(f"done steps-wf {i}") == 1, (i, lines)


@pytest.mark.parametrize("same_executor_id", [False, True], ids=["new-executor", "same-executor"])
def test_hundred_pending_workflows_recovered_after_crash(db_url: str, tmp_path: Path, same_executor_id: bool) -> None:
    """Restarted with a new executor id the survivor adopts the dead one's work; restarted with
    the same (fixed) id it resumes its own, in batches (recover_own)."""
    n = 100
    env = {"TRANSACT_EXECUTOR_ID": "crash-fixed-id"} if same_executor_id else None
    (tmp_path / "hold-2").touch()
    proc = spawn(APP, db_url, "many", str(tmp_path), str(n), env=env)
    # step 2 has started only after step 1's checkpoint committed
    wait_until(
        lambda: sum(1 for line in effects(tmp_path) if line.startswith("start") and line.endswith(" 2")) == n,
        timeout=60,
        what="all workflows inside step 2",
    )
    kill(proc)
    (tmp_path / "hold-2").unlink()
    out = run_to_end(db_url, "many", tmp_path, str(n), env=env)
    assert f"RESULT {n * 30}" in out, out
    lines = effects(tmp_path)
    for i in range(n):
        assert lines.count(f"start many-{i} 1") == 1
        assert lines.count(f"done many-{i} 2") == 1


def test_crash_loop_is_stopped_by_max_recovery_attempts(db_url: str, tmp_path: Path) -> None:
    outputs = []
    for _ in range(6):
        out = run_to_end(db_url, "crashloop", tmp_path)
        outputs.append(out)
        if "STATUS" in out:
            break
    assert "STATUS MAX_RECOVERY_ATTEMPTS_EXCEEDED" in outputs[-1], outputs
    assert "ERROR MaxRecoveryAttemptsExceededError" in outputs[-1]
    # first run + 2 recoveries crashed; the 3rd recovery is refused
    assert effects(tmp_path).count("crash-step") == 3
    assert len(outputs) == 4


def kill_code_a_inside_step_b(db_url: str, tmp_path: Path) -> None:
    """Code A starts the versioned workflow and is SIGKILLed inside step_b (step_a is recorded)."""
    (tmp_path / "hold-b").touch()
    proc = spawn(APP, db_url, "versioned", str(tmp_path), env={"APP_CODE": "A"})
    wait_until(lambda: "step_b code=A" in effects(tmp_path), timeout=30, what="step_b to start")
    kill(proc)
    (tmp_path / "hold-b").unlink()


def test_new_code_with_same_steps_resumes_and_removed_step_fails_clearly(db_url: str, tmp_path: Path) -> None:
    kill_code_a_inside_step_b(db_url, tmp_path)
    # Code C removed step_a: the recorded step at position 1 no longer matches -> clear error.
    out = run_to_end(db_url, "versioned", tmp_path, env={"APP_CODE": "C"})
    assert "ERROR DeterminismError" in out, out
    assert "'step_a'" in out and "'step_b'" in out and "fork" in out
    assert "step_c code=C" not in effects(tmp_path)


def test_new_code_with_changed_step_body_finishes(db_url: str, tmp_path: Path) -> None:
    kill_code_a_inside_step_b(db_url, tmp_path)
    out = run_to_end(db_url, "versioned", tmp_path, env={"APP_CODE": "B"})
    assert "RESULT abBc" in out, out
    assert effects(tmp_path).count("step_a code=A") == 1
    assert "step_a code=B" not in effects(tmp_path)


def test_a_step_that_finishes_during_a_cross_process_cancel_is_not_run_again_after_resume(
    db_url: str, tmp_path: Path
) -> None:
    """The cancel comes from another process while step 2 runs; the step still finishes, so its
    outcome is kept and the resumed workflow replays it instead of running it again."""
    from transact import DBOSClient

    (tmp_path / "hold-2").touch()
    proc = spawn(APP, db_url, "serve", str(tmp_path), "3")
    try:
        wait_until(lambda: "start steps-wf 2" in effects(tmp_path), timeout=30, what="step 2 to start")
        with DBOSClient(db_url) as client:
            client.cancel_workflow("steps-wf")
            (tmp_path / "hold-2").unlink()
            wait_until(
                lambda: 2 in [s["function_id"] for s in client.list_workflow_steps("steps-wf")],
                timeout=30,
                what="step 2's outcome to be kept although the workflow was cancelled",
            )
            assert client.get_workflow_status("steps-wf").status == "CANCELLED"  # type: ignore[union-attr]
            client.resume_workflow("steps-wf")
            assert client.retrieve_workflow("steps-wf").get_result(timeout=30) == 60
        lines = effects(tmp_path)
        assert [lines.count(f"start steps-wf {i}") for i in (1, 2, 3)] == [1, 1, 1], lines
    finally:
        (tmp_path / "stop").touch()
        proc.wait(timeout=30)
