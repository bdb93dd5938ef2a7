"""Queue worker process: python queue_app.py <db_url> <workdir> <queue-kwargs-json>.

Declares Queue("shared", **kwargs) and two workflows, launches, prints READY, and serves the
queue until <workdir>/stop exists. The tests enqueue with DBOSClient (workflow names "timed",
"effectful"). "timed" returns its start/end instants (ns) and pid, recorded in steps; "effectful"
appends one line per run of its first step to <workdir>/effects.txt, then its second step holds
while <workdir>/hold exists.
"""

from __future__ import annotations

import json
import os
import sys
import time

from transact import DBOS, Queue

DB_URL, WORKDIR, QUEUE_KWARGS = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])

queue = Queue("shared", **QUEUE_KWARGS)


@DBOS.step()
def stamp() -> int:
    return time.time_ns()


@DBOS.step()
def pause(seconds: float) -> None:
    time.sleep(seconds)


@DBOS.workflow(name="timed")
def timed(i: int, hold_s: float) -> dict[str, int]:
    start = stamp()
    pause(hold_s)
    end = stamp()
    return {"i": i, "start": start, "end": end, "pid": os.getpid()}


@DBOS.step()
def effect(i: int) -> int:
    with open(os.path.join(WORKDIR, "effects.txt"), "a") as f:
        f.write(f"{i} {os.getpid()}\n")
        f.flush()
        os.fsync(f.fileno())
    return i


@DBOS.step()
def hold(i: int) -> int:
    while os.path.exists(os.path.join(WORKDIR, "hold")):
        time.sleep(0.02)
    return i * 10


@DBOS.workflow(name="effectful")
def effectful(i: int) -> int:
    effect(i)
    return hold(i)


def main() -> None:
    DBOS(
        config={
            "name": "queue-app",
            "system_database_url": DB_URL,
            # Pushed wake-ups only: a test that needed the fallback poll would time out.
            "queue_poll_seconds": 30,
            "shutdown_timeout_seconds": 2,
            "heartbeat_seconds": float(os.environ.get("APP_HEARTBEAT", "10")),
        }
    )
    DBOS.launch()
    print(f"READY {os.getpid()}", flush=True)
    while not os.path.exists(os.path.join(WORKDIR, "stop")):
        time.sleep(0.05)
    DBOS.destroy()


if __name__ == "__main__":
    main()
