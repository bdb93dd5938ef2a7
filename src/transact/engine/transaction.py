"""@DBOS.transaction: run a function in one application-database transaction, exactly once per step.

Inside a workflow a transaction is a step. Its outcome row commits in the same transaction as the
user's writes (storage/app_outcomes.py); after the commit the step is checkpointed in the system
database. Replay reads the system checkpoint first, then the outcome row (a crash may fall between
the two commits), and runs the function only when neither exists. Must not import the facade.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from transact._lib.backoff import Backoff
from transact.engine import serialization, tracing
from transact.engine import step as step_mod
from transact.engine.clock import now_ms
from transact.engine.context import WorkflowContext, current_step
from transact.engine.runtime import Runtime
from transact.errors import (
    ConfigError,
    DatabaseUnavailableError,
    DBOSWorkflowCancelledError,
    DeterminismError,
    NotInWorkflowError,
)
from transact.storage import Unavailable
from transact.storage.rows import StepRow

if TYPE_CHECKING:
    from sqlalchemy import Connection
    from sqlalchemy.orm import Session

    from transact.storage.app_outcomes import AppDatabase, AppOutcome

log = logging.getLogger("transact")

ISOLATION_LEVELS = ("SERIALIZABLE", "REPEATABLE READ", "READ COMMITTED")
_open_lock = threading.Lock()

SessionVar = contextvars.ContextVar["Session | None"]
_session: SessionVar = contextvars.ContextVar("transact_sql_session", default=None)


def validate_isolation_level(level: object) -> str:
    if not isinstance(level, str) or level.upper() not in ISOLATION_LEVELS:
        raise ConfigError(
            f"@DBOS.transaction isolation_level must be one of {', '.join(map(repr, ISOLATION_LEVELS))}, got {level!r}"
        )
    return level.upper()


def current_session() -> Session:
    """The running transaction's SQLAlchemy session (``DBOS.sql_session``)."""
    session = _session.get()
    if session is None:
        raise NotInWorkflowError(
            "DBOS.sql_session is only available inside a function decorated with @DBOS.transaction(); "
            "call such a function to get a session on the application database"
        )
    return session


# -- the application database, opened at launch ---------------------------------------------------
def app_database(rt: Runtime, name: str = "") -> AppDatabase:
    """The runtime's application database, opened and migrated on first use (normally at launch)."""
    app = rt.app_db
    if app is not None:
        return app
    url = rt.settings.application_database_url
    if url is None:
        what = f"@DBOS.transaction {name!r}" if name else "@DBOS.transaction"
        raise ConfigError(
            f"{what} needs an application database: set config key 'application_database_url' "
            "(for example 'postgresql://user:password@host:5432/app' or 'sqlite:///app.sqlite')"
        )
    with _open_lock:
        app = rt.app_db
        if app is None:
            app = rt.app_db = _open(rt, url)
    return app


def _open(rt: Runtime, url: str) -> AppDatabase:
    from transact.storage.app_outcomes import AppDatabase, redact

    app = AppDatabase(url, pool_size=rt.settings.pool_size)
    try:
        found = app.migrate(retry_timeout_s=rt.settings.retry_timeout_s, create=rt.settings.run_migrations)
    except Unavailable as exc:
        app.close()
        raise DatabaseUnavailableError(
            f"cannot prepare the application database {redact(app.url)} (config key 'application_database_url'): {exc}"
        ) from exc
    if not found:
        app.close()
        raise ConfigError(
            f"run_migrations is False and the application database {redact(app.url)} has no table "
            f"{app.table.fullname!r} for transaction outcomes: create it once with run_migrations=True "
            "once (launch with it, then turn it off)"
        )
    return app


class _AppDatabaseService:
    def __init__(self, app: AppDatabase) -> None:
        self.app = app

    def start(self) -> None:
        pass  # opened and migrated by the factory, before recovery can resume any workflow

    def stop(self) -> None:
        self.app.close()


