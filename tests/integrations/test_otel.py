"""OpenTelemetry tracing (``enable_otlp``): span tree shape, trace continuation through stored rows
(start, enqueue, DBOSClient), replayed steps after recovery, the application's provider left in
place, the workflow log filter, and nothing traced when tracing is off. SQLite and Postgres."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import text

from tests.conftest import spawn, wait_until
from transact import DBOS, DBOSClient, Queue, SetWorkflowID
from transact._config import load_settings
from transact.engine import comms, tracing
from transact.errors import ConfigError

EXPORTER = InMemorySpanExporter()


def _provider() -> TracerProvider:
    """The application's provider: set once per process (OpenTelemetry refuses to replace one)."""
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        return current
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(EXPORTER))
    trace.set_tracer_provider(provider)
    return provider


@pytest.fixture
def traced_config(config: dict[str, Any]) -> dict[str, Any]:
    return {
        **config,
        "enable_otlp": True,
        # Ignored: the application set its own provider, which transact never replaces.
        "otlp_traces_endpoints": ["http://127.0.0.1:9/v1/traces"],
        "otlp_attributes": {"team": "payments"},
    }


@pytest.fixture
def traced(traced_config: dict[str, Any]) -> Iterator[type[DBOS]]:
    provider = _provider()
    DBOS.destroy(destroy_registry=True)
    EXPORTER.clear()
    DBOS(config=traced_config)
    yield DBOS
    DBOS.destroy(destroy_registry=True)
    assert trace.get_tracer_provider() is provider


def spans() -> list[ReadableSpan]:
    return list(EXPORTER.get_finished_spans())


def named(name: str) -> list[ReadableSpan]:
    return [s for s in spans() if s.name == name or s.name.endswith(f".{name}")]  # registered names are qualnames


def one(name: str) -> ReadableSpan:
    found = named(name)
    assert len(found) == 1, f"{name}: {[s.name for s in spans()]}"
    return found[0]


def parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def span_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return span.context.span_id


def trace_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return span.context.trace_id


def test_workflow_steps_transactions_and_children_form_one_tree(traced: type[DBOS]) -> None:
    @DBOS.step()
    def fetch(n: int) -> int:
        DBOS.span.set_attribute("fetched", n)
        return n + 1

    @DBOS.workflow()
    def child(n: int) -> int:
        return fetch(n)

    @DBOS.workflow()
    def parent(n: int) -> int:
        a = fetch(n)
        DBOS.set_event("progress", a)
        with DBOS.tracer.start_as_current_span("user-span"):
            pass
        return child(a)

    DBOS.launch()
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("request") as request, SetWorkflowID("tree-1"):
        assert parent(1) == 3
    root = one("parent")
    assert trace_id(root) == request.get_span_context().trace_id
    assert parent_of(root) == request.get_span_context().span_id
    attrs = root.attributes or {}
    assert attrs["operationUUID"] == "tree-1"
    assert attrs["operationType"] == "workflow"
    assert attrs["executorID"] == traced._rt().executor_id  # type: ignore[attr-defined]
    assert attrs["applicationID"] == "test-app"
    assert "applicationVersion" in attrs
    child_span = one("child")
    assert parent_of(child_span) == span_id(root)
    fetches = named("fetch")
    assert sorted(parent_of(s) for s in fetches) == sorted([span_id(root), span_id(child_span)])
    first = next(s for s in fetches if parent_of(s) == span_id(root))
    assert (first.attributes or {})["functionID"] == 1
    assert (first.attributes or {})["transact.replayed"] is False
    assert (first.attributes or {})["fetched"] == 1
    event = one("DBOS.setEvent")
    assert parent_of(event) == span_id(root)
    assert (event.attributes or {})["operationType"] == "communication"
    assert parent_of(one("user-span")) == span_id(root)
    assert {trace_id(s) for s in spans()} == {request.get_span_context().trace_id}


