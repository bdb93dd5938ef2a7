"""Step rows: the fenced checkpoint write and the reads that replay and listings need.

Steps are found by workflow through the dialect's ``sql.steps`` statements (SQLite keys steps by
one integer, Postgres by (workflow_id, function_id)). Must not import the engine or the facade.
"""

from __future__ import annotations

from collections.abc import Sequence

from transact.storage.dialect import ONE_ID
from transact.storage.fence import FencedSql, fenced_step_params, to_step
from transact.storage.rows import StepRow


class StepSql(FencedSql):
    def step_record(self, step: StepRow, *, executor_id: str) -> StepRow | None:
        """Checkpoint a step outcome, fenced on ownership and status.

        Returns None when written, or the row recorded earlier at the same position (a concurrent
        runner won; callers must use it). Round trips: 1 (why a write missed is asked only then)."""
        statements = self.sql.steps
        params = fenced_step_params(step, step.workflow_id, executor_id)
        if self.write_grouped(statements.record, params, statements.record_set) == 1:
            return None
        return self.read(lambda tx: self._explain_step_miss(tx, step.workflow_id, step.function_id, executor_id))

    def step_record_cancelled(self, step: StepRow, *, executor_id: str) -> bool:
        statements = self.sql.steps
        params = fenced_step_params(step, step.workflow_id, executor_id)
        return bool(self.write(lambda tx: tx.run(statements.record_cancelled, params), single=True) == 1)

    def steps_load(self, workflow_id: str) -> dict[int, StepRow]:
        """Every recorded outcome of a workflow, for replay. Round trips: 1."""
        return self.steps_load_many([workflow_id])[workflow_id]

    def steps_load_many(self, workflow_ids: Sequence[str]) -> dict[str, dict[int, StepRow]]:
        """Recorded step outcomes of many workflows (a claimed or adopted batch). Round trips: 1."""
        if not workflow_ids:
            return {}
        match, param = self._ids_match(workflow_ids)
        sql = self.sql.steps.of_workflows.format(match=match)
        out: dict[str, dict[int, StepRow]] = {wid: {} for wid in workflow_ids}
        for r in self.read(lambda tx: tx.all(sql, (param,))):
            step = to_step(r)
            out[step.workflow_id][step.function_id] = step
        return out

    def steps_list(self, workflow_id: str) -> list[StepRow]:
        """A workflow's recorded steps in execution order. Round trips: 1."""
        sql = self.sql.steps.of_workflows.format(match=ONE_ID) + " ORDER BY 2"  # (function_id)
        rows = self.read(lambda tx: tx.all(sql, (workflow_id,)))
        return [to_step(r) for r in rows]