def open_app_database(rt: Runtime) -> _AppDatabaseService | None:
    """Open and migrate the application database now, when one is configured: the service list is
    built before recovery starts (which resumes workflows at once), so the outcome table exists
    before any resumed workflow reaches a transaction."""
    if rt.settings.application_database_url is None:
        return None
    return _AppDatabaseService(app_database(rt))


# -- running a transaction ------------------------------------------------------------------------
def run_transaction(
    rt: Runtime, name: str, fn: Callable[..., Any], isolation_level: str, args: Any, kwargs: Any
) -> Any:
    if _session.get() is not None:
        return fn(*args, **kwargs)  # a transaction called from a transaction joins it
    return run_in(app_database(rt, name), _session, name, fn, isolation_level, args, kwargs)


def run_in(
    app: AppDatabase,
    session_var: SessionVar,
    name: str,
    fn: Callable[..., Any],
    isolation_level: str,
    args: Any,
    kwargs: Any,
) -> Any:
    """Run ``fn`` as one transaction of ``app`` with its session in ``session_var``: inside a
    workflow a step taking effect exactly once, outside one a plain transaction. A call made while
    ``session_var`` holds a session joins that transaction."""
    if session_var.get() is not None:
        return fn(*args, **kwargs)
    begun = step_mod.begin(name)  # the next position, its recorded outcome, the cancel check
    with tracing.operation_if_on("transaction", name, step_mod.position(begun)):
        if begun is None:
            return _plain(app, session_var, name, fn, isolation_level, args, kwargs)
        ctx, function_id, recorded = begun
        if recorded is not None:
            return step_mod.result(recorded)
        started = now_ms()
        token = current_step.set(function_id)
        try:
            outcome, raised = _durable(app, session_var, ctx, function_id, name, fn, isolation_level, args, kwargs)
        finally:
            current_step.reset(token)
        return finish(ctx, function_id, name, outcome, raised, started)


def finish(
    ctx: WorkflowContext, function_id: int, name: str, outcome: AppOutcome, raised: BaseException | None, started: int
) -> Any:
    """Checkpoint the committed outcome in the system database; return or raise it."""
    row = step_row(ctx, function_id, name, outcome, started)
    return settle(step_mod.record(ctx, row), row, raised)


def settle(stored: StepRow, row: StepRow, raised: BaseException | None) -> Any:
    """A duplicate runner may have recorded first: its row counts. Our own error is raised as the
    original exception, with its traceback."""
    if stored is row and raised is not None:
        raise raised
    return step_mod.result(stored)


def step_row(ctx: WorkflowContext, function_id: int, name: str, outcome: AppOutcome, started: int) -> StepRow:
    return StepRow(
        workflow_id=ctx.workflow_id,
        function_id=function_id,
        function_name=name,
        output=outcome.output,
        error=outcome.error,
        started_at=started,
        completed_at=now_ms(),
    )


def _call(conn: Connection, session_var: SessionVar, fn: Callable[..., Any], args: Any, kwargs: Any) -> Any:
    from sqlalchemy.orm import Session

    # Bound to our connection inside our transaction, the session only joins it: a session.commit()
    # in user code flushes but cannot commit early, so the outcome row always commits with the writes.
    session = Session(bind=conn, expire_on_commit=False)
    token = session_var.set(session)
    try:
        value = fn(*args, **kwargs)
        session.flush()
        return value
    finally:
        session_var.reset(token)
        session.close()


def _plain(
    app: AppDatabase, session_var: SessionVar, name: str, fn: Callable[..., Any], level: str, args: Any, kwargs: Any
) -> Any:
    """Outside a workflow: one transaction, run again after a conflict (it was rolled back) or after
    an outage before COMMIT was sent. An outage during COMMIT is raised: without an outcome row, a
    commit that may have happened must not be repeated."""
    from transact.storage.app_outcomes import classify

    backoff = Pause(name)
    while True:
        committing = False
        try:
            with app.transaction(level) as conn:
                value = _call(conn, session_var, fn, args, kwargs)
                committing = True
            return value
        except Exception as exc:
            kind = classify(exc)
            if kind is None or (kind == "outage" and committing):
                raise
            backoff.pause(None, exc)


