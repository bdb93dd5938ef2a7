"""An app driven by the comms crash tests: python comms_app.py <db_url> <mode> <workdir> [n].

Modes: ``recv`` (two receives with a hold between them), ``sleep`` / ``recv-timeout`` (a durable
wait of WAIT_S seconds), ``stream`` (writes n values, holding at n/2 while <workdir>/hold-stream
exists). Side effects go to <workdir>/effects.txt, one fsync'd line each, so the tests can count how
often each really happened across SIGKILLs. Each mode starts its workflow with a fixed id, so a
restarted process finds (and, once it adopts it, resumes) the one the killed process left.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from transact import DBOS, SetWorkflowID

DB_URL, MODE, WORKDIR = sys.argv[1], sys.argv[2], sys.argv[3]
N = int(sys.argv[4]) if len(sys.argv) > 4 else 1000
WAIT_S = 4.0


def effect(text: str) -> None:
    with open(os.path.join(WORKDIR, "effects.txt"), "a") as f:
        f.write(f"{text} at={time.time():.3f} pid={os.getpid()}\n")
        f.flush()
        os.fsync(f.fileno())


@DBOS.step()
def note(text: str) -> None:
    effect(text)


@DBOS.step()
def hold(name: str) -> None:
    effect(f"holding {name}")
    while os.path.exists(os.path.join(WORKDIR, f"hold-{name}")):
        time.sleep(0.02)


@DBOS.workflow()
def receiver() -> list[Any]:
    first = DBOS.recv("t", 30)
    note(f"got {first}")
    hold("between")
    second = DBOS.recv("t", 30)
    note(f"got {second}")
    return [first, second]


@DBOS.workflow()
def sleeper() -> None:
    note("waiting")
    DBOS.sleep(WAIT_S)
    note("woke")


@DBOS.workflow()
def waiter() -> None:
    note("waiting")
    value = DBOS.recv("never", WAIT_S)
    note(f"woke {value}")


@DBOS.workflow()
def streamer(n: int) -> None:
    for i in range(n):
        if i == n // 2:
            hold("stream")
        DBOS.write_stream("values", i)
    DBOS.close_stream("values")


def main() -> None:
    DBOS(config={"name": "comms-crash-app", "system_database_url": DB_URL, "lease_seconds": 30})
    DBOS.launch()
    if MODE == "recv":
        with SetWorkflowID("receiver"):
            handle = DBOS.start_workflow(receiver)
        for message in ("a", "b", "c"):  # keyed: the restarted process's resend is deduplicated
            DBOS.send("receiver", message, "t", idempotency_key=message)
        print(f"RESULT {handle.get_result()}", flush=True)
    elif MODE in ("sleep", "recv-timeout"):
        with SetWorkflowID(MODE):
            handle = DBOS.start_workflow(sleeper if MODE == "sleep" else waiter)
        handle.get_result()
        print("RESULT done", flush=True)
    elif MODE == "stream":
        with SetWorkflowID("streamer"):
            handle = DBOS.start_workflow(streamer, N)
        handle.get_result()
        print("RESULT done", flush=True)
    DBOS.destroy()


if __name__ == "__main__":
    main()
