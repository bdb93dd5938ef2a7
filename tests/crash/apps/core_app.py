"""A small app driven by the crash tests: python core_app.py <db_url> <mode> <workdir> [n].

Side effects go to <workdir>/effects.txt (one line per event, fsync'd), so tests can count how
often each step really ran across SIGKILLs and restarts. A step holds (sleeps) while the file
<workdir>/hold-<step> exists, which lets a test kill the process in the middle of that step.
"""

from __future__ import annotations

import os
import signal
import sys
import time

import effects  # type: ignore[import-not-found]  # beside this script

from transact import DBOS, SetWorkflowID

DB_URL, MODE, WORKDIR = sys.argv[1], sys.argv[2], sys.argv[3]
N = int(sys.argv[4]) if len(sys.argv) > 4 else 5
CODE = os.environ.get("APP_CODE", "A")


def effect(text: str) -> None:
    effects.record(WORKDIR, text)


def hold(name: str) -> None:
    effects.hold(WORKDIR, name)


@DBOS.step()
def numbered_step(wid: str, i: int) -> int:
    effect(f"start {wid} {i}")
    hold(str(i))
    effect(f"done {wid} {i}")
    return i * 10


@DBOS.workflow()
def steps_workflow(n: int) -> int:
    wid = DBOS.workflow_id
    assert wid is not None
    return sum(numbered_step(wid, i) for i in range(1, n + 1))


@DBOS.step()
def crash_step() -> None:
    effect("crash-step")
    os.kill(os.getpid(), signal.SIGKILL)


@DBOS.workflow(max_recovery_attempts=2)
def crashing_workflow() -> None:
    crash_step()


@DBOS.step()
def step_a() -> str:
    effect(f"step_a code={CODE}")
    return "a"


@DBOS.step()
def step_b() -> str:
    effect(f"step_b code={CODE}")
    hold("b")
    return f"b{CODE}"


@DBOS.step()
def step_c() -> str:
    effect(f"step_c code={CODE}")
    return "c"


@DBOS.workflow(name="versioned_workflow")
def versioned_workflow() -> str:
    if CODE == "C":  # a step removed: position 1 now calls step_b instead of step_a
        return step_b() + step_c()
    return step_a() + step_b() + step_c()


def main() -> None:
    DBOS(config={"name": "crash-app", "system_database_url": DB_URL, "lease_seconds": 30})
    DBOS.launch()
    if MODE == "steps":
        with SetWorkflowID("steps-wf"):
            handle = DBOS.start_workflow(steps_workflow, N)
        print(f"RESULT {handle.get_result()}", flush=True)
    elif MODE == "many":
        for i in range(N):
            with SetWorkflowID(f"many-{i}"):
                DBOS.start_workflow(steps_workflow, 2)
        print("STARTED", flush=True)
        total = sum(DBOS.retrieve_workflow(f"many-{i}").get_result() for i in range(N))
        print(f"RESULT {total}", flush=True)
    elif MODE == "serve":  # start the workflow, then keep serving until told to stop
        with SetWorkflowID("steps-wf"):
            DBOS.start_workflow(steps_workflow, N)
        print("STARTED", flush=True)
        while not os.path.exists(os.path.join(WORKDIR, "stop")):
            time.sleep(0.05)
    elif MODE == "crashloop":
        with SetWorkflowID("crashloop"):
            handle = DBOS.start_workflow(crashing_workflow)
        try:
            handle.get_result()
        except Exception as exc:
            print(f"ERROR {type(exc).__name__}", flush=True)
        print(f"STATUS {handle.get_status().status}", flush=True)
    elif MODE == "versioned":
        with SetWorkflowID("versioned"):
            handle = DBOS.start_workflow(versioned_workflow)
        try:
            print(f"RESULT {handle.get_result()}", flush=True)
        except Exception as exc:
            print(f"ERROR {type(exc).__name__}: {exc}", flush=True)
    DBOS.destroy()


if __name__ == "__main__":
    main()
