"""``SqlStore``: the SQL both drivers share, composed from one mixin per concern.

Each mixin implements one protocol of protocol.py (workflows.py: WorkflowStore, steps.py:
StepStore, executors.py, queues.py, comms.py, schedules.py, admin.py, outbox.py); _base.py implements the
driver surface. The drivers (sqlite.py, postgres.py) subclass it, supply connection primitives
and their dialect's statements (``sql``). Must not import the engine or the facade.
"""

from __future__ import annotations

from transact.storage.admin import AdminSql
from transact.storage.comms import CommsSql
from transact.storage.debounce import DebounceSql
from transact.storage.executors import ExecutorSql
from transact.storage.outbox import OutboxSql
from transact.storage.queues import QueueSql
from transact.storage.retention import RetentionSql
from transact.storage.rewind import RewindSql
from transact.storage.schedules import ScheduleSql
from transact.storage.stats import StatsSql
from transact.storage.steps import StepSql
from transact.storage.transfer import TransferSql
from transact.storage.versions import VersionSql
from transact.storage.workflows import WorkflowSql


class SqlStore(
    WorkflowSql,
    StepSql,
    ExecutorSql,
    QueueSql,
    CommsSql,
    ScheduleSql,
    AdminSql,
    DebounceSql,
    OutboxSql,
    RetentionSql,
    StatsSql,
    TransferSql,
    VersionSql,
    RewindSql,
):
    """Everything the engine may ask of the system database (``protocol.SystemStore``), in SQL."""
