"""The DBOS error names: importable from ``transact``, in DBOS's hierarchy (DBOSException, or
DBOSBaseException for the ones user code must not swallow), with DBOS's error codes, raised in the
situations DBOS documents (on SQLite and Postgres), and surviving a pickle round trip (errors
are stored in the system database)."""

from __future__ import annotations

import asyncio
import pickle
import threading
from typing import Any

import pytest

import transact
from tests.conftest import wait_until
from transact import (
    DBOS,
    ConfigError,
    DBOSAwaitedWorkflowCancelledError,
    DBOSAwaitedWorkflowMaxRecoveryAttemptsExceeded,
    DBOSBaseException,
    DBOSConflictingRegistrationError,
    DBOSConflictingWorkflowError,
    DBOSErrorCode,
    DBOSException,
    DBOSInitializationError,
    DBOSMaxStepRetriesExceeded,
    DBOSNonExistentWorkflowError,
    DBOSNotAuthorizedError,
    DBOSQueueDeduplicatedError,
    DBOSRecoveryError,
    DBOSUnexpectedStepError,
    DBOSWorkflowCancelledError,
    DBOSWorkflowConflictIDError,
    DBOSWorkflowFunctionNotFoundError,
    DeterminismError,
    MaxRecoveryAttemptsExceededError,
    Queue,
    QueueDeduplicatedError,
    SetEnqueueOptions,
    SetWorkflowID,
    StepRetriesExceededError,
    TransactError,
    WorkflowCancelledError,
    WorkflowConflictError,
    WorkflowNotFoundError,
    WorkflowNotRegisteredError,
)
from transact.engine import serialization
from transact.storage import Store

T = 20.0

# Every error name DBOS documents, with its DBOSErrorCode member.
DBOS_ERRORS: dict[str, str] = {
    "DBOSWorkflowConflictIDError": "ConflictingIDError",
    "DBOSRecoveryError": "RecoveryError",
    "DBOSInitializationError": "InitializationError",
    "DBOSWorkflowFunctionNotFoundError": "WorkflowFunctionNotFound",
    "DBOSNonExistentWorkflowError": "NonExistentWorkflowError",
    "MaxRecoveryAttemptsExceededError": "MaxRecoveryAttemptsExceeded",
    "DBOSMaxStepRetriesExceeded": "MaxStepRetriesExceeded",
    "DBOSNotAuthorizedError": "NotAuthorized",
    "DBOSConflictingWorkflowError": "ConflictingWorkflowError",
    "DBOSWorkflowCancelledError": "WorkflowCancelled",
    "DBOSUnexpectedStepError": "UnexpectedStep",
    "DBOSQueueDeduplicatedError": "QueueDeduplicated",
    "DBOSAwaitedWorkflowCancelledError": "AwaitedWorkflowCancelled",
    "DBOSAwaitedWorkflowMaxRecoveryAttemptsExceeded": "AwaitedWorkflowMaxRecoveryAttemptsExceeded",
    "DBOSConflictingRegistrationError": "ConflictingRegistrationError",
}
# DBOS keeps these out of reach of ``except Exception`` (they stop a workflow's run).
UNCATCHABLE = {"DBOSWorkflowCancelledError", "DBOSWorkflowConflictIDError"}

# Transact's own name -> the DBOS name(s) it must be caught by.
TRANSACT_TO_DBOS: dict[type[BaseException], tuple[type[BaseException], ...]] = {
    ConfigError: (DBOSInitializationError,),
    WorkflowNotRegisteredError: (DBOSWorkflowFunctionNotFoundError,),
    WorkflowNotFoundError: (DBOSNonExistentWorkflowError,),
    StepRetriesExceededError: (DBOSMaxStepRetriesExceeded,),
    WorkflowConflictError: (DBOSConflictingWorkflowError,),
    DeterminismError: (DBOSUnexpectedStepError,),
    QueueDeduplicatedError: (DBOSQueueDeduplicatedError,),
    WorkflowCancelledError: (DBOSAwaitedWorkflowCancelledError,),
    MaxRecoveryAttemptsExceededError: (DBOSAwaitedWorkflowMaxRecoveryAttemptsExceeded,),
}