class AlreadyRecorded(Exception):
    """Raised inside the transaction to roll back a run whose outcome is already recorded."""


def _durable(
    app: AppDatabase,
    session_var: SessionVar,
    ctx: WorkflowContext,
    function_id: int,
    name: str,
    fn: Callable[..., Any],
    level: str,
    args: Any,
    kwargs: Any,
) -> tuple[AppOutcome, BaseException | None]:
    """Run until an outcome is committed (or found). Returns it, with the user's exception if this
    call raised one."""
    from transact.storage.app_outcomes import AppOutcome, classify

    wid = ctx.workflow_id
    # A resumed workflow may have committed the step right after its recorded ones just before the
    # crash: read that outcome row first rather than run the function again. Every other run skips
    # the read (the bookkeeping stays one row write); the primary key still catches any duplicate
    # at insert, e.g. when the crash came before the workflow's first checkpoint.
    check_first = ctx.resumed and function_id == max(ctx.recorded, default=0) + 1
    backoff = Pause(name)
    while True:
        try:
            with app.transaction(level) as conn:
                if check_first:
                    found = app.outcome_get(conn, workflow_id=wid, function_id=function_id)
                    if found is not None:
                        return checked(found, ctx, function_id, name), None
                value = _call(conn, session_var, fn, args, kwargs)
                output = serialization.dumps(value, what=f"the output of transaction {name!r}")
                if not app.outcome_insert(
                    conn,
                    workflow_id=wid,
                    function_id=function_id,
                    function_name=name,
                    output=output,
                    error=None,
                    now=now_ms(),
                ):
                    raise AlreadyRecorded
            return AppOutcome(name, output, None), None
        except AlreadyRecorded:
            check_first = True  # read it in the next attempt's transaction
            continue
        except DeterminismError:
            raise
        except Exception as exc:
            kind = classify(exc)
            if kind is None:
                return _record_error(app, ctx, function_id, name, exc)
            if kind == "outage":
                check_first = True  # the commit may have happened before the connection failed
            backoff.pause(ctx, exc)


def _record_error(
    app: AppDatabase, ctx: WorkflowContext, function_id: int, name: str, error: BaseException
) -> tuple[AppOutcome, BaseException | None]:
    """The user's writes were rolled back; pin the error so every replay raises it too. If an
    outcome was recorded earlier (this run failed because the first one committed), that one wins
    and the error is dropped."""
    from transact.storage.app_outcomes import AppOutcome, classify

    data = serialization.dumps_error(error)
    backoff = Pause(name)
    while True:
        try:
            found = app.outcome_record(
                workflow_id=ctx.workflow_id, function_id=function_id, function_name=name, error=data, now=now_ms()
            )
        except Exception as exc:
            if classify(exc) is None:
                raise
            backoff.pause(ctx, exc)
            continue
        if found is None:
            return AppOutcome(name, None, data), error
        return checked(found, ctx, function_id, name), None


def checked(found: AppOutcome, ctx: WorkflowContext, function_id: int, name: str) -> AppOutcome:
    if found.function_name != name:
        raise DeterminismError(ctx.workflow_id, function_id, found.function_name, name)
    return found


class Pause:
    """The pause between runs of a rolled-back transaction: jittered, capped, and inside a workflow
    cut short by its cancellation."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.pacing = Backoff(initial=0.005, cap=0.5)

    def note(self, exc: BaseException) -> None:
        """Log the 10th, 100th and every 500th retry."""
        attempt = self.pacing.attempts + 1
        if attempt in (10, 100) or attempt % 500 == 0:
            log.warning("transaction %r retried %d times (last: %s)", self.name, attempt, exc)

    def pause(self, ctx: WorkflowContext | None, exc: BaseException) -> None:
        pacing = self.pacing
        pacing.cancel = ctx.cancelled if ctx is not None else None
        self.note(exc)
        if not pacing.wait() and ctx is not None:
            raise DBOSWorkflowCancelledError.of(ctx.workflow_id) from exc
        if ctx is not None:
            ctx.check_cancelled()
