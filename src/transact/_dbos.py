"""The ``DBOS`` facade: decorators and classmethods, each a short delegation to the engine."""

from __future__ import annotations

import functools
import hashlib
import inspect
import logging
import threading
from collections.abc import Callable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, cast, overload

from transact._config import DBOSConfig, check_dbos_arguments, load_settings
from transact._facade._base import FacadeBase
from transact._facade.admin import AdminFacade
from transact._facade.auth import AuthFacade
from transact._facade.comms import CommsFacade
from transact._facade.drain import DrainFacade
from transact._facade.kafka import KafkaFacade
from transact._facade.outbox import OutboxFacade
from transact._facade.queues import QueueFacade
from transact._facade.schedule import ScheduleFacade
from transact._facade.steps import StepFacade, step_status
from transact._facade.targets import resolve
from transact._facade.transfer import TransferFacade
from transact._facade.txn import TxnFacade
from transact._facade.versions import VersionsFacade
from transact._facade.waits import WaitFacade
from transact._handles import WorkflowHandle, WorkflowHandleAsync
from transact.engine import auth, serialization, services, tracing, versions
from transact.engine import workflow as wf
from transact.engine.context import current_step, current_workflow
from transact.engine.recovery import stranded_workflows
from transact.engine.registry import REGISTRY, WorkflowInfo, takes_target
from transact.engine.runtime import Runtime
from transact.engine.serializers import is_portable_type
from transact.engine.status import to_status
from transact.engine.transaction import current_session
from transact.errors import ConfigError, WorkflowNotFoundError
from transact.models import StepStatus, WorkflowStatus

if TYPE_CHECKING:
    from types import ModuleType

    from fastapi import FastAPI
    from flask import Flask
    from opentelemetry.trace import Span, Tracer
    from sqlalchemy.orm import Session

P = ParamSpec("P")
R = TypeVar("R")

DEFAULT_MAX_RECOVERY_ATTEMPTS = 100
_lock = threading.Lock()


def _otel() -> ModuleType:
    from transact.integrations import otel  # the optional `otel` extra: an ImportError naming it

    return otel


class _DBOSMeta(type):
    """Class-level properties, so ``DBOS.workflow_id`` reads the running workflow's id."""

    @property
    def workflow_id(cls) -> str | None:
        ctx = current_workflow.get()
        return ctx.workflow_id if ctx is not None else None

    @property
    def step_id(cls) -> int | None:
        return current_step.get()

    @property
    def step_status(cls) -> StepStatus | None:
        """The running step's position and, with retries, its attempt; None outside a step."""
        return step_status()

    @property
    def config(cls) -> dict[str, Any]:
        return dict(FacadeBase._instance()._config)

    @property
    def authenticated_user(cls) -> str | None:
        """The user the running code is authenticated as (``DBOSContextSetAuth``; inside a workflow,
        the user who started it); None without authentication."""
        current = auth.current()
        return current.user if current is not None else None

    @property
    def authenticated_roles(cls) -> list[str] | None:
        current = auth.current()
        return list(current.roles) if current is not None and current.roles is not None else None

    @property
    def assumed_role(cls) -> str | None:
        """The role the running protected function (``@DBOS.required_roles``) was granted."""
        current = auth.current()
        return current.assumed_role if current is not None else None

    @property
    def span(cls) -> Span:
        """The OpenTelemetry span current here: the running step's, else the workflow's (needs the
        `otel` extra; a non-recording span when nothing is traced)."""
        span: Span = _otel().current_span()
        return span

    @property
    def tracer(cls) -> Tracer:
        """The OpenTelemetry tracer transact's spans come from, for the application's own spans."""
        tracer: Tracer = _otel().tracer()
        return tracer

    @property
    def sql_session(cls) -> Session:
        """The running @DBOS.transaction's SQLAlchemy session; a clear error outside one."""
        return current_session()


