"""Application "A" of tests/engine/test_sharing.py: one of two applications sharing a system
database. Owns queue ``qa``; its workflows return ``A:<tag>`` so the test sees who ran what.

Usage: share_app.py <system database url> <directory>. Writes <directory>/ready once launched,
exits when <directory>/stop appears."""

from __future__ import annotations

import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from transact import DBOS, Queue

url, folder = sys.argv[1], Path(sys.argv[2])

DBOS(config={"name": "A", "system_database_url": url, "shutdown_timeout_seconds": 2})
Queue("qa")


@DBOS.workflow(name="work")
def work(tag: str) -> str:
    return f"A:{tag}"


@DBOS.workflow(name="sched_wf")
def sched_wf(scheduled: datetime, context: Any) -> str:
    return "A"


DBOS.launch()
(folder / "ready").touch()
while not (folder / "stop").exists():
    time.sleep(0.05)
DBOS.destroy()
