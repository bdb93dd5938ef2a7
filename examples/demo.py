"""Crash-and-resume demo: the seed's checkout workflow, killed with SIGKILL mid-way, then resumed.

Run it with `bash scripts/demo.sh`. It starts this file as a child process in "app" mode, waits until
the workflow is in the middle of its steps, kills the child with SIGKILL, starts it again and shows
that the completed steps are not run again: the workflow resumes from the last completed step.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from transact import DBOS, SetWorkflowID

DB_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "demo-checkout.sqlite")
STEP_SECONDS = 1.0


def say(text: str) -> None:
    print(f"  [app pid {os.getpid()}] {text}", flush=True)


# ---- the seed's "Reliable Workflows" example, unchanged apart from the import --------------------
@DBOS.step()
def create_order():
    say("create_order: running")
    time.sleep(STEP_SECONDS)
    return {"order_id": 1001}


@DBOS.step()
def reserve_inventory(order, items):
    say(f"reserve_inventory: reserving {items} for order {order['order_id']}")
    time.sleep(STEP_SECONDS)


@DBOS.step()
def process_payment(order, items):
    say("process_payment: charging the card")
    time.sleep(STEP_SECONDS)
    return "paid"


@DBOS.step()
def fulfill_order(order):
    say("fulfill_order: shipping")
    time.sleep(STEP_SECONDS)


@DBOS.step()
def undo_reserve_inventory(order, items):
    say("undo_reserve_inventory")


@DBOS.step()
def cancel_order(order):
    say("cancel_order")


@DBOS.workflow()
def checkout_workflow(items):
    order = create_order()
    reserve_inventory(order, items)
    payment_status = process_payment(order, items)
    if payment_status == 'paid':
        fulfill_order(order)
    else:
        undo_reserve_inventory(order, items)
        cancel_order(order)
# --------------------------------------------------------------------------------------------------


def run_app() -> None:
    DBOS(config={"name": "demo-checkout", "system_database_url": f"sqlite:///{DB_PATH}"})
    DBOS.launch()  # recovers any checkout interrupted by a crash
    with SetWorkflowID("order-1001"):
        handle = DBOS.start_workflow(checkout_workflow, ["book", "pen"])
    handle.get_result()
    steps = [s["function_name"] for s in _steps("order-1001")]
    say(f"workflow {handle.workflow_id} finished: {handle.get_status().status}; checkpoints: {steps}")
    DBOS.destroy()


def _steps(workflow_id: str) -> list[dict[str, object]]:
    import sqlite3

    with sqlite3.connect(DB_PATH) as conn:
        rows = conn.execute(
            "SELECT function_id, function_name FROM operation_outputs WHERE workflow_id = ? ORDER BY function_id",
            (workflow_id,),
        ).fetchall()
    return [{"function_id": r[0], "function_name": r[1]} for r in rows]


def main() -> None:
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(DB_PATH + suffix):
            os.remove(DB_PATH + suffix)
    print("1) Starting the checkout app; it will be killed with SIGKILL during process_payment.")
    child = subprocess.Popen([sys.executable, __file__, "app"], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    for line in child.stdout:
        print(line, end="")
        if "process_payment: charging" in line:
            break
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    done = [s["function_name"] for s in _steps("order-1001")]
    print(f"2) Killed pid {child.pid} (SIGKILL). Checkpointed steps at the crash: {done}")
    print("3) Restarting the app: it resumes order-1001 from the last completed step.")
    started = time.monotonic()
    out = subprocess.run([sys.executable, __file__, "app"], stdout=subprocess.PIPE, text=True, check=True).stdout
    print(out, end="")
    rerun = [name for name in ("create_order", "reserve_inventory") if f"{name}: " in out]
    assert not rerun, f"completed steps ran again: {rerun}"
    assert "process_payment: charging" in out and "finished: SUCCESS" in out
    print(f"4) Resumed and finished in {time.monotonic() - started:.1f} s; create_order and reserve_inventory "
          "were not run again.")


if __name__ == "__main__":
    if sys.argv[1:] == ["app"]:
        run_app()
    else:
        main()