class DBOS(
    StepFacade,
    CommsFacade,
    AdminFacade,
    ScheduleFacade,
    TxnFacade,
    KafkaFacade,
    WaitFacade,
    AuthFacade,
    QueueFacade,
    OutboxFacade,
    TransferFacade,
    DrainFacade,
    VersionsFacade,
    metaclass=_DBOSMeta,
):
    """The process-wide Transact instance. Construct once with a config, then ``launch()``."""

    logger = logging.getLogger("transact")

    def __init__(
        self,
        *,
        config: DBOSConfig | Mapping[str, Any] | None = None,
        fastapi: FastAPI | None = None,
        flask: Flask | None = None,
        conductor_url: str | None = None,
        conductor_key: str | None = None,
    ) -> None:
        """``conductor_url`` / ``conductor_key`` are accepted as DBOS accepts them and have no
        effect here (transact does not connect to DBOS Conductor): a warning says so."""
        settings = load_settings(config)
        check_dbos_arguments(conductor_url=conductor_url, conductor_key=conductor_key)
        with _lock:
            previous = FacadeBase._current
            if previous is not None and previous._runtime.launched:
                raise ConfigError("a DBOS instance is already launched in this process; call DBOS.destroy() first")
            self._config = dict(config or {})
            serialization.install(self._config.get("serializer"))  # every stored value is written with it
            self._settings = settings
            self._runtime = Runtime(settings, REGISTRY)
            FacadeBase._set_current(self)
        if fastapi is not None or flask is not None:
            from transact.integrations import web  # only when an app is given: the optional `web` extra

            if fastapi is not None:
                web.setup_fastapi(fastapi, launch=type(self).launch)
            if flask is not None:
                web.setup_flask(flask)

    # -- lifecycle ----------------------------------------------------------------------------
    @classmethod
    def launch(cls) -> None:
        rt = cls._instance()._runtime
        if rt.launched:
            return
        if rt.app_version is None:
            rt.app_version = _code_version()
        extra: list[services.ServiceFactory] = [versions.service_for]
        if REGISTRY.kafka_consumers:
            from transact.integrations import kafka  # only when a consumer is declared: an optional extra

            extra.append(kafka.service_for)
        if rt.settings.console_port is not None:
            from transact.console import server as console  # the web console (config console_port)

            extra.append(console.service_for)
        logging.getLogger("transact").addFilter(tracing.LOG_FILTER)  # workflow id and step on DBOS.logger records
        otlp = rt.settings.otlp
        if otlp is not None:
            from transact.integrations import otel  # only when enable_otlp is set: the optional `otel` extra

            otel.install(
                rt,
                traces_endpoints=otlp.traces_endpoints,
                logs_endpoints=otlp.logs_endpoints,
                attributes=dict(otlp.attributes),
            )
        rt.launch(services.build(rt, on_sigterm=cls.destroy, extra=extra))

    @classmethod
    def destroy(cls, workflow_completion_timeout_sec: float | None = None, destroy_registry: bool = False) -> None:
        """Stop this process's instance: wait up to ``workflow_completion_timeout_sec`` (default:
        config ``shutdown_timeout_seconds``) for running work, hand the rest over, close the
        database. ``destroy_registry`` also forgets every decorated function (tests). Positional
        in DBOS's documented order."""
        if workflow_completion_timeout_sec is not None and (
            isinstance(workflow_completion_timeout_sec, bool)
            or not isinstance(workflow_completion_timeout_sec, int | float)
            or workflow_completion_timeout_sec < 0
        ):
            raise ConfigError(
                "DBOS.destroy: workflow_completion_timeout_sec must be a number of seconds >= 0, got "
                f"{workflow_completion_timeout_sec!r} (to clear the registry, pass destroy_registry=True)"
            )
        dbos = FacadeBase._current
        if dbos is not None:
            rt = dbos._runtime
            if workflow_completion_timeout_sec is not None:
                rt.shutdown_timeout_s = workflow_completion_timeout_sec
            if rt.launched:
                rt.destroy()
                tracing.disable()
            rt.store.close()
            FacadeBase._set_current(None)
            serialization.install(None)
        if destroy_registry:
            REGISTRY.clear()

    @classmethod
    def reset_system_database(cls) -> None:
        """Drop every Transact table of the configured system database (tests; never in production)."""
        rt = cls._instance()._runtime
        if rt.launched:
            raise ConfigError("reset_system_database() must be called before DBOS.launch()")
        rt.store.reset()

    # -- decorators ---------------------------------------------------------------------------
    @overload
    @classmethod
    def workflow(cls, func: Callable[P, R], /) -> Callable[P, R]: ...

    @overload
    @classmethod
    def workflow(
        cls,
        *,
        name: str | None = None,
        max_recovery_attempts: int | None = DEFAULT_MAX_RECOVERY_ATTEMPTS,
        serialization_type: Any = None,
    ) -> Callable[[Callable[P, R]], Callable[P, R]]: ...

    @classmethod  # type: ignore[misc]
    def workflow(
        cls,
        func: Callable[P, R] | None = None,
        /,
        *,
        name: str | None = None,
        max_recovery_attempts: int | None = DEFAULT_MAX_RECOVERY_ATTEMPTS,
        serialization_type: Any = None,
    ) -> Any:
        portable = is_portable_type(serialization_type, "@DBOS.workflow")
        if max_recovery_attempts is not None and (
            not isinstance(max_recovery_attempts, int) or max_recovery_attempts < 0
        ):
            raise ConfigError(
                f"@DBOS.workflow max_recovery_attempts must be an int >= 0, got {max_recovery_attempts!r}"
            )

        def decorate(fn: Callable[P, R]) -> Callable[P, R]:
            if not callable(fn):
                raise ConfigError(f"@DBOS.workflow must decorate a function, got {fn!r}")
            info = WorkflowInfo(
                name=name or fn.__qualname__,
                func=fn,
                is_async=inspect.iscoroutinefunction(fn),
                max_recovery_attempts=max_recovery_attempts if max_recovery_attempts is not None else 1 << 30,
                takes_target=takes_target(fn),
                portable=portable,
            )
            REGISTRY.add_workflow(info)
            if info.is_async:

                @functools.wraps(fn)
                async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                    return await wf.invoke_async(cls._rt(), info, args, kwargs)

                wrapper: Any = async_wrapper
            else:

                @functools.wraps(fn)
                def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
                    return wf.invoke(cls._rt(), info, args, kwargs)

                wrapper = sync_wrapper
            wrapper.__transact_workflow__ = info
            info.wrapper = wrapper
            return cast(Callable[P, R], wrapper)

        return decorate(func) if func is not None else decorate

    # -- starting and finding workflows -------------------------------------------------------
    @classmethod
    def start_workflow(cls, func: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> WorkflowHandle[R]:
        rt = cls._rt()
        info, call_args = resolve(func, args)
        wid = wf.start(rt, info, call_args, kwargs)
        return WorkflowHandle(rt, wid, rt.runs.future(wid))

    @classmethod
    async def start_workflow_async(
        cls, func: Callable[P, Coroutine[Any, Any, R]] | Callable[P, R], *args: P.args, **kwargs: P.kwargs
    ) -> WorkflowHandleAsync[R]:
        rt = cls._rt()
        info, call_args = resolve(func, args)
        wid = await wf.start_async(rt, info, call_args, kwargs)
        return WorkflowHandleAsync(rt, wid)

    @classmethod
    def retrieve_workflow(cls, workflow_id: str, existing_workflow: bool = True) -> WorkflowHandle[Any]:
        rt = cls._rt()
        if existing_workflow and rt.store.workflow_get(workflow_id) is None:
            raise WorkflowNotFoundError(workflow_id)
        return WorkflowHandle(rt, workflow_id)

    @classmethod
    async def retrieve_workflow_async(
        cls, workflow_id: str, existing_workflow: bool = True
    ) -> WorkflowHandleAsync[Any]:
        rt = cls._rt()
        if existing_workflow and await rt.aio(rt.store.workflow_get, workflow_id) is None:
            raise WorkflowNotFoundError(workflow_id)
        return WorkflowHandleAsync(rt, workflow_id)

    @classmethod
    def get_result(cls, workflow_id: str, *, polling_interval_sec: float | None = None) -> Any:
        """Wait for the workflow's result (its error is raised). Completions are pushed, so
        ``polling_interval_sec`` is accepted for compatibility and needs no tuning."""
        return cls._rt().await_result(workflow_id)

    @classmethod
    async def get_result_async(cls, workflow_id: str, *, polling_interval_sec: float | None = None) -> Any:
        return await cls._rt().await_result_async(workflow_id)

    @classmethod
    def get_workflow_status(cls, workflow_id: str) -> WorkflowStatus | None:
        row = cls._rt().store.workflow_get(workflow_id)
        return to_status(row) if row is not None else None

    @classmethod
    def list_stranded_workflows(cls, limit: int = 1000) -> list[WorkflowStatus]:
        """PENDING workflows whose owner is gone and that no live process can run (their workflow is
        registered nowhere alive). Resume them after deploying code that has them, fork or delete them."""
        rt = cls._rt()
        rows = stranded_workflows(rt.store, lease_seconds=rt.settings.lease_seconds, hostname=rt.hostname, limit=limit)
        return [to_status(row, load_output=False) for row in rows]


def _code_version() -> str:
    """Default app version: a hash of the registered workflows' source (informative unless pinned).
    Steps that may run on their own are registered as workflows too; they do not count here."""
    digest = hashlib.sha256()
    for name in sorted(REGISTRY.workflows):
        info = REGISTRY.workflows[name]
        if info.step:
            continue
        func = info.func
        try:
            digest.update(inspect.getsource(func).encode())
        except (OSError, TypeError):
            digest.update(name.encode())
    return digest.hexdigest()[:16]