# -- names, hierarchy, codes ----------------------------------------------------------------------
def test_every_dbos_error_name_is_exported() -> None:
    for name in [*DBOS_ERRORS, "DBOSException", "DBOSBaseException", "DBOSErrorCode"]:
        assert name in transact.__all__, name
        assert getattr(transact, name) is getattr(transact.errors, name), name
    assert DBOSException is TransactError
    assert issubclass(DBOSException, Exception)
    assert issubclass(DBOSBaseException, BaseException) and not issubclass(DBOSBaseException, Exception)


@pytest.mark.parametrize("name", sorted(DBOS_ERRORS))
def test_dbos_error_hierarchy_and_code(name: str) -> None:
    cls = getattr(transact, name)
    if name in UNCATCHABLE:
        assert issubclass(cls, DBOSBaseException) and not issubclass(cls, Exception)
    else:
        assert issubclass(cls, DBOSException)
    assert cls.dbos_error_code == DBOSErrorCode[DBOS_ERRORS[name]].value
    assert cls.status_code == (403 if name == "DBOSNotAuthorizedError" else None)


def test_error_codes_are_dbos_values() -> None:
    assert {c.name: c.value for c in DBOSErrorCode} == {
        "ConflictingIDError": 1,
        "RecoveryError": 2,
        "InitializationError": 3,
        "WorkflowFunctionNotFound": 4,
        "NonExistentWorkflowError": 5,
        "MaxRecoveryAttemptsExceeded": 6,
        "MaxStepRetriesExceeded": 7,
        "NotAuthorized": 8,
        "ConflictingWorkflowError": 9,
        "WorkflowCancelled": 10,
        "UnexpectedStep": 11,
        "QueueDeduplicated": 12,
        "AwaitedWorkflowCancelled": 13,
        "AwaitedWorkflowMaxRecoveryAttemptsExceeded": 14,
        "ConflictingRegistrationError": 25,
    }


@pytest.mark.parametrize("transact_cls", list(TRANSACT_TO_DBOS), ids=lambda c: c.__name__)
def test_transact_names_are_caught_by_dbos_names(transact_cls: type[BaseException]) -> None:
    for dbos_cls in TRANSACT_TO_DBOS[transact_cls]:
        assert issubclass(transact_cls, dbos_cls)
    assert issubclass(transact_cls, DBOSException)  # every error Transact raises is catchable as one


def test_the_old_wrong_alias_is_gone() -> None:
    """Reusing an id for another workflow is DBOSConflictingWorkflowError, not the ID-conflict
    error DBOS raises when a second execution of the same workflow is detected."""
    assert not issubclass(WorkflowConflictError, DBOSWorkflowConflictIDError)
    assert transact.DBOSMaxRecoveryAttemptsExceeded is MaxRecoveryAttemptsExceededError  # earlier alias kept


def test_exception_base_takes_dbos_arguments() -> None:
    err = DBOSException("boom", dbos_error_code=DBOSErrorCode.RecoveryError.value)
    assert (err.message, err.dbos_error_code, err.status_code, str(err)) == ("boom", 2, None, "boom")
    assert DBOSException("plain").dbos_error_code is None
    base = DBOSBaseException("stop", 10)
    assert (base.message, base.dbos_error_code, str(base)) == ("stop", 10, "stop")
    assert DBOSNotAuthorizedError("no role").status_code == 403
    err.message = "changed"
    assert str(err) == "changed"


