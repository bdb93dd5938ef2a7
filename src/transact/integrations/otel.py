"""OpenTelemetry traces and log export (the optional extra ``transact[otel]``).

``install`` runs at launch when the config sets ``enable_otlp``. It never replaces a tracer or
logger provider the application set: it adds one (exporting to ``otlp_traces_endpoints`` /
``otlp_logs_endpoints``, with ``otlp_attributes`` on the resource) only when there is none, then
enables the engine's tracing hooks (``transact.engine.tracing``).

Spans: one per workflow run (named after the workflow), one per step, transaction and
communication call under it. A new workflow's row stores the W3C trace context current where it
was started or enqueued, so its run continues that trace in any process, later; a resumed run
(recovery, a re-run after a crash) starts a new trace linked to the stored one.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any

try:
    from opentelemetry import context as otel_context
    from opentelemetry import propagate, trace
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "tracing needs OpenTelemetry: pip install 'transact[otel]' (or set enable_otlp to False)"
    ) from exc

from transact.engine import comms, tracing
from transact.engine.context import WorkflowContext, current_workflow
from transact.integrations._otel_light import LightSpans

if TYPE_CHECKING:
    from transact.engine.runtime import Runtime
    from transact.storage.rows import WorkflowRow

log = logging.getLogger("transact")

TRACER_NAME = "transact"

# Span attribute names: DBOS's where its traces define one, ``transact.*`` for the rest.
WORKFLOW_ID = "operationUUID"
OPERATION_TYPE = "operationType"
OPERATION_NAME = "operationName"
APPLICATION_ID = "applicationID"
APPLICATION_VERSION = "applicationVersion"
EXECUTOR_ID = "executorID"
AUTHENTICATED_USER = "authenticatedUser"
STEP_ID = "functionID"
QUEUE_NAME = "queueName"
RECOVERY_ATTEMPTS = "recoveryAttempts"
REPLAYED = "transact.replayed"
RESUMED = "transact.resumed"

# The engine's communication functions traced, and their span names.
_COMMS_SPANS = {
    "send": "DBOS.send",
    "send_async": "DBOS.send",
    "send_bulk": "DBOS.sendBulk",
    "send_bulk_async": "DBOS.sendBulk",
    "recv": "DBOS.recv",
    "recv_async": "DBOS.recv",
    "sleep": "DBOS.sleep",
    "sleep_async": "DBOS.sleep",
    "set_event": "DBOS.setEvent",
    "set_event_async": "DBOS.setEvent",
    "get_event": "DBOS.getEvent",
    "get_event_async": "DBOS.getEvent",
    "write_stream": "DBOS.writeStream",
    "write_stream_async": "DBOS.writeStream",
}


def _extract(stored: str | None) -> otel_context.Context | None:
    if not stored:
        return None
    try:
        headers = json.loads(stored)
    except ValueError:
        return None
    if not isinstance(headers, dict):
        return None
    found = propagate.extract(headers, context=otel_context.Context())
    return found if trace.get_current_span(found).get_span_context().is_valid else None


class _OperationSpan:
    """The span of one step, transaction or communication call, current while it runs.

    What ``trace.use_span`` does, without its two generator-based context managers: this runs
    once per traced step, where they cost about as much as the span itself."""

    __slots__ = ("_span", "_token")

    def __init__(self, span: trace.Span) -> None:
        self._span = span
        self._token: object = None

    def __enter__(self) -> trace.Span:
        self._token = otel_context.attach(trace.set_span_in_context(self._span))
        return self._span

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: Any) -> None:
        try:
            if ev is not None and isinstance(ev, Exception):
                self._span.record_exception(ev)
                self._span.set_status(trace.Status(trace.StatusCode.ERROR, f"{type(ev).__name__}: {ev}"))
        finally:
            otel_context.detach(self._token)  # type: ignore[arg-type]
            self._span.end()


class _Backend:
    def __init__(self, rt: Runtime, tracer: trace.Tracer) -> None:
        self._rt = rt
        self._tracer = tracer
        # The SDK's tracer: operation spans take the light path (see _otel_light).
        self._light = LightSpans(tracer, TRACER_NAME) if LightSpans.supports(tracer) else None  # type: ignore[arg-type]
        self._unwrapped: dict[str, Callable[..., Any]] = {}
        self._version = {APPLICATION_VERSION: rt.app_version} if rt.app_version is not None else {}

    @contextmanager
    def workflow(self, ctx: WorkflowContext, row: WorkflowRow | None) -> Iterator[trace.Span]:
        stored = _extract(row.trace_context if row is not None else None)
        links: list[trace.Link] = []
        parent = stored
        if stored is not None and ctx.resumed:  # a new trace, linked to the one that started it
            links.append(trace.Link(trace.get_current_span(stored).get_span_context()))
            parent = otel_context.Context()
        rt = self._rt
        attributes: dict[str, Any] = {
            WORKFLOW_ID: ctx.workflow_id,
            OPERATION_TYPE: "workflow",
            OPERATION_NAME: ctx.name,
            APPLICATION_ID: rt.settings.name,
            EXECUTOR_ID: rt.executor_id,
            RESUMED: ctx.resumed,
        }
        if rt.app_version is not None:
            attributes[APPLICATION_VERSION] = rt.app_version
        if row is not None:
            attributes[RECOVERY_ATTEMPTS] = row.recovery_attempts
            if row.queue_name is not None:
                attributes[QUEUE_NAME] = row.queue_name
            if row.authenticated_user is not None:
                attributes[AUTHENTICATED_USER] = row.authenticated_user
        span = self._tracer.start_span(ctx.name, context=parent, links=links, attributes=attributes)
        with trace.use_span(span, end_on_exit=True, record_exception=True, set_status_on_exception=True):
            yield span

    def operation(
        self, kind: str, name: str, position: tuple[WorkflowContext, int, bool] | None = None
    ) -> AbstractContextManager[trace.Span]:
        attributes: dict[str, Any]
        if position is None:
            attributes = {OPERATION_TYPE: kind, OPERATION_NAME: name}
        else:
            ctx, function_id, replayed = position
            attributes = {
                OPERATION_TYPE: kind,
                OPERATION_NAME: name,
                WORKFLOW_ID: ctx.workflow_id,
                STEP_ID: function_id,
                REPLAYED: replayed,
                EXECUTOR_ID: self._rt.executor_id,
                **self._version,
            }
        if self._light is not None:
            return self._light.start(name, attributes)
        return _OperationSpan(self._tracer.start_span(name, attributes=attributes))

    def carrier(self) -> str | None:
        return tracing.inject_current()

    def close(self) -> None:
        for attr, original in self._unwrapped.items():
            setattr(comms, attr, original)
        self._unwrapped.clear()

    def wrap_comms(self) -> None:
        """Trace communication calls by wrapping the engine's functions while tracing is on (the
        facade looks them up on the module at each call), so comms.py carries no hook."""
        for attr, span_name in _COMMS_SPANS.items():
            original = getattr(comms, attr, None)
            if original is None or attr in self._unwrapped:
                continue
            self._unwrapped[attr] = original
            setattr(comms, attr, self._traced(span_name, original))

    def _traced(self, span_name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        operation = self.operation
        if inspect.iscoroutinefunction(original):

            @functools.wraps(original)
            async def traced_async(*args: Any, **kwargs: Any) -> Any:
                if current_workflow.get() is None:
                    return await original(*args, **kwargs)
                with operation("communication", span_name):
                    return await original(*args, **kwargs)

            return traced_async

        @functools.wraps(original)
        def traced(*args: Any, **kwargs: Any) -> Any:
            if current_workflow.get() is None:
                return original(*args, **kwargs)
            with operation("communication", span_name):
                return original(*args, **kwargs)

        return traced


def _has_tracer_provider() -> bool:
    return not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)


def _resource(app_name: str, attributes: Mapping[str, str]) -> Any:
    from opentelemetry.sdk.resources import Resource

    return Resource.create({"service.name": app_name, **attributes})


def _install_tracer_provider(app_name: str, endpoints: Sequence[str], attributes: Mapping[str, str]) -> None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=_resource(app_name, attributes))
    for endpoint in endpoints:
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    trace.set_tracer_provider(provider)


def _install_log_export(
    app_name: str, endpoints: Sequence[str], attributes: Mapping[str, str], level: int = logging.NOTSET
) -> None:
    """Export the ``transact`` logger's records (DBOS.logger) at ``level`` or above (config
    ``otlp_log_level``) over OTLP, unless the application set a logger provider of its own (then
    it decides where records go)."""
    from opentelemetry import _logs
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor

    if type(_logs.get_logger_provider()).__name__ not in ("ProxyLoggerProvider", "NoOpLoggerProvider"):
        return  # the application's own provider
    provider = LoggerProvider(resource=_resource(app_name, attributes))
    for endpoint in endpoints:
        provider.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter(endpoint=endpoint)))
    _logs.set_logger_provider(provider)
    log.addHandler(LoggingHandler(level=level, logger_provider=provider))


def install(
    rt: Runtime,
    *,
    traces_endpoints: Sequence[str] = (),
    logs_endpoints: Sequence[str] = (),
    attributes: Mapping[str, str] | None = None,
) -> None:
    """Enable tracing for this launch (see the module docstring)."""
    attrs = dict(attributes or {})
    if not _has_tracer_provider():
        _install_tracer_provider(rt.settings.name, traces_endpoints, attrs)
    elif traces_endpoints:
        log.info("an OpenTelemetry tracer provider is already set: otlp_traces_endpoints are left to it")
    if logs_endpoints:
        otlp = rt.settings.otlp
        _install_log_export(rt.settings.name, logs_endpoints, attrs, otlp.log_level if otlp else logging.NOTSET)
    backend = _Backend(rt, trace.get_tracer(TRACER_NAME))
    backend.wrap_comms()
    tracing.enable(backend)


def tracer() -> trace.Tracer:
    """The tracer transact's spans come from, for the application's own spans (``DBOS.tracer``)."""
    return trace.get_tracer(TRACER_NAME)


def current_span() -> trace.Span:
    """The span current here (``DBOS.span``): inside a step, the step's; in a workflow, the workflow's."""
    return trace.get_current_span()