def test_enqueued_workflow_continues_the_callers_trace_across_a_client(traced: type[DBOS], db_url: str) -> None:
    Queue("otel-q")

    @DBOS.step()
    def work(x: str) -> str:
        return x.upper()

    @DBOS.workflow(name="queued")
    def queued(x: str) -> str:
        return work(x)

    DBOS.launch()
    tracer = trace.get_tracer("test")
    with DBOSClient(db_url) as client, tracer.start_as_current_span("enqueuer") as caller:
        handle = client.enqueue({"workflow_name": "queued", "queue_name": "otel-q", "workflow_id": "q-1"}, "a")
    assert handle.get_result() == "A"
    run = wait_until(lambda: named("queued"), what="the queued run's span")[0]
    assert trace_id(run) == caller.get_span_context().trace_id
    assert parent_of(run) == caller.get_span_context().span_id
    assert (run.attributes or {})["queueName"] == "otel-q"
    assert parent_of(wait_until(lambda: named("work"), what="the step span")[0]) == span_id(run)
    row = traced._rt().store.workflow_get("q-1")  # type: ignore[attr-defined]
    assert row is not None and "traceparent" in json.loads(row.trace_context)


def test_a_recovered_run_links_its_first_trace_and_marks_replayed_steps(traced_config: dict[str, Any]) -> None:
    provider = _provider()
    EXPORTER.clear()

    def launch(executor_id: str) -> Callable[[], str]:
        DBOS.destroy(destroy_registry=True)
        DBOS(config={**traced_config, "executor_id": executor_id})

        @DBOS.step(name="first")
        def first() -> str:
            return "one"

        @DBOS.workflow(name="slow")
        def slow() -> str:
            a = first()
            return f"{a}-{DBOS.recv('go', timeout_seconds=60)}"

        DBOS.launch()
        return slow

    slow = launch("otel-a")
    try:
        with trace.get_tracer("test").start_as_current_span("origin") as origin, SetWorkflowID("rec-1"):
            handle = DBOS.start_workflow(slow)
        wait_until(lambda: named("first"), what="the first run's step")
        launch("otel-b")  # the first executor stopped: the second adopts its pending run
        wait_until(lambda: len(named("first")) == 2, what="the resumed run's replayed step")
        DBOS.send(handle.get_workflow_id(), "go", topic="go")
        assert DBOS.retrieve_workflow(handle.get_workflow_id()).get_result() == "one-go"
    finally:
        DBOS.destroy(destroy_registry=True)
    assert trace.get_tracer_provider() is provider
    runs = sorted(wait_until(lambda: len(named("slow")) == 2 and named("slow")), key=lambda s: s.start_time or 0)
    origin_ctx = origin.get_span_context()
    assert parent_of(runs[0]) == origin_ctx.span_id and trace_id(runs[0]) == origin_ctx.trace_id
    assert runs[1].parent is None and trace_id(runs[1]) != origin_ctx.trace_id  # a new trace...
    assert [link.context.span_id for link in runs[1].links] == [origin_ctx.span_id]  # ...linked to the first
    assert (runs[1].attributes or {})["transact.resumed"] is True
    firsts = sorted(named("first"), key=lambda s: s.start_time or 0)
    assert [(f.attributes or {})["transact.replayed"] for f in firsts] == [False, True]
    assert parent_of(firsts[1]) == span_id(runs[1])


