"""``Store``: the one interface the engine speaks to, composed from one mixin per concern.

Drivers (sqlite.py, postgres.py) subclass it and supply connection primitives; all SQL lives in
the concern mixins, shared by both drivers. Must not import the engine or the facade.
"""

from __future__ import annotations

from transact.storage.admin import AdminSql
from transact.storage.comms import CommsSql
from transact.storage.executors import ExecutorSql
from transact.storage.queues import QueueSql
from transact.storage.schedules import ScheduleSql
from transact.storage.workflows import WorkflowSql


class Store(WorkflowSql, ExecutorSql, QueueSql, CommsSql, ScheduleSql, AdminSql):
    """Everything the engine may ask of the system database."""
