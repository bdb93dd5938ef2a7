"""A process that stalls past its lease: python stall_app.py <db_url> <workdir>.

Starts workflow ``w1`` (executor ``stall-A``), whose second step writes <workdir>/in_slow and
waits for <workdir>/go (the test SIGSTOPs the process meanwhile and another executor adopts the
workflow). Prints "RESULT <value>" or "ERROR <type> <message>" for the workflow, then waits for
<workdir>/stop. Importing the module registers the same workflow (another executor's copy, whose
slow step does not wait).
"""

from __future__ import annotations

import logging
import os
import sys
import time

from transact import DBOS, SetWorkflowID

STALLING = os.environ.get("STALL_WORKDIR")


@DBOS.step(name="stall_first")
def first() -> str:
    return "first"


@DBOS.step(name="stall_slow")
def slow() -> str:
    if STALLING:
        open(os.path.join(STALLING, "in_slow"), "w").close()
        while not os.path.exists(os.path.join(STALLING, "go")):
            time.sleep(0.01)
        return "slow@A"
    return "slow@B"


@DBOS.workflow(name="stall_workflow")
def stall_workflow() -> str:
    return first() + "+" + slow()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, stream=sys.stdout, format="%(levelname)s %(name)s %(message)s")
    db_url, workdir = sys.argv[1], sys.argv[2]
    DBOS(
        config={
            "name": "stall",
            "system_database_url": db_url,
            "executor_id": "stall-A",
            "lease_seconds": 1.0,
            "heartbeat_seconds": 0.2,
        }
    )
    DBOS.launch()
    with SetWorkflowID("w1"):
        handle = DBOS.start_workflow(stall_workflow)
    try:
        print("RESULT", handle.get_result(), flush=True)
    except Exception as exc:
        print("ERROR", type(exc).__name__, exc, flush=True)
    while not os.path.exists(os.path.join(workdir, "stop")):
        time.sleep(0.05)
    DBOS.destroy()
