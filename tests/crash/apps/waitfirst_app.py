"""An app driven by the wait_first crash test: python waitfirst_app.py <db_url> <workdir>.

Workflow ``wf-parent`` starts children ``wf-slow`` (holds while <workdir>/hold-slow exists) and
``wf-fast``, waits for the first to finish, notes the winner, then holds while <workdir>/hold-after
exists. With WAITFIRST_FORBID_READS=1 any read of the children's statuses by a wait fails the
parent, so a restarted run shows that its winner came from the record, without waiting again.
Side effects go to <workdir>/effects.txt, one fsync'd line each.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import effects  # type: ignore[import-not-found]  # beside this script

from transact import DBOS, SetWorkflowID
from transact.engine import waits

DB_URL, WORKDIR = sys.argv[1], sys.argv[2]


@DBOS.step()
def note(text: str) -> None:
    effects.record(WORKDIR, text)


@DBOS.step()
def hold(name: str) -> None:
    effects.record(WORKDIR, f"holding {name}")
    effects.hold(WORKDIR, name)


@DBOS.workflow()
def child(name: str) -> str:
    if name == "slow":
        hold("slow")
    return name


@DBOS.workflow()
def parent() -> str:
    with SetWorkflowID("wf-slow"):
        slow = DBOS.start_workflow(child, "slow")
    with SetWorkflowID("wf-fast"):
        fast = DBOS.start_workflow(child, "fast")
    won = DBOS.wait_first([slow, fast])
    note(f"winner {won.workflow_id}")
    hold("after")
    return won.workflow_id


def refuse(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("the recovered wait_first read the children's statuses again")


def main() -> None:
    if os.environ.get("WAITFIRST_FORBID_READS"):
        waits.winner = refuse
    DBOS(config={"name": "waitfirst-crash-app", "system_database_url": DB_URL, "lease_seconds": 30})
    DBOS.launch()
    with SetWorkflowID("wf-parent"):
        handle = DBOS.start_workflow(parent)
    result = handle.get_result()
    effects.record(WORKDIR, f"result {result}")
    print(f"RESULT {result}", flush=True)
    DBOS.retrieve_workflow("wf-slow").get_result()  # the test lets it finish once it saw the result
    DBOS.destroy()


if __name__ == "__main__":
    main()