# -- pickling -------------------------------------------------------------------------------------
def _samples() -> list[BaseException]:
    return [
        DBOSException("plain", 3),
        DBOSBaseException("base", 10),
        DBOSWorkflowConflictIDError("w1"),
        DBOSRecoveryError("w1", "no such function"),
        DBOSInitializationError("bad config"),
        DBOSWorkflowFunctionNotFoundError("w1", "not registered"),
        DBOSNonExistentWorkflowError("w1"),
        DBOSMaxStepRetriesExceeded("s", 2, [ValueError("a"), ValueError("b")]),
        DBOSNotAuthorizedError("no role"),
        DBOSConflictingWorkflowError("w1", "taken"),
        DBOSWorkflowCancelledError("w1 cancelled"),
        DBOSUnexpectedStepError("w1", 3, "expected", "recorded"),
        DBOSQueueDeduplicatedError("w1", "q", "d"),
        DBOSAwaitedWorkflowCancelledError("w1"),
        DBOSAwaitedWorkflowMaxRecoveryAttemptsExceeded("w1"),
        DBOSConflictingRegistrationError("name"),
        ConfigError("bad"),
        WorkflowNotRegisteredError("not a workflow", "w1"),
        WorkflowNotFoundError("w1"),
        StepRetriesExceededError("s", [RuntimeError("x"), RuntimeError("y")]),
        WorkflowConflictError("id taken", "w1"),
        DeterminismError("w1", 2, "a", "b"),
        QueueDeduplicatedError("w1", "q", "d"),
        WorkflowCancelledError("w1", "is CANCELLED; step 's' was not recorded"),
        MaxRecoveryAttemptsExceededError("w1", 4),
    ]


def _state(err: BaseException) -> tuple[Any, ...]:
    attrs = {k: v for k, v in vars(err).items() if k != "errors"}
    errors = [(type(e), str(e)) for e in getattr(err, "errors", [])]
    return type(err), str(err), err.args, getattr(err, "dbos_error_code", None), attrs, errors


@pytest.mark.parametrize("err", _samples(), ids=lambda e: type(e).__name__)
def test_errors_survive_pickling(err: BaseException) -> None:
    assert _state(pickle.loads(pickle.dumps(err))) == _state(err)
    assert _state(serialization.loads_error(serialization.dumps_error(err))) == _state(err)


# -- raised in the situations DBOS documents (SQLite and Postgres) ----------------------------------
def test_unknown_workflow_id_is_nonexistent_workflow(dbos: type[DBOS]) -> None:
    with pytest.raises(DBOSNonExistentWorkflowError) as info:
        DBOS.retrieve_workflow("nope")
    assert info.value.workflow_id == "nope" and isinstance(info.value, WorkflowNotFoundError)
    assert info.value.dbos_error_code == DBOSErrorCode.NonExistentWorkflowError.value
    with pytest.raises(DBOSNonExistentWorkflowError, match="'nowhere'"):
        DBOS.send("nowhere", "hello")


def test_id_reused_for_another_workflow_is_conflicting_workflow(dbos: type[DBOS]) -> None:
    @DBOS.workflow()
    def first() -> str:
        return "first"

    @DBOS.workflow()
    def second() -> str:
        return "second"

    with SetWorkflowID("shared"):
        assert first() == "first"
    with SetWorkflowID("shared"), pytest.raises(DBOSConflictingWorkflowError) as info:
        second()
    assert isinstance(info.value, WorkflowConflictError) and isinstance(info.value, Exception)
    assert not isinstance(info.value, DBOSWorkflowConflictIDError)
    assert info.value.dbos_error_code == DBOSErrorCode.ConflictingWorkflowError.value
    with SetWorkflowID("shared"):
        assert first() == "first"  # the same workflow again returns the first run's result