def test_log_records_carry_the_workflow_and_step(dbos: type[DBOS], caplog: pytest.LogCaptureFixture) -> None:
    @DBOS.step()
    def noisy() -> None:
        DBOS.logger.info("inside the step")

    @DBOS.workflow()
    def logs() -> None:
        DBOS.logger.info("in the workflow")
        noisy()

    with caplog.at_level(logging.INFO, logger="transact"), SetWorkflowID("logs-1"):
        logs()
    outside = logging.LogRecord("transact", logging.INFO, __file__, 1, "outside", None, None)
    tracing.LOG_FILTER.filter(outside)
    records = {r.getMessage(): r for r in caplog.records if r.getMessage() in ("in the workflow", "inside the step")}
    assert records["in the workflow"].workflow_id == "logs-1"  # type: ignore[attr-defined]
    assert records["in the workflow"].step_id is None  # type: ignore[attr-defined]
    assert records["inside the step"].workflow_id == "logs-1"  # type: ignore[attr-defined]
    assert records["inside the step"].step_id == 1  # type: ignore[attr-defined]
    assert outside.workflow_id is None  # type: ignore[attr-defined]


def test_with_tracing_off_nothing_is_traced_or_stored(dbos: type[DBOS]) -> None:
    _provider()
    EXPORTER.clear()

    @DBOS.step()
    def quiet() -> int:
        return 1

    @DBOS.workflow()
    def untraced() -> int:
        DBOS.set_event("k", 1)
        return quiet()

    with SetWorkflowID("off-1"):
        assert untraced() == 1
    assert tracing.on is False
    assert not hasattr(comms.send, "__wrapped__")  # no wrapper installed
    assert spans() == []
    row = dbos._rt().store.workflow_get("off-1")  # type: ignore[attr-defined]
    assert row is not None and row.trace_context is None


OTLP_APP = """
import json, sys
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from transact import DBOS

DBOS(config={"name": "otlp-app", "system_database_url": sys.argv[1], "enable_otlp": True,
             "otlp_traces_endpoints": ["http://127.0.0.1:9/v1/traces"], "otlp_attributes": {"team": "payments"}})
DBOS.launch()
provider = trace.get_tracer_provider()
resource = dict(provider.resource.attributes) if isinstance(provider, TracerProvider) else {}
processors = len(provider._active_span_processor._span_processors) if isinstance(provider, TracerProvider) else 0
DBOS.destroy()
print(json.dumps({"sdk": isinstance(provider, TracerProvider), "service": resource.get("service.name"),
                  "team": resource.get("team"), "processors": processors}))
"""


def test_without_a_provider_launch_installs_one_exporting_to_the_endpoints(db_url: str, tmp_path: Path) -> None:
    script = tmp_path / "otlp_app.py"
    script.write_text(OTLP_APP)
    proc = spawn(script, db_url)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert json.loads(out.strip().splitlines()[-1]) == {
        "sdk": True,
        "service": "otlp-app",
        "team": "payments",
        "processors": 1,
    }


def test_a_client_without_tracing_still_stores_the_applications_trace_context(dbos: type[DBOS], db_url: str) -> None:
    _provider()
    Queue("plain-q")

    @DBOS.workflow(name="plain")
    def plain() -> int:
        return 7

    with DBOSClient(db_url) as client, trace.get_tracer("test").start_as_current_span("app-span") as span:
        handle = client.enqueue({"workflow_name": "plain", "queue_name": "plain-q", "workflow_id": "plain-1"})
    assert handle.get_result() == 7
    row = dbos._rt().store.workflow_get("plain-1")  # type: ignore[attr-defined]
    assert row is not None and row.trace_context is not None
    trace_hex = format(span.get_span_context().trace_id, "032x")
    assert trace_hex in json.loads(row.trace_context)["traceparent"]
    assert tracing.on is False


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("otlp_traces_endpoints", "http://collector:4318/v1/traces"),
        ("otlp_logs_endpoints", [4318]),
        ("otlp_attributes", {"team": 1}),
        ("enable_otlp", "yes"),
    ],
)
def test_bad_otlp_config_is_refused_naming_the_key(key: str, value: Any) -> None:
    with pytest.raises(ConfigError, match=key):
        load_settings({"name": "a", "enable_otlp": True, key: value})


