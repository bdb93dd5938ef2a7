"""Chaos worker: python chaos_app.py <system_db_url> <app_db_url> <workdir> <queue-json>.

Serves Queue("chaos", **queue-json) until <workdir>/stop exists; the executor id comes from
TRANSACT_EXECUTOR_ID (the harness sets it). Workflow "chaos" runs two transactions on the
application database, a step, a durable sleep, a child workflow, two ``recv``s (the client sends
the messages) and two events. Each run of the workflow body appends ``start``/``end`` lines with
wall-clock times and the executor id to <workdir>/runs-<pid>.txt (fsync'd, so they survive a SIGKILL): the harness
measures concurrency from them. Prints READY once launched.
"""

from __future__ import annotations

import json
import os
import sys
import time

from sqlalchemy import text

from transact import DBOS, Queue

SYS_URL, APP_URL, WORKDIR, QUEUE_KWARGS = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
SLEEP_S = float(os.environ.get("CHAOS_SLEEP", "0.05"))

queue = Queue("chaos", **QUEUE_KWARGS)
_runs = open(os.path.join(WORKDIR, f"runs-{os.getpid()}.txt"), "a")  # noqa: SIM115 - lives as long as the process


EXECUTOR = os.environ.get("TRANSACT_EXECUTOR_ID", "?")


def mark(kind: str, wid: str) -> None:
    _runs.write(f"{kind} {wid} {time.time():.6f} {EXECUTOR}\n")
    _runs.flush()
    os.fsync(_runs.fileno())


@DBOS.transaction(name="chaos_tx")
def record_tx(wid: str, tx: int, value: str) -> str:
    DBOS.sql_session.execute(
        text("INSERT INTO chaos_effects (k, wid, tx, val) VALUES (:k, :w, :t, :v)"),
        {"k": f"{wid}:{tx}", "w": wid, "t": tx, "v": value},
    )
    return value


@DBOS.step(name="chaos_square")
def square(i: int) -> int:
    return i * i


@DBOS.step(name="chaos_child_step")
def child_step(i: int) -> int:
    return i + 1


@DBOS.workflow(name="chaos_child")
def child(i: int) -> int:
    return child_step(i) * 2


@DBOS.workflow(name="chaos")
def chaos(i: int) -> dict[str, object]:
    wid = DBOS.workflow_id or ""
    mark("start", wid)
    first = record_tx(wid, 1, f"first-{i}")
    sq = square(i)
    DBOS.sleep(SLEEP_S)
    kid = child(i)
    DBOS.set_event("stage", "waiting")
    got = [DBOS.recv("chaos", timeout_seconds=120), DBOS.recv("chaos", timeout_seconds=120)]
    result: dict[str, object] = {"i": i, "first": first, "square": sq, "child": kid, "got": got}
    record_tx(wid, 2, json.dumps(got))
    DBOS.set_event("result", result)
    mark("end", wid)
    return result


def main() -> None:
    DBOS(
        config={
            "name": "chaos-app",
            "system_database_url": SYS_URL,
            "application_database_url": APP_URL,
            "lease_seconds": float(os.environ.get("CHAOS_LEASE", "6")),
            # Off: a dead worker's work waits for its lease, so a restart with the same executor id
            # recovers it itself; a new executor id adopts it once the lease has expired.
            "local_liveness_check": os.environ.get("CHAOS_LOCAL_CHECK", "0") == "1",
            "heartbeat_seconds": 1,
            "queue_poll_seconds": 2,
            "shutdown_timeout_seconds": 2,
            "database_retry_timeout_seconds": 120,
        }
    )
    DBOS.launch()
    print(f"READY {os.getpid()}", flush=True)
    while not os.path.exists(os.path.join(WORKDIR, "stop")):
        time.sleep(0.05)
    DBOS.destroy()


if __name__ == "__main__":
    main()
