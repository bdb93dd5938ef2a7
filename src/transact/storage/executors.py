"""Executor (process) registry: heartbeats, liveness, shutdown. Must not import the engine."""

from __future__ import annotations

from transact._lib.states import Hint
from transact.storage._base import DriverBase
from transact.storage.rows import EXECUTOR_COLUMNS, ExecutorRow


class ExecutorSql(DriverBase):
    def executor_register(self, row: ExecutorRow) -> None:
        self.write(
            lambda tx: tx.run(
                f"INSERT INTO executors ({EXECUTOR_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (executor_id) DO UPDATE SET hostname = excluded.hostname, pid = excluded.pid, "
                "process_token = excluded.process_token, app_version = excluded.app_version, "
                "started_at = excluded.started_at, last_seen_at = excluded.last_seen_at, state = excluded.state, "
                "workflow_names = excluded.workflow_names",
                (
                    row.executor_id,
                    row.hostname,
                    row.pid,
                    row.process_token,
                    row.app_version,
                    row.started_at,
                    row.last_seen_at,
                    row.state,
                    row.workflow_names,
                ),
            ),
            single=True,
        )

    def executor_heartbeat(self, executor_id: str, now: int, workflow_names: str | None = None) -> bool:
        """Renew the lease (and the published workflow names). False when the row is gone or marked
        dead (another process judged us dead)."""
        changed = self.write(
            lambda tx: tx.run(
                "UPDATE executors SET last_seen_at = ?, workflow_names = COALESCE(?, workflow_names) "
                "WHERE executor_id = ? AND state = 'RUNNING'",
                (now, workflow_names, executor_id),
            ),
            single=True,
        )
        return changed == 1

    def executor_list(self) -> list[ExecutorRow]:
        rows = self.read(lambda tx: tx.all(f"SELECT {EXECUTOR_COLUMNS} FROM executors ORDER BY started_at"))
        return [ExecutorRow(*r) for r in rows]

    def executor_set_state(self, executor_id: str, state: str, *, only_if: str | None = None) -> bool:
        sql = "UPDATE executors SET state = ? WHERE executor_id = ?"
        params: tuple[str, ...] = (state, executor_id)
        if only_if is not None:
            sql += " AND state = ?"
            params = (*params, only_if)
        changed = self.write(lambda tx: tx.run(sql, params), single=True)
        if changed:
            self.hint(Hint.EXECUTOR, executor_id)
        return changed == 1

    def executor_delete(self, executor_id: str, *, only_if_idle: bool = False) -> bool:
        """Forget an executor; ``only_if_idle``: only when it owns no PENDING workflow (one
        statement: no read of its backlog, no race with an adopter). True if deleted."""
        sql = "DELETE FROM executors WHERE executor_id = ?"
        params: tuple[str, ...] = (executor_id,)
        if only_if_idle:
            sql += " AND NOT EXISTS (SELECT 1 FROM workflow_status WHERE status = 'PENDING' AND executor_id = ?)"
            params = (executor_id, executor_id)
        deleted = self.write(lambda tx: tx.run(sql, params), single=True) > 0
        if deleted:
            self.hint(Hint.EXECUTOR, executor_id)
        return deleted
