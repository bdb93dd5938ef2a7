"""A fleet member for the apply_schedules test: python apply_app.py <db_url> <workdir>.

Prints "waiting" once launched, waits for <workdir>/go (so every member applies at the same
moment), applies one every-second schedule with a context, prints "applied", then runs until
<workdir>/stop exists. Each run of the scheduled body appends "<scheduled ISO time> <context>
<pid>" to <workdir>/runs.txt (O_APPEND, fsync'd), so the test counts how often each tick ran.
"""

from __future__ import annotations

import os
import sys
import time
from datetime import datetime
from typing import Any

from transact import DBOS

DB_URL, WORKDIR = sys.argv[1], sys.argv[2]


@DBOS.workflow()
def fleet_tick(scheduled_time: datetime, context: Any) -> None:
    fd = os.open(os.path.join(WORKDIR, "runs.txt"), os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, f"{scheduled_time.isoformat()} {context} {os.getpid()}\n".encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def wait_for(name: str) -> None:
    while not os.path.exists(os.path.join(WORKDIR, name)):
        time.sleep(0.01)


if __name__ == "__main__":
    DBOS(config={"name": "apply-app", "system_database_url": DB_URL})
    DBOS.launch()
    print("waiting", flush=True)
    wait_for("go")
    DBOS.apply_schedules(
        [
            {"schedule_name": "fleet", "workflow_fn": fleet_tick, "schedule": "* * * * * *", "context": "ctx-1"},
            {"schedule_name": "fleet-hourly", "workflow_fn": fleet_tick, "schedule": "0 * * * *"},
        ]
    )
    print("applied", flush=True)
    wait_for("stop")
    DBOS.destroy()
