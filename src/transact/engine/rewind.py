"""Rewind, shared by DBOS and DBOSClient: a finished (or cancelled, or dead-lettered) workflow
re-runs under the same id from one of its steps. Steps at that position and after are deleted;
the ones before replay their recorded outcomes. A queued workflow waits in its queue again
(``queue_name``: in that queue instead); another restarts here when this process can run it,
else a live executor that registers it adopts it.

What a deleted step did outside its own row stays: a child workflow started there keeps its id
(derived from the parent's id and the position), so the re-run attaches to it rather than
starting it again; stream items and messages it sent stay sent. Must not import the facade.
"""

from __future__ import annotations

from transact._lib import checks
from transact._lib.states import TERMINAL, Status
from transact.engine import admin
from transact.engine.clock import now_ms
from transact.engine.runtime import Runtime
from transact.errors import ConfigError
from transact.storage import Store

REWINDABLE = tuple(sorted(TERMINAL))


def rewind(
    store: Store, workflow_id: str, start_step: int, rt: Runtime | None = None, *, queue_name: str | None = None
) -> None:
    """Re-run ``workflow_id`` from step ``start_step`` (1 re-runs every step). Raises
    WorkflowNotFoundError for an unknown id and ConfigError for a workflow that is still active
    (PENDING, ENQUEUED, DELAYED): cancel it first."""
    checks.count(start_step, "start_step (1 re-runs every step)", minimum=1)
    checks.text(queue_name, "queue_name", optional=True)
    _check_rewindable(store, workflow_id)
    if rt is not None:
        admin._wait_local_stop(rt, workflow_id)  # a cancelled run may still be ending its step here
    row = store.workflow_rewind(
        workflow_id=workflow_id, start_step=start_step, from_statuses=REWINDABLE, now=now_ms(), queue_name=queue_name
    )
    if row is None:  # it started again in between
        _check_rewindable(store, workflow_id)
        return
    if row.status == Status.PENDING:
        admin._start_unowned(store, [row], rt)


def _check_rewindable(store: Store, workflow_id: str) -> None:
    current = admin.get_row(store, workflow_id)  # WorkflowNotFoundError when missing
    if current.status not in REWINDABLE:
        raise ConfigError(
            f"cannot rewind workflow {workflow_id!r}: it is {current.status}; only a finished, cancelled or "
            "MAX_RECOVERY_ATTEMPTS_EXCEEDED workflow can be rewound (cancel it first)"
        )