def test_a_transaction_gets_its_own_span_under_the_workflow(traced_config: dict[str, Any], tmp_path: Path) -> None:
    _provider()
    DBOS.destroy(destroy_registry=True)
    EXPORTER.clear()
    DBOS(config={**traced_config, "application_database_url": f"sqlite:///{tmp_path / 'app.sqlite'}"})

    @DBOS.transaction(name="tx")
    def tx() -> int:
        return int(DBOS.sql_session.execute(text("SELECT 41 + 1")).scalar_one())

    @DBOS.workflow(name="with_tx")
    def with_tx() -> int:
        return tx()

    DBOS.launch()
    try:
        assert with_tx() == 42
    finally:
        DBOS.destroy(destroy_registry=True)
    run, span = one("with_tx"), one("tx")
    assert parent_of(span) == span_id(run)
    attrs = span.attributes or {}
    assert (attrs["operationType"], attrs["functionID"], attrs["transact.replayed"]) == ("transaction", 1, False)


OTLP_LOGS_APP = """
import sys
from transact import DBOS

DBOS(config={"name": "otlp-logs", "system_database_url": sys.argv[1], "enable_otlp": True, "log_level": "DEBUG",
             "otlp_logs_endpoints": [sys.argv[2]], "otlp_log_level": "warning"})
DBOS.launch()
DBOS.logger.info("below the export level")
DBOS.logger.warning("exported warning")
DBOS.logger.error("exported error")
DBOS.destroy()
"""


def test_otlp_log_level_is_the_least_severe_record_exported(db_url: str, tmp_path: Path) -> None:
    import http.server
    import threading

    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    bodies: list[str] = []

    class Collector(http.server.BaseHTTPRequestHandler):  # a real OTLP/HTTP logs endpoint
        def do_POST(self) -> None:
            request = ExportLogsServiceRequest.FromString(self.rfile.read(int(self.headers["Content-Length"])))
            for resource in request.resource_logs:
                for scope in resource.scope_logs:
                    bodies.extend(record.body.string_value for record in scope.log_records)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        script = tmp_path / "otlp_logs_app.py"
        script.write_text(OTLP_LOGS_APP)
        proc = spawn(script, db_url, f"http://127.0.0.1:{server.server_address[1]}/v1/logs")
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, out  # the batch exporter flushes at exit
        assert "exported warning" in bodies and "exported error" in bodies
        assert "below the export level" not in bodies
    finally:
        server.shutdown()
        server.server_close()


def test_a_bad_otlp_log_level_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"otlp_log_level.*DEBUG, INFO, WARNING"):
        load_settings({"name": "a", "enable_otlp": True, "otlp_log_level": "LOUD"})
    assert load_settings({"name": "a", "enable_otlp": True, "otlp_log_level": "error"}).otlp.log_level == 40  # type: ignore[union-attr]


