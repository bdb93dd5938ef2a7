"""The README's demo: a checkout app is SIGKILLed mid-workflow, restarted, and resumes (SQLite)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

DEMO = Path(__file__).parent.parent / "examples" / "demo.py"


def test_demo_crashes_and_resumes_from_the_right_step() -> None:
    started = time.monotonic()
    proc = subprocess.run([sys.executable, str(DEMO)], capture_output=True, text=True, timeout=60)
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "Checkpointed steps at the crash: ['create_order', 'reserve_inventory']" in out
    after_restart = out.split("3) Restarting")[1]
    assert "create_order: running" not in after_restart
    assert "reserve_inventory: reserving" not in after_restart
    assert "process_payment: charging" in after_restart and "finished: SUCCESS" in after_restart
    assert elapsed < 30
