"""Test helpers that wait on a condition with a deadline (never a fixed sleep), for a launched DBOS."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from typing import Any, TypeVar

from transact._dbos import DBOS
from transact._lib.states import TERMINAL
from transact.errors import ConfigError
from transact.models import StepInfo, WorkflowStatus

T = TypeVar("T")
POLL_S = 0.02  # the pause between two reads of the condition


def _checked_timeout(timeout: float, api: str) -> float:
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise ConfigError(f"{api} timeout must be a number of seconds > 0, got {timeout!r}")
    return float(timeout)


def _until(read: Callable[[], T | None], timeout: float, what: Callable[[], str]) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if value is not None:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what()}")
        time.sleep(min(POLL_S, max(0.0, deadline - time.monotonic())))


def wait_for_workflow(
    workflow_id: str, *, status: str | Collection[str] | None = None, timeout: float = 20.0
) -> WorkflowStatus:
    """Wait until workflow ``workflow_id`` has ``status`` (one or any of several; default: any
    final status) and return its status. TimeoutError names the status it last had."""
    wanted = frozenset(TERMINAL if status is None else [status] if isinstance(status, str) else status)
    if not wanted or not all(isinstance(s, str) for s in wanted):
        raise ConfigError(f"wait_for_workflow status must be a status name or a collection of them, got {status!r}")
    limit = _checked_timeout(timeout, "wait_for_workflow")
    last: list[WorkflowStatus | None] = [None]

    def read() -> WorkflowStatus | None:
        last[0] = DBOS.get_workflow_status(workflow_id)
        return last[0] if last[0] is not None and last[0].status in wanted else None

    def what() -> str:
        now = "it does not exist" if last[0] is None else f"it is {last[0].status}"
        return f"workflow {workflow_id!r} to be {' or '.join(sorted(wanted))} ({now})"

    return _until(read, limit, what)


def wait_for_queue_drain(queue: Any, *, timeout: float = 20.0) -> None:
    """Wait until queue ``queue`` (a Queue or its name) holds no enqueued or running workflow."""
    name = queue if isinstance(queue, str) else getattr(queue, "name", None)
    if not isinstance(name, str) or not name:
        raise ConfigError(f"wait_for_queue_drain needs a Queue or a queue name, got {queue!r}")
    limit = _checked_timeout(timeout, "wait_for_queue_drain")
    left: list[int] = [0]

    def read() -> bool | None:
        left[0] = len(DBOS.list_queued_workflows(queue_name=name))
        return True if left[0] == 0 else None

    _until(read, limit, lambda: f"queue {name!r} to drain ({left[0]} workflow(s) still queued or running)")


def wait_for_event(workflow_id: str, key: str, *, timeout: float = 20.0) -> Any:
    """Wait until workflow ``workflow_id`` has set event ``key`` and return its value (which may
    be None). Woken by the event itself, not by polling."""
    limit = _checked_timeout(timeout, "wait_for_event")
    value = DBOS.get_event(workflow_id, key, timeout_seconds=limit)
    if value is None and key not in DBOS.get_all_events(workflow_id):
        raise TimeoutError(f"timed out after {limit:g} s waiting for workflow {workflow_id!r} to set event {key!r}")
    return value


def wait_for_step(workflow_id: str, function_name: str, *, timeout: float = 20.0) -> StepInfo:
    """Wait until workflow ``workflow_id`` has recorded a step named ``function_name`` (e.g.
    ``"DBOS.sleep"``: the sleep's wake-up time is stored, so a ``TestClock`` may now pass it) and
    return the first such step."""
    if not isinstance(function_name, str) or not function_name:
        raise ConfigError(f"wait_for_step function_name must be a step name, got {function_name!r}")
    limit = _checked_timeout(timeout, "wait_for_step")
    seen: list[list[str]] = [[]]

    def read() -> StepInfo | None:
        steps = DBOS.list_workflow_steps(workflow_id)
        seen[0] = [s["function_name"] for s in steps]
        return next((s for s in steps if s["function_name"] == function_name), None)

    return _until(read, limit, lambda: f"workflow {workflow_id!r} to record step {function_name!r} (it has {seen[0]})")
