"""Queue-registry worker: python registry_app.py <db_url> <workdir> <register-kwargs-json>.

Launches, then registers queue "reg" with DBOS.register_queue(**kwargs) (limits in the system
database), prints READY and serves it until killed or <workdir>/stop exists. Workflow "interval"
appends "start <i> <pid> <ns>" and, when done, "end <i> <pid> <ns>" to <workdir>/intervals.txt
(fsync'd; outside steps, so every execution attempt writes its own lines); in between it holds
while <workdir>/hold exists, or for <hold_s> seconds.
"""

from __future__ import annotations

import json
import os
import sys
import time

from transact import DBOS

DB_URL, WORKDIR, KWARGS = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])


def note(kind: str, i: int) -> None:
    with open(os.path.join(WORKDIR, "intervals.txt"), "a") as f:
        f.write(f"{kind} {i} {os.getpid()} {time.time_ns()}\n")
        f.flush()
        os.fsync(f.fileno())


@DBOS.workflow(name="interval")
def interval(i: int, hold_s: float) -> int:
    note("start", i)
    deadline = time.monotonic() + hold_s
    while os.path.exists(os.path.join(WORKDIR, "hold")) or time.monotonic() < deadline:
        time.sleep(0.01)
    note("end", i)
    return i


def main() -> None:
    DBOS(
        config={
            "name": "registry-app",
            "system_database_url": DB_URL,
            # Pushed wake-ups only: a test that needed the fallback poll would time out.
            "queue_poll_seconds": 30,
            "shutdown_timeout_seconds": 2,
            "heartbeat_seconds": float(os.environ.get("APP_HEARTBEAT", "10")),
        }
    )
    DBOS.launch()
    DBOS.register_queue("reg", **KWARGS)
    print("READY", flush=True)
    while not os.path.exists(os.path.join(WORKDIR, "stop")):
        time.sleep(0.05)
    DBOS.destroy()


if __name__ == "__main__":
    main()