def test_second_active_deduplication_id_is_queue_deduplicated(dbos: type[DBOS]) -> None:
    queue = Queue("errors-dedup")

    @DBOS.workflow()
    def job(n: int) -> int:
        return n

    with SetEnqueueOptions(deduplication_id="once", delay_seconds=600):
        queue.enqueue(job, 1)
        with SetWorkflowID("dup"), pytest.raises(DBOSQueueDeduplicatedError) as info:
            queue.enqueue(job, 2)
    err = info.value
    assert (err.workflow_id, err.queue_name, err.deduplication_id) == ("dup", "errors-dedup", "once")
    assert isinstance(err, QueueDeduplicatedError) and err.dbos_error_code == 12
    assert DBOS.get_workflow_status("dup") is None  # nothing was enqueued


def test_exhausted_step_retries_are_max_step_retries_exceeded(dbos: type[DBOS]) -> None:
    attempts: list[int] = []

    @DBOS.step(retries_allowed=True, max_attempts=2, interval_seconds=0.01)
    def flaky() -> None:
        attempts.append(1)
        raise ConnectionError(f"attempt {len(attempts)}")

    @DBOS.workflow()
    def wf() -> None:
        flaky()

    with SetWorkflowID("retries"), pytest.raises(DBOSMaxStepRetriesExceeded) as info:
        wf()
    assert isinstance(info.value, StepRetriesExceededError) and info.value.max_retries == 2
    assert [str(e) for e in info.value.errors] == ["attempt 1", "attempt 2"]
    stored = DBOS.get_workflow_status("retries")  # the error read back from the system database
    assert stored is not None and stored.status == "ERROR"
    assert isinstance(stored.error, DBOSMaxStepRetriesExceeded)
    assert [type(e) for e in stored.error.errors] == [ConnectionError, ConnectionError]
    assert stored.error.dbos_error_code == DBOSErrorCode.MaxStepRetriesExceeded.value


def test_changed_step_on_replay_is_unexpected_step(dbos: type[DBOS]) -> None:
    calls = {"name": "before"}

    @DBOS.step(name="before")
    def before() -> int:
        return 1

    @DBOS.step(name="after")
    def after() -> int:
        return 2

    @DBOS.workflow()
    def wf() -> int:
        return before() if calls["name"] == "before" else after()

    with SetWorkflowID("replayed"):
        assert wf() == 1
    calls["name"] = "after"  # the code changed: position 1 now calls another step
    with SetWorkflowID("replayed-fork"):
        handle = DBOS.fork_workflow("replayed", start_step=2)  # reuses the recorded step 1
    with pytest.raises(DBOSUnexpectedStepError) as info:
        handle.get_result(timeout=T)
    err = info.value
    assert isinstance(err, DeterminismError)
    assert (err.workflow_id, err.step_id, err.recorded_name, err.expected_name) == (
        "replayed-fork",
        1,
        "before",
        "after",
    )
    stored = DBOS.get_workflow_status("replayed-fork")
    assert stored is not None and stored.status == "ERROR" and isinstance(stored.error, DBOSUnexpectedStepError)


def test_start_of_a_plain_function_is_workflow_function_not_found(dbos: type[DBOS]) -> None:
    def not_a_workflow() -> None:
        pass

    with pytest.raises(DBOSWorkflowFunctionNotFoundError, match="not a workflow") as info:
        DBOS.start_workflow(not_a_workflow)
    assert isinstance(info.value, WorkflowNotRegisteredError)
    assert info.value.dbos_error_code == DBOSErrorCode.WorkflowFunctionNotFound.value


def test_invalid_configuration_is_initialization_error() -> None:
    DBOS.destroy(destroy_registry=True)
    try:
        with pytest.raises(DBOSInitializationError, match="system_database_url") as info:
            DBOS(config={"name": "errors-app", "system_database_url": "mysql://nowhere/db"})
        assert isinstance(info.value, ConfigError) and isinstance(info.value, ValueError)
        assert info.value.dbos_error_code == DBOSErrorCode.InitializationError.value
    finally:
        DBOS.destroy(destroy_registry=True)


