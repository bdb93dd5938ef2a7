"""An app driven by the copy test: python copy_app.py <db_url> <workdir> <start|serve>.

``start`` starts 100 workflows that stay in flight: 25 blocked inside a step until
<workdir>/release exists, 25 on a queue of concurrency 1 (the first one blocked the same way, the
others ENQUEUED), 25 in a durable sleep and 25 waiting on recv. ``serve`` only runs what the
database holds (recovery). Every step appends its name to <workdir>/steps.log (fsync'd) before it
returns, so the test counts how often each really ran. Runs until <workdir>/stop exists.
"""

from __future__ import annotations

import os
import sys
import time

from transact import DBOS, Queue, SetWorkflowID

DB_URL, WORKDIR, MODE = sys.argv[1], sys.argv[2], sys.argv[3]
N = 25
SLEEP_S = 6.0


def _log(name: str) -> None:
    with open(os.path.join(WORKDIR, "steps.log"), "a") as f:
        f.write(name + "\n")
        f.flush()
        os.fsync(f.fileno())


@DBOS.step()
def count(name: str) -> str:
    _log(name)
    return name


@DBOS.step()
def hold(name: str) -> str:
    _log(name)
    while not os.path.exists(os.path.join(WORKDIR, "release")):
        time.sleep(0.02)
    return name


queue = Queue("copyq", concurrency=1)


@DBOS.workflow()
def blocker(i: int) -> str:
    count(f"b{i}.1")
    hold(f"b{i}.hold")
    return count(f"b{i}.2")


@DBOS.workflow()
def queued(i: int) -> str:
    count(f"q{i}.1")
    hold(f"q{i}.hold")
    return count(f"q{i}.2")


@DBOS.workflow()
def sleeper(i: int) -> str:
    count(f"s{i}.1")
    DBOS.sleep(SLEEP_S)
    return count(f"s{i}.2")


@DBOS.workflow()
def receiver(i: int) -> list[object]:
    count(f"r{i}.1")
    go = DBOS.recv("go", 60)
    early = DBOS.recv("early", 5)
    count(f"r{i}.2")
    return [go, early]


def main() -> None:
    DBOS(
        config={
            "name": "copy-app",
            "system_database_url": DB_URL,
            "executor_id": "local",
            "shutdown_timeout_seconds": 2,
        }
    )
    DBOS.launch()
    if MODE == "start":
        for i in range(N):
            with SetWorkflowID(f"q{i}"):
                queue.enqueue(queued, i)
        for i in range(N):
            with SetWorkflowID(f"b{i}"):
                DBOS.start_workflow(blocker, i)
            with SetWorkflowID(f"s{i}"):
                DBOS.start_workflow(sleeper, i)
            with SetWorkflowID(f"r{i}"):
                DBOS.start_workflow(receiver, i)
            DBOS.send(f"r{i}", f"early-{i}", "early")
    print("started", flush=True)
    while not os.path.exists(os.path.join(WORKDIR, "stop")):
        time.sleep(0.05)
    DBOS.destroy()


if __name__ == "__main__":
    main()
