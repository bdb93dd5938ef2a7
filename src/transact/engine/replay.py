"""Pure replay decisions, shared by the sync and async shells. No I/O here."""

from __future__ import annotations

from transact.errors import DeterminismError
from transact.storage.rows import StepRow


def recorded_outcome(recorded: dict[int, StepRow], *, workflow_id: str, function_id: int, name: str) -> StepRow | None:
    """The outcome recorded at this position, or None when the step must run.

    Raises DeterminismError when the recorded step has a different name than the one called."""
    row = recorded.get(function_id)
    if row is None:
        return None
    if row.function_name != name:
        raise DeterminismError(workflow_id, function_id, row.function_name, name)
    return row