def test_inside_a_step_user_spans_events_and_errors_land_on_the_step_span(traced: type[DBOS]) -> None:
    """The step span is current while the step runs: a user span parents under it, the trace
    context stored with a child workflow started from it continues it, events and attributes set
    through DBOS.span are recorded, a failed attempt's error is on its span."""
    attempts: list[int] = []

    @DBOS.step(name="inner_step")
    def inner_step() -> str:
        DBOS.span.add_event("checkpoint", {"rows": 3})
        DBOS.span.set_attribute("bad", {"not": "a valid value"})  # type: ignore[arg-type]
        with DBOS.tracer.start_as_current_span("user-in-step"):
            pass
        return "ok"

    @DBOS.step(name="flaky_step", retries_allowed=True, max_attempts=2, interval_seconds=0.01)
    def flaky_step() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise ValueError("first attempt fails")
        return "second"

    @DBOS.step(name="failing_step")
    def failing_step() -> None:
        raise KeyError("always")

    @DBOS.workflow(name="step_spans")
    def step_spans() -> list[str]:
        out = [inner_step(), flaky_step()]
        try:
            failing_step()
        except KeyError:
            out.append("caught")
        return out

    DBOS.launch()
    with SetWorkflowID("light-1"):
        assert step_spans() == ["ok", "second", "caught"]
    run, step = one("step_spans"), one("inner_step")
    assert parent_of(step) == span_id(run) and trace_id(step) == trace_id(run)
    assert parent_of(one("user-in-step")) == span_id(step)
    assert [(e.name, dict(e.attributes or {})) for e in step.events] == [("checkpoint", {"rows": 3})]
    assert "bad" not in (step.attributes or {})
    assert (step.attributes or {})["functionID"] == 1
    assert step.status.status_code is trace.StatusCode.UNSET
    assert step.start_time is not None and step.end_time is not None and step.start_time <= step.end_time
    assert step.instrumentation_scope is not None and step.instrumentation_scope.name == "transact"
    assert step.resource is trace.get_tracer_provider().resource  # type: ignore[attr-defined]
    failed = one("failing_step")
    assert failed.status.status_code is trace.StatusCode.ERROR
    assert "KeyError" in (failed.status.description or "")
    [event] = failed.events
    assert event.name == "exception" and (event.attributes or {})["exception.type"] == "KeyError"
    flaky = one("flaky_step")
    assert flaky.status.status_code is trace.StatusCode.UNSET  # the step succeeded on its second attempt


def test_async_steps_get_their_spans_and_leave_the_workflows_span_current(traced: type[DBOS]) -> None:
    import asyncio

    seen: dict[str, int] = {}

    @DBOS.step(name="async_step")
    async def async_step(n: int) -> int:
        seen[f"in-{n}"] = trace.get_current_span().get_span_context().span_id
        await asyncio.sleep(0)
        return n * 2

    @DBOS.workflow(name="async_flow")
    async def async_flow() -> int:
        total = 0
        for n in (1, 2):
            total += await async_step(n)
            seen[f"after-{n}"] = trace.get_current_span().get_span_context().span_id
        return total

    DBOS.launch()

    async def main() -> int:
        with SetWorkflowID("async-1"):
            return await async_flow()

    assert asyncio.run(main()) == 6
    run = one("async_flow")
    steps = sorted(named("async_step"), key=lambda s: (s.attributes or {})["functionID"])
    assert [(s.attributes or {})["functionID"] for s in steps] == [1, 2]
    assert all(parent_of(s) == span_id(run) for s in steps)
    assert [seen["in-1"], seen["in-2"]] == [span_id(s) for s in steps]  # current inside each step
    assert seen["after-1"] == seen["after-2"] == span_id(run)  # and the workflow's again after it


def test_without_the_light_path_operation_spans_come_from_the_sdk(
    traced: type[DBOS], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tracer the light path does not support (another SDK release's layout, another
    implementation) gets the SDK's own spans, with the same shape and attributes."""
    from transact.integrations._otel_light import LightSpans

    monkeypatch.setattr(LightSpans, "supports", staticmethod(lambda tracer: False))

    @DBOS.step(name="sdk_step")
    def sdk_step(n: int) -> int:
        DBOS.span.set_attribute("seen", n)
        return n + 1

    @DBOS.step(name="sdk_step2")
    def sdk_step2() -> int:
        return 2

    @DBOS.workflow(name="sdk_flow")
    def sdk_flow() -> int:
        DBOS.set_event("k", 1)
        return sdk_step(1) + sdk_step2()

    DBOS.launch()
    with SetWorkflowID("sdk-1"):
        assert sdk_flow() == 4
    run, step, event = one("sdk_flow"), one("sdk_step"), one("DBOS.setEvent")
    assert type(step).__name__ != "LightSpan" and parent_of(step) == span_id(run) == parent_of(event)
    attrs = step.attributes or {}
    assert (attrs["functionID"], attrs["transact.replayed"], attrs["seen"]) == (2, False, 1)
    assert (one("sdk_step2").attributes or {})["functionID"] == 3
