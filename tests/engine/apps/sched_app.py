"""An app with an every-second schedule, run by the scheduler tests: python sched_app.py <db_url> <workdir>.

Each run of the scheduled workflow's body appends "<scheduled ISO time> <pid>" to <workdir>/runs.txt
(O_APPEND, fsync'd), so a test can count how often each tick really ran across processes. Prints
"ready" once launched, then runs until killed.
"""

from __future__ import annotations

import os
import sys
import time
from datetime import datetime

from transact import DBOS

DB_URL, WORKDIR = sys.argv[1], sys.argv[2]


@DBOS.scheduled("* * * * * *")
@DBOS.workflow()
def every_second(scheduled_time: datetime, actual_time: datetime) -> None:
    fd = os.open(os.path.join(WORKDIR, "runs.txt"), os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, f"{scheduled_time.isoformat()} {os.getpid()}\n".encode())
        os.fsync(fd)
    finally:
        os.close(fd)


if __name__ == "__main__":
    DBOS(config={"name": "sched-app", "system_database_url": DB_URL})
    DBOS.launch()
    print("ready", flush=True)
    while True:
        time.sleep(1)
