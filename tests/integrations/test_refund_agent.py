"""Step retries on the refund-agent example: a flaky step succeeds on its second attempt, and a
step that fails on every attempt raises an error whose ``.errors`` holds each attempt's exception
(also when the result is read back from the database)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from transact import DBOS, DBOSMaxStepRetriesExceeded, StepRetriesExceededError

EXAMPLE = Path(__file__).parents[2] / "examples" / "refund_agent.py"


@pytest.fixture
def example(dbos: type[DBOS], monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The example, loaded fresh for each test (the dbos fixture forgets registrations)."""
    spec = importlib.util.spec_from_file_location("refund_agent_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    return module


def test_flaky_step_succeeds_on_its_second_attempt(example: ModuleType) -> None:
    example.discounts.outages["10"] = 1
    handle = DBOS.start_workflow(example.refund_request, "lamp", "it was too expensive")
    assert handle.get_result(timeout=30) == "Applied discount of 10%"
    assert example.discounts.calls["10"] == 2
    assert handle.get_status().status == "SUCCESS"

    assert example.refund_request("mug", "arrived broken") == "Processed refund for item mug, because arrived broken"
    assert example.payments.calls["mug"] == 1


def test_exhausted_step_raises_every_attempts_error(example: ModuleType) -> None:
    example.payments.outages["chair"] = 5
    handle = DBOS.start_workflow(example.refund_request, "chair", "arrived broken")
    with pytest.raises(StepRetriesExceededError) as caught:
        handle.get_result(timeout=30)
    assert example.payments.calls["chair"] == 2, "max_attempts=2"
    errors = caught.value.errors
    assert [type(e) for e in errors] == [TimeoutError, TimeoutError]
    assert [str(e) for e in errors] == [
        "payments API timed out for 'chair' (call 1)",
        "payments API timed out for 'chair' (call 2)",
    ]
    assert "step 'process_refund' failed after 2 attempts" in str(caught.value)
    assert handle.get_status().status == "ERROR"

    # Read back from the database, the error still holds both attempts; the DBOS name catches it.
    with pytest.raises(DBOSMaxStepRetriesExceeded) as again:
        DBOS.retrieve_workflow(handle.workflow_id).get_result(timeout=10)
    assert [str(e) for e in again.value.errors] == [str(e) for e in errors]
    assert example.payments.calls["chair"] == 2, "a finished workflow never runs its steps again"
