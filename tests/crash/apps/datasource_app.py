"""An app driven by the datasource crash test:
python datasource_app.py <system_db_url> <app_db_url> <workdir> <sync|async>.

A workflow runs one step, then a datasource transaction that inserts a row. With DS_KILL_AFTER_COMMIT
set, the process SIGKILLs itself right after the transaction commits in the datasource's database
and before the system database records the step. Each transaction run appends a line to
<workdir>/effects.txt. Prints ``RESULT <value>`` when the workflow finishes.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from typing import Any

import effects  # type: ignore[import-not-found]  # beside this script
from sqlalchemy import text

from transact import DBOS, AsyncSQLAlchemyDatasource, SetWorkflowID, SQLAlchemyDatasource
from transact.engine import step as step_module
from transact.storage.rows import StepRow

SYS_URL, APP_URL, WORKDIR, KIND = sys.argv[1:5]

if os.environ.get("DS_KILL_AFTER_COMMIT"):
    original_record = step_module.record

    def record_then_die(ctx: Any, row: StepRow) -> StepRow:
        if row.function_name == "add_item":
            os.kill(os.getpid(), signal.SIGKILL)  # committed in the datasource; nothing in the system DB
        return original_record(ctx, row)

    step_module.record = record_then_die


@DBOS.step()
def before() -> str:
    return "before"


ds = SQLAlchemyDatasource.create(APP_URL)


@ds.transaction(name="add_item")
def add_item(wid: str) -> str:
    effects.record(WORKDIR, "txn-run")
    ds.sql_session().execute(text("INSERT INTO items (wid, name) VALUES (:w, 'row')"), {"w": wid})
    return f"added-by-{os.getpid()}"


@DBOS.workflow()
def ds_workflow() -> str:
    before()
    return add_item(DBOS.workflow_id or "")


ads = asyncio.run(AsyncSQLAlchemyDatasource.create(APP_URL)) if KIND == "async" else None


async def add_item_async(wid: str) -> str:
    assert ads is not None
    effects.record(WORKDIR, "txn-run")
    await ads.sql_session().execute(text("INSERT INTO items (wid, name) VALUES (:w, 'row')"), {"w": wid})
    return f"added-by-{os.getpid()}"


add_item_async.__qualname__ = "add_item"
if ads is not None:
    add_item_async = ads.transaction(add_item_async)


@DBOS.workflow()
async def ds_workflow_async() -> str:
    before()
    return await add_item_async(DBOS.workflow_id or "")


DBOS(config={"name": "ds-crash", "system_database_url": SYS_URL})
DBOS.launch()
with SetWorkflowID(f"ds-crash-{KIND}"):
    handle = DBOS.start_workflow(ds_workflow_async if KIND == "async" else ds_workflow)
print("RESULT", handle.get_result(), flush=True)
DBOS.destroy()
