"""DBOS facade: scheduled workflows (``@DBOS.scheduled``) and schedules created at run time.

Delegates to ``engine/schedules.py``. Must not import transact._dbos.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from transact._facade._base import FacadeBase
from transact.engine import schedules

F = TypeVar("F", bound=Callable[..., Any])


class ScheduleFacade(FacadeBase):
    @classmethod
    def scheduled(cls, cron: str, *, timezone: str | None = None, backfill: bool = False) -> Callable[[F], F]:
        """Run the decorated workflow once per cron tick, exactly once across all processes.

        Stack it above ``@DBOS.workflow()``; the workflow takes ``(scheduled_time, actual_time)``.
        ``cron`` has 5 fields, or 6 with seconds first; it is read in UTC unless ``timezone`` (an
        IANA name) is given. Ticks missed while no process ran are skipped, unless ``backfill``."""
        schedules.check(cron, timezone, backfill)  # bad arguments fail here, at decoration

        def decorate(fn: F) -> F:
            schedules.declare(fn, cron, timezone, backfill, cls._rt_or_none())
            return fn

        return decorate

    @classmethod
    def create_schedule(
        cls,
        schedule_name: str,
        workflow_fn: Callable[..., Any] | str,
        schedule: str,
        *,
        timezone: str | None = None,
        backfill: bool = False,
    ) -> None:
        """Create a schedule at run time (persisted; every process registering the workflow fires it).

        ``workflow_fn`` is a workflow or a registered workflow name; it takes
        ``(scheduled_time, actual_time)``. Fails if the name is taken."""
        schedules.create(cls._rt(), schedule_name, workflow_fn, schedule, timezone=timezone, backfill=backfill)

    @classmethod
    def list_schedules(
        cls,
        *,
        status: str | None = None,
        workflow_name: str | None = None,
        schedule_name_prefix: str | None = None,
    ) -> list[dict[str, Any]]:
        """Every schedule (declared in code and dynamic), by name; ``status`` is ACTIVE or PAUSED."""
        return schedules.list_all(
            cls._rt(), status=status, workflow_name=workflow_name, schedule_name_prefix=schedule_name_prefix
        )

    @classmethod
    def get_schedule(cls, schedule_name: str) -> dict[str, Any] | None:
        return schedules.get(cls._rt(), schedule_name)

    @classmethod
    def pause_schedule(cls, schedule_name: str) -> None:
        """Stop firing a schedule (in every process) until it is resumed."""
        schedules.set_state(cls._rt(), schedule_name, schedules.PAUSED)

    @classmethod
    def resume_schedule(cls, schedule_name: str) -> None:
        """Fire a paused schedule again from its next tick; ticks that fell while paused are skipped."""
        schedules.set_state(cls._rt(), schedule_name, schedules.ACTIVE)

    @classmethod
    def delete_schedule(cls, schedule_name: str) -> None:
        """Delete a schedule created with create_schedule(). Workflows already started are kept."""
        schedules.delete(cls._rt(), schedule_name)
