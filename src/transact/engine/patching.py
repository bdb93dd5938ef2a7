"""Patching: branch around runs recorded under older code without pinning a version.

``patch(name)`` marks its position in the workflow with a recorded marker step named
``DBOS.patch-<name>``. A run reaching that position under the new code finds nothing recorded
there: it records the marker and takes the new path (True). A run recorded under the old code has
an ordinary step at that position: the patch answers False and leaves the position to the old step.
A replay of a patched run finds its own marker and answers True again.

``deprecate_patch(name)`` is the second stage, once no run needs the old path: it consumes a marker
where one is recorded (so runs patched earlier still line up) and records none itself, so the call
can later be deleted without changing any run's positions. Deleting a ``patch`` call while runs
still hold its marker fails their replay with a DeterminismError that names the patch.

Must not import the facade.
"""

from __future__ import annotations

from transact._lib import checks
from transact.engine import serialization, step
from transact.engine.clock import now_ms
from transact.engine.context import WorkflowContext, current_step, current_workflow
from transact.errors import PATCH_MARKER_PREFIX, NotInWorkflowError
from transact.storage.rows import StepRow

_NONE = serialization.dumps_fast(None)


def _begin(api: str, name: object) -> tuple[WorkflowContext, str]:
    checks.text(name, f"{api} name", bounded=True)
    ctx = current_workflow.get()
    if ctx is None or current_step.get() is not None:
        raise NotInWorkflowError(
            f"{api}({name!r}) must be called in a workflow's body (not in a step or outside any workflow): "
            "it decides which path the workflow's recorded steps follow"
        )
    return ctx, PATCH_MARKER_PREFIX + str(name)


def _decide(ctx: WorkflowContext, marker: str, *, deprecated: bool) -> tuple[bool, StepRow | None]:
    """(answer, marker row to record). Consumes the position when the answer takes it."""
    recorded = ctx.recorded.get(ctx.function_id + 1)
    if recorded is not None:
        if recorded.function_name == marker:
            ctx.next_function_id()  # a run patched earlier: its marker keeps its place
            return True, None
        return deprecated, None  # recorded under the old code: the position is the old step's
    if deprecated:
        return True, None  # new runs take the new path and keep no marker
    ctx.check_cancelled()
    now = now_ms()
    return True, StepRow(ctx.workflow_id, ctx.next_function_id(), marker, _NONE, None, None, now, now)


def patch(name: str, *, deprecated: bool = False) -> bool:
    api = "DBOS.deprecate_patch" if deprecated else "DBOS.patch"
    ctx, marker = _begin(api, name)
    answer, row = _decide(ctx, marker, deprecated=deprecated)
    if row is not None:
        step.record(ctx, row)
    return answer


async def patch_async(name: str, *, deprecated: bool = False) -> bool:
    api = "DBOS.deprecate_patch_async" if deprecated else "DBOS.patch_async"
    ctx, marker = _begin(api, name)
    answer, row = _decide(ctx, marker, deprecated=deprecated)
    if row is not None:
        await step.record_async(ctx, row)
    return answer
