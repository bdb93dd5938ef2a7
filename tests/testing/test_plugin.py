"""transact.testing as a pytest plugin: its fixtures and wait helpers, on SQLite and Postgres."""

from __future__ import annotations

import threading

import pytest

from transact import DBOS, Queue
from transact.errors import ConfigError
from transact.testing import wait_for_event, wait_for_queue_drain, wait_for_workflow

pytest_plugins = ["transact.testing"]


@pytest.fixture(params=["sqlite", "postgres"])
def transact_database_url(request: pytest.FixtureRequest, transact_sqlite_url: str) -> str:
    """The plugin's launch target, overridden here to cover both databases."""
    if request.param == "sqlite":
        return transact_sqlite_url
    return str(request.getfixturevalue("transact_postgres_url"))


def test_transact_app_runs_workflows_and_the_helpers_wait_for_them(transact_app: type[DBOS]) -> None:
    release = threading.Event()
    queue = Queue("plugin-q")

    @DBOS.step()
    def double(n: int) -> int:
        return n * 2

    @DBOS.workflow()
    def flow(n: int) -> int:
        DBOS.set_event("half", n)
        DBOS.set_event("nothing", None)
        release.wait(20)
        return double(n)

    handle = transact_app.start_workflow(flow, 21)
    assert wait_for_event(handle.workflow_id, "half", timeout=20) == 21
    assert wait_for_event(handle.workflow_id, "nothing", timeout=20) is None  # a None value still counts
    assert wait_for_workflow(handle.workflow_id, status="PENDING").status == "PENDING"
    release.set()
    done = wait_for_workflow(handle.workflow_id, timeout=20)
    assert done.status == "SUCCESS" and handle.get_result() == 42

    queued = [queue.enqueue(double, n) for n in range(5)]
    wait_for_queue_drain(queue, timeout=20)
    assert [h.get_status().status for h in queued] == ["SUCCESS"] * 5
    wait_for_queue_drain("plugin-q", timeout=1)


def test_helpers_time_out_with_a_reason(transact_app: type[DBOS]) -> None:
    @DBOS.workflow()
    def quiet() -> None:
        DBOS.recv("never", timeout_seconds=1)

    handle = transact_app.start_workflow(quiet)
    with pytest.raises(TimeoutError, match="to set event 'missing'"):
        wait_for_event(handle.workflow_id, "missing", timeout=0.2)
    with pytest.raises(TimeoutError, match="it does not exist"):
        wait_for_workflow("no-such-workflow", timeout=0.1)
    with pytest.raises(ConfigError, match="timeout"):
        wait_for_workflow(handle.workflow_id, timeout=0)
    with pytest.raises(ConfigError, match="Queue or a queue name"):
        wait_for_queue_drain(42)
    assert wait_for_workflow(handle.workflow_id, timeout=20).status == "SUCCESS"


def test_fixture_urls_are_fresh(transact_sqlite_url: str, transact_postgres_url: str) -> None:
    assert transact_sqlite_url.startswith("sqlite:///") and transact_sqlite_url.endswith(".sqlite")
    assert transact_postgres_url.startswith("postgresql://") and "/transact_t_" in transact_postgres_url
    DBOS.destroy()
    DBOS(config={"name": "plugin-urls", "system_database_url": transact_postgres_url})
    try:
        DBOS.launch()
        assert DBOS.list_workflows() == []
    finally:
        DBOS.destroy(destroy_registry=True)
