"""Multi-process recovery app: python worker_app.py <db_url> <workdir> <role> [n].

Roles: "starter" starts n workflows and then idles (the test kills or stops it); "worker" only
runs recovery/adoption. All processes register the same workflows. Effects are appended to
<workdir>/effects.txt; step 2 holds while <workdir>/hold exists.
"""

from __future__ import annotations

import os
import sys
import time

import effects  # type: ignore[import-not-found]  # beside this script

from transact import DBOS, SetWorkflowID

DB_URL, WORKDIR, ROLE = sys.argv[1], sys.argv[2], sys.argv[3]
N = int(sys.argv[4]) if len(sys.argv) > 4 else 10
LEASE = float(os.environ.get("APP_LEASE", "30"))
LOCAL_CHECK = os.environ.get("APP_LOCAL_CHECK", "1") == "1"


def effect(text: str) -> None:
    effects.record(WORKDIR, text)


@DBOS.step()
def first(wid: str) -> str:
    effect(f"first {wid}")
    return "first"


@DBOS.step()
def second(wid: str) -> int:
    effect(f"second-start {wid}")
    while os.path.exists(os.path.join(WORKDIR, "hold")):
        time.sleep(0.02)
    effect(f"second-done {wid}")
    return os.getpid()


@DBOS.step()
def tick(wid: str, i: int) -> int:
    time.sleep(0.02)
    return i


@DBOS.workflow()
def two_steps() -> int:
    wid = DBOS.workflow_id
    assert wid is not None
    first(wid)
    return second(wid)


@DBOS.workflow()
def many_ticks(n: int) -> int:
    wid = DBOS.workflow_id
    assert wid is not None
    return sum(tick(wid, i) for i in range(n))


def main() -> None:
    DBOS(
        config={
            "name": "worker-app",
            "system_database_url": DB_URL,
            "lease_seconds": LEASE,
            "heartbeat_seconds": min(LEASE / 3, 10),
            "local_liveness_check": LOCAL_CHECK,
            "shutdown_timeout_seconds": 5,
        }
    )
    DBOS.launch()
    if ROLE == "starter":
        for i in range(N):
            with SetWorkflowID(f"wf-{i}"):
                DBOS.start_workflow(two_steps)
    elif ROLE == "ticker":
        for i in range(N):
            with SetWorkflowID(f"tick-{i}"):
                DBOS.start_workflow(many_ticks, 200)
    print(f"READY {os.getpid()}", flush=True)
    while not os.path.exists(os.path.join(WORKDIR, "stop")):
        time.sleep(0.05)
    DBOS.destroy()


if __name__ == "__main__":
    main()