def test_dead_lettered_workflow_result_is_awaited_max_recovery_attempts(dbos: type[DBOS], store: Store) -> None:
    queue = Queue("errors-dlq")

    @DBOS.workflow()
    def job() -> None:
        pass

    with SetWorkflowID("dead"), SetEnqueueOptions(delay_seconds=600):
        queue.enqueue(job)
    # What recovery writes after too many attempts (a real crash loop is tests/crash's business).
    store.workflow_set_status("dead", "MAX_RECOVERY_ATTEMPTS_EXCEEDED", 1_700_000_000_000)
    with pytest.raises(DBOSAwaitedWorkflowMaxRecoveryAttemptsExceeded) as info:
        DBOS.retrieve_workflow("dead").get_result(timeout=T)
    assert isinstance(info.value, MaxRecoveryAttemptsExceededError) and info.value.workflow_id == "dead"


# -- cancellation ---------------------------------------------------------------------------------
class Blocker:
    """A step that blocks until released; records which workflows reached it."""

    def __init__(self) -> None:
        self.reached = threading.Event()
        self.release = threading.Event()

        @DBOS.step(name="errors.block")
        def block() -> str:
            self.reached.set()
            assert self.release.wait(T), "never released"
            return "released"

        self.block = block

    def cancel_while_blocked(self, workflow_id: str) -> None:
        assert self.reached.wait(T), "the step never started"
        DBOS.cancel_workflow(workflow_id)
        self.release.set()


def test_awaiting_a_cancelled_workflow_is_an_ordinary_exception(dbos: type[DBOS]) -> None:
    blocker = Blocker()

    @DBOS.workflow()
    def wf() -> str:
        return blocker.block()

    with SetWorkflowID("awaited"):
        handle = DBOS.start_workflow(wf)
    blocker.cancel_while_blocked("awaited")
    for get in (lambda: handle.get_result(timeout=T), lambda: DBOS.retrieve_workflow("awaited").get_result(timeout=T)):
        try:
            get()
        except Exception as exc:  # an ordinary Exception, as DBOS documents for the awaited error
            assert isinstance(exc, DBOSAwaitedWorkflowCancelledError) and exc.workflow_id == "awaited"
        else:
            raise AssertionError("get_result of a cancelled workflow returned")
    assert handle.get_status().status == "CANCELLED"


def test_cancellation_inside_the_workflow_is_dbos_workflow_cancelled_error(dbos: type[DBOS]) -> None:
    blocker = Blocker()
    seen: list[BaseException] = []

    @DBOS.step()
    def later() -> None:
        pass

    @DBOS.workflow()
    def wf() -> None:
        try:
            blocker.block()
            later()
        except DBOSWorkflowCancelledError as exc:  # what DBOS code writes to clean up, then re-raise
            seen.append(exc)
            raise

    with SetWorkflowID("inside"):
        handle = DBOS.start_workflow(wf)
    blocker.cancel_while_blocked("inside")
    with pytest.raises(WorkflowCancelledError):
        handle.get_result(timeout=T)
    assert len(seen) == 1 and seen[0].workflow_id == "inside"  # type: ignore[attr-defined]
    assert handle.get_status().status == "CANCELLED"
    steps = [s["function_name"] for s in DBOS.list_workflow_steps("inside")]
    assert steps == ["errors.block"]  # the step that ran to completion keeps its outcome; `later` never ran


