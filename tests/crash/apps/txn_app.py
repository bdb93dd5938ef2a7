"""An app driven by the transaction crash tests:
python txn_app.py <system_db_url> <app_db_url> <workdir> <mode>.

Modes: ``first`` (the transaction is the workflow's first step), ``after-step`` (a step runs
before it), ``error`` (the transaction raises in the first process only). With TXN_KILL_AFTER_COMMIT
set, the process SIGKILLs itself right after the transaction commits in the application database
and before the system database records the step. Each transaction run appends a line to
<workdir>/effects.txt. Prints ``RESULT <value>`` when the workflow finishes.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

import effects  # type: ignore[import-not-found]  # beside this script
from sqlalchemy import text

from transact import DBOS, SetWorkflowID
from transact.engine import step as step_module
from transact.storage.rows import StepRow

SYS_URL, APP_URL, WORKDIR, MODE = sys.argv[1:5]
FIRST_PROCESS = bool(os.environ.get("TXN_KILL_AFTER_COMMIT"))


def effect(line: str) -> None:
    effects.record(WORKDIR, line)


if FIRST_PROCESS:
    original_record = step_module.record

    def record_then_die(ctx: Any, row: StepRow) -> StepRow:
        if row.function_name == "add_item":
            os.kill(os.getpid(), signal.SIGKILL)  # committed in the app DB; nothing in the system DB
        return original_record(ctx, row)

    step_module.record = record_then_die


@DBOS.step()
def before() -> str:
    return "before"


@DBOS.transaction(name="add_item")
def add_item(wid: str) -> str:
    effect("txn-run")
    DBOS.sql_session.execute(text("INSERT INTO items (wid, name) VALUES (:w, 'row')"), {"w": wid})
    if MODE == "error" and FIRST_PROCESS:
        raise ValueError("declined in the first process")
    return f"added-by-{os.getpid()}"


@DBOS.workflow()
def txn_workflow() -> str:
    if MODE == "after-step":
        before()
    wid = DBOS.workflow_id or ""
    try:
        return add_item(wid)
    except ValueError as exc:
        return f"caught {exc}"


DBOS(config={"name": "txn-crash", "system_database_url": SYS_URL, "application_database_url": APP_URL})
DBOS.launch()
with SetWorkflowID(f"txn-crash-{MODE}"):
    handle = DBOS.start_workflow(txn_workflow)
print("RESULT", handle.get_result(), flush=True)
DBOS.destroy()
