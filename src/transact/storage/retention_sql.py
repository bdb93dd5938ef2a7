"""The statements of a garbage collection that both databases share (retention.py runs them;
a dialect may fold a whole batch into one statement built from these, ``retention_batch``).
SQL text only: must import nothing of the package."""

from __future__ import annotations

FINISHED_STATUSES = "('SUCCESS', 'ERROR', 'CANCELLED', 'MAX_RECOVERY_ATTEMPTS_EXCEEDED')"
FINISHED = f"status IN {FINISHED_STATUSES}"

BOUNDARY = (
    f"SELECT updated_at, workflow_id FROM workflow_status WHERE {FINISHED} "
    "ORDER BY updated_at DESC, workflow_id DESC LIMIT 1 OFFSET ?"
)


def candidates(guard: str = "") -> str:
    """A batch's candidates in completion order (parameters: ``before``'s time twice and id,
    ``after``'s time twice and id, the limit); tests EXPLAIN exactly this. Each position test,
    ``(updated_at, workflow_id) < (t, id)`` and ``> (t, id)``, is spelled so the index bounds
    updated_at. A plain ordered walk of ws_finished_idx: with the child test in it, the planner may
    hash-join every finished row and sort them all (seen at a million rows). No row locks:
    collectors take turns. ``guard``: a condition without columns (its placeholders come first),
    which the server tests once before the walk starts."""
    return (
        f"SELECT w.updated_at, w.workflow_id FROM workflow_status w WHERE {guard + ' AND ' if guard else ''}"
        f"w.{FINISHED} AND w.updated_at <= ? AND (w.updated_at < ? OR w.workflow_id < ?) "
        "AND w.updated_at >= ? AND (w.updated_at > ? OR w.workflow_id > ?) "
        "ORDER BY w.updated_at, w.workflow_id LIMIT ?"
    )


SELECT = candidates()

# 1 when a step may still land for a deleted workflow (CANCELLED, or finished at or after the
# parameter, epoch ms), else 0: for the RETURNING of a delete from workflow_status.
UNSETTLED = "CASE WHEN status = 'CANCELLED' OR updated_at >= ? THEN 1 ELSE 0 END"


def busy_parents_sql(ids_match: str) -> str:
    """Which of the listed workflows (one parameter: the dialect's ``ids_param``) have a child
    that still runs (ws_parent_created_idx)."""
    return (
        f"SELECT DISTINCT parent_workflow_id FROM workflow_status WHERE parent_workflow_id{ids_match} "
        f"AND status NOT IN {FINISHED_STATUSES}"
    )


def delete_sql(ids_match: str) -> str:
    """Delete the listed workflows (first parameter: the dialect's ``ids_param``), each still
    finished (primary-key probes: a join with the selection could become a hash join over the
    whole table); returns each id and ``UNSETTLED`` (second parameter)."""
    return f"DELETE FROM workflow_status WHERE workflow_id{ids_match} AND {FINISHED} RETURNING workflow_id, {UNSETTLED}"