def _swallowing_workflows(blocker: Blocker, ran: list[str]) -> tuple[Any, Any]:
    @DBOS.step()
    def after_step() -> None:
        ran.append("after_step")

    @DBOS.workflow()
    def swallowing() -> str:
        try:
            blocker.block()
        except Exception:  # user code that swallows everything around a step
            ran.append("swallowed")
        ran.append("after")
        after_step()
        return "finished"

    @DBOS.step()
    async def block_async() -> str:
        return await asyncio.to_thread(blocker.block)

    @DBOS.workflow()
    async def swallowing_async() -> str:
        try:
            await block_async()
        except Exception:
            ran.append("swallowed")
        ran.append("after")
        after_step()
        return "finished"

    return swallowing, swallowing_async


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_cancel_during_a_swallowed_step_still_ends_cancelled(dbos: type[DBOS], flavour: str) -> None:
    """Whatever the body's ``except Exception`` does, the workflow ends CANCELLED and no later
    step runs."""
    blocker, ran = Blocker(), list[str]()
    swallowing, swallowing_async = _swallowing_workflows(blocker, ran)
    wid = f"swallow-{flavour}"
    with SetWorkflowID(wid):
        handle = DBOS.start_workflow(swallowing if flavour == "sync" else swallowing_async)
    blocker.cancel_while_blocked(wid)
    with pytest.raises(WorkflowCancelledError):
        handle.get_result(timeout=T)
    wait_until(lambda: handle.get_status().status == "CANCELLED", T, what="status CANCELLED")
    assert "after_step" not in ran
    steps = [s["function_name"] for s in DBOS.list_workflow_steps(wid)]
    assert len(steps) == 1 and "after_step" not in steps[0]  # only the blocked step's kept outcome


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_cancellation_escapes_except_exception(dbos: type[DBOS], flavour: str) -> None:
    blocker, ran = Blocker(), list[str]()
    swallowing, swallowing_async = _swallowing_workflows(blocker, ran)
    wid = f"escape-{flavour}"
    with SetWorkflowID(wid):
        handle = DBOS.start_workflow(swallowing if flavour == "sync" else swallowing_async)
    blocker.cancel_while_blocked(wid)
    with pytest.raises(BaseException) as info:  # whatever the engine raises: checked below
        handle.get_result(timeout=T)
    assert handle.get_status().status == "CANCELLED"
    assert ran == []  # nothing after the cancelled step ran
    # ... and waiting for it is still the ordinary awaited error, as in DBOS.
    assert isinstance(info.value, Exception) and isinstance(info.value, DBOSAwaitedWorkflowCancelledError)


def test_a_workflow_may_catch_its_cancelled_child_as_the_awaited_error(dbos: type[DBOS]) -> None:
    blocker = Blocker()

    @DBOS.workflow()
    def child() -> str:
        return blocker.block()

    @DBOS.workflow()
    def parent() -> str:
        handle = DBOS.start_workflow(child)
        try:
            return handle.get_result()
        except DBOSAwaitedWorkflowCancelledError as exc:
            return f"child {exc.workflow_id} was cancelled"

    with SetWorkflowID("catching-parent"):
        handle = DBOS.start_workflow(parent)
    blocker.cancel_while_blocked("catching-parent-1")  # the child only
    assert handle.get_result(timeout=T) == "child catching-parent-1 was cancelled"
    assert handle.get_status().status == "SUCCESS"


def test_an_uncaught_cancelled_child_fails_its_parent(dbos: type[DBOS]) -> None:
    blocker, runs = Blocker(), list[int]()

    @DBOS.workflow()
    def child() -> str:
        return blocker.block()

    @DBOS.workflow(max_recovery_attempts=2)
    def parent() -> str:
        runs.append(1)
        return DBOS.start_workflow(child).get_result()

    with SetWorkflowID("failing-parent"):
        handle = DBOS.start_workflow(parent)
    blocker.cancel_while_blocked("failing-parent-1")
    with pytest.raises(DBOSAwaitedWorkflowCancelledError):
        handle.get_result(timeout=T)
    assert (handle.get_status().status, len(runs)) == ("ERROR", 1)  # as in DBOS: the parent fails, once


def test_registering_a_name_twice_is_conflicting_registration(dbos: type[DBOS]) -> None:
    @DBOS.workflow(name="errors.twice")
    def one() -> None:
        pass

    with pytest.raises(DBOSConflictingRegistrationError):

        @DBOS.workflow(name="errors.twice")
        def two() -> None:
            pass
