"""The application `transact worker` runs in tests/cli/test_worker.py: one queue, a workflow of one
step, and `held`, which waits for a message so a test can keep it running across a hand-over."""

from __future__ import annotations

from transact import DBOS, Queue

jobs = Queue("jobs", concurrency=4)


@DBOS.step()
def double(x: int) -> int:
    return x * 2


@DBOS.workflow(name="crunch")
def crunch(x: int) -> int:
    return double(x) + 1


@DBOS.workflow(name="held")
def held() -> str:
    message = DBOS.recv("go", timeout_seconds=60)
    return f"got {message}"
