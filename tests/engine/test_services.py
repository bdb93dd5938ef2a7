"""The background services ``launch()`` starts: one explicit list, in order, with typed handles."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from transact import DBOS
from transact.engine.dispatcher import Dispatcher
from transact.engine.recovery import RecoveryService
from transact.engine.scheduler import Scheduler
from transact.errors import ConfigError


def test_services_start_in_order_and_are_reachable_by_type(config: dict[str, Any], tmp_path: Path) -> None:
    DBOS.destroy(destroy_registry=True)
    DBOS(config={**config, "application_database_url": f"sqlite:///{tmp_path / 'app.sqlite'}"})
    DBOS.launch()
    try:
        rt = DBOS._rt()
        kinds = [type(service).__name__ for service in rt.services]
        # The application database first: recovery may resume a workflow that runs a transaction at once.
        # Then the facade's integrations: here only the one that registers this application's version.
        assert kinds == ["_AppDatabaseService", "RecoveryService", "Dispatcher", "Scheduler", "VersionService"]
        assert isinstance(rt.services[1], RecoveryService) and isinstance(rt.services[2], Dispatcher)
        assert rt.scheduler is rt.services[3] and isinstance(rt.scheduler, Scheduler)
        assert rt.app_db is not None and rt.consumers is None
    finally:
        DBOS.destroy(destroy_registry=True)
    assert rt.services == [] and not rt.launched


def test_no_application_database_means_no_such_service(dbos: type[DBOS]) -> None:
    rt = dbos._rt()
    kinds = [type(s).__name__ for s in rt.services]
    assert kinds == ["RecoveryService", "Dispatcher", "Scheduler", "VersionService"]
    assert rt.app_db is None


def test_inconsistent_declarations_fail_before_anything_starts(config: dict[str, Any]) -> None:
    DBOS.destroy(destroy_registry=True)

    @DBOS.scheduled("* * * * *")
    def not_a_workflow(scheduled: Any, actual: Any) -> None:
        pass

    DBOS(config=config)
    try:
        with pytest.raises(ConfigError, match="not a workflow"):
            DBOS.launch()
        assert DBOS._rt_or_none() is not None and DBOS._rt_or_none().services == []  # type: ignore[union-attr]
    finally:
        DBOS.destroy(destroy_registry=True)
