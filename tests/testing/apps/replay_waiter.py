"""Replay checker app: a workflow that stays in flight, waiting for a message after one step."""

from transact import DBOS


@DBOS.step(name="prepare")
def prepare(n: int) -> int:
    return n


@DBOS.step(name="finish")
def finish(n: int) -> int:
    return n


@DBOS.workflow(name="waiter")
def waiter(n: int) -> int:
    total = prepare(n)
    DBOS.set_event("ready", total)
    go = DBOS.recv("go", timeout_seconds=300)
    return int(finish(total + (go or 0)))
