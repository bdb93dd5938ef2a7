"""The light operation spans against the SDK's own tracers: every sampler decision the SDK would
make, the processors' start and end calls, the span limits, and a finished span equal in every
exported field to one the SDK builds. No database: the spans' place in a workflow run is checked on
both databases in test_otel.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider, sampling
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from transact.integrations._otel_light import LightSpan, LightSpans


class _Starts(SpanProcessor):
    def __init__(self) -> None:
        self.started: list[str] = []

    def on_start(self, span: trace.Span, parent_context: otel_context.Context | None = None) -> None:
        span.set_attribute("seen.on_start", True)
        self.started.append(span.get_span_context().span_id.__format__("016x"))


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


def _tracer(exporter: InMemorySpanExporter, sampler: sampling.Sampler | None = None) -> tuple[trace.Tracer, _Starts]:
    provider = TracerProvider(sampler=sampler) if sampler is not None else TracerProvider()
    starts = _Starts()
    provider.add_span_processor(starts)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider.get_tracer("transact"), starts


@pytest.fixture
def under_parent() -> Iterator[None]:
    """Nothing current before or after a test."""
    token = otel_context.attach(otel_context.Context())
    yield
    otel_context.detach(token)


def test_a_span_under_a_sampled_parent_matches_the_sdks(exporter: InMemorySpanExporter, under_parent: None) -> None:
    tracer, starts = _tracer(exporter)
    light = LightSpans(tracer, "transact")  # type: ignore[arg-type]
    with tracer.start_as_current_span("workflow") as parent:
        with light.start("light", {"operationType": "step"}) as span:
            assert trace.get_current_span() is span
            with tracer.start_as_current_span("inside"):
                pass
            span.set_attribute("user", "value")
        with tracer.start_as_current_span("sdk", attributes={"operationType": "step"}) as sdk:
            sdk.set_attribute("user", "value")
    by_name: dict[str, ReadableSpan] = {s.name: s for s in exporter.get_finished_spans()}
    ours, theirs = by_name["light"], by_name["sdk"]
    assert ours.parent == theirs.parent == parent.get_span_context()
    assert by_name["inside"].parent == ours.context
    assert ours.context is not None and theirs.context is not None
    assert ours.context.trace_id == theirs.context.trace_id
    assert ours.context.trace_flags == theirs.context.trace_flags
    assert ours.context.is_remote is theirs.context.is_remote is False
    assert dict(ours.attributes or {}) == dict(theirs.attributes or {})
    assert ours.kind == theirs.kind and ours.resource is theirs.resource
    assert ours.status.status_code == theirs.status.status_code
    assert ours.instrumentation_scope is not None and theirs.instrumentation_scope is not None
    assert ours.instrumentation_scope.name == theirs.instrumentation_scope.name
    assert len(starts.started) == 4  # every span, light or not, went through on_start
    assert isinstance(LightSpans.supports(tracer), bool) and LightSpans.supports(tracer)
    assert not LightSpans.supports(trace.NoOpTracer())


@pytest.mark.parametrize(
    ("sampler", "recorded"),
    [
        (None, True),  # the SDK's default: a parent-based sampler, sampling roots
        (sampling.ALWAYS_OFF, False),
        (sampling.ALWAYS_ON, True),
        (sampling.TraceIdRatioBased(0.0), False),
        (sampling.ParentBased(sampling.ALWAYS_OFF), False),
    ],
)
def test_the_tracers_sampler_decides_a_root_span(
    exporter: InMemorySpanExporter, under_parent: None, sampler: sampling.Sampler | None, recorded: bool
) -> None:
    tracer, _ = _tracer(exporter, sampler)
    light = LightSpans(tracer, "transact")  # type: ignore[arg-type]
    with light.start("root", {"operationType": "step"}) as span:
        assert span.is_recording() is recorded
        assert span.get_span_context().trace_flags.sampled is recorded
        with tracer.start_as_current_span("child") as child:
            assert child.get_span_context().trace_id == span.get_span_context().trace_id
    assert [s.name for s in exporter.get_finished_spans() if s.name == "root"] == (["root"] if recorded else [])


def test_a_child_of_an_unsampled_parent_is_not_recorded_with_the_default_sampler(
    exporter: InMemorySpanExporter, under_parent: None
) -> None:
    tracer, _ = _tracer(exporter)
    light = LightSpans(tracer, "transact")  # type: ignore[arg-type]
    unsampled = trace.SpanContext(0xABC, 0xDEF, is_remote=True, trace_flags=trace.TraceFlags(0))
    token = otel_context.attach(trace.set_span_in_context(trace.NonRecordingSpan(unsampled)))
    try:
        with light.start("child", {"operationType": "step"}) as span:
            assert not span.is_recording()
            assert span.get_span_context().trace_id == 0xABC
            span.set_attribute("ignored", 1)
            span.add_event("ignored")
    finally:
        otel_context.detach(token)
    assert exporter.get_finished_spans() == ()


def test_limits_bad_values_and_ending_twice(
    exporter: InMemorySpanExporter, under_parent: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "4")
    monkeypatch.setenv("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "5")
    monkeypatch.setenv("OTEL_SPAN_EVENT_COUNT_LIMIT", "1")
    tracer, _ = _tracer(exporter)
    light = LightSpans(tracer, "transact")  # type: ignore[arg-type]
    span = light.start("limited", {"operationType": "step"})
    assert isinstance(span, LightSpan)
    span.set_attributes({"long": "abcdefgh", "list": ["abcdefgh", "b"], "mixed": [1, "a"], "n": 1.5, "more": 1})
    span.set_attribute("over", 2)
    span.add_event("first")
    span.add_event("second")
    span.update_name("renamed")
    span.set_status(trace.StatusCode.OK)
    span.set_status(trace.StatusCode.ERROR, "too late: OK is final")
    span.end()
    span.end()
    span.set_attribute("after", 1)
    [done] = exporter.get_finished_spans()
    assert done.name == "renamed"
    # Four at most: the given one, the processor's from on_start, then the first two valid ones.
    assert dict(done.attributes or {}) == {
        "operationType": "step",
        "seen.on_start": True,
        "long": "abcde",
        "list": ("abcde", "b"),
    }
    assert [e.name for e in done.events] == ["first"]
    assert done.status.status_code is trace.StatusCode.OK


def test_the_fast_paths_are_in_use_with_this_sdk() -> None:
    """Each shortcut is guarded by a check of the SDK it runs on (falling back to the public API
    when the check fails, which the other tests here exercise for correctness); with the SDK
    release the cost in bench/ was measured on, every guard must hold, or that cost silently goes
    back up. Another release is reported, not failed: its internals are free to differ."""
    from importlib.metadata import version

    from transact.integrations import _otel_light

    sdk = version("opentelemetry-sdk")
    if not sdk.startswith("1.45."):
        pytest.skip(f"the light path's guards were verified on opentelemetry-sdk 1.45; this is {sdk}")
    assert _otel_light._LAYOUT_MATCHES and _otel_light._CONTEXT_LAYOUT_MATCHES
    assert _otel_light._SPAN_KEY is not None and _otel_light._RUNTIME is not None


def test_a_processor_added_later_is_started_and_a_custom_id_generator_is_honoured(
    exporter: InMemorySpanExporter, under_parent: None
) -> None:
    from opentelemetry.sdk.trace.id_generator import IdGenerator

    class Counting(IdGenerator):
        def __init__(self) -> None:
            self.n = 0

        def generate_span_id(self) -> int:
            self.n += 1
            return 0x1000 + self.n

        def generate_trace_id(self) -> int:
            return 0xABCDEF

    provider = TracerProvider(id_generator=Counting())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("transact")
    light = LightSpans(tracer, "transact")  # type: ignore[arg-type]
    with tracer.start_as_current_span("parent"), light.start("before", {"operationType": "step"}):
        pass
    starts = _Starts()
    provider.add_span_processor(starts)  # after the light spans were set up
    with tracer.start_as_current_span("parent2"), light.start("after", {"operationType": "step"}) as span:
        assert span.get_span_context().span_id > 0x1000  # the application's generator made it
    by_name = {s.name: s for s in exporter.get_finished_spans()}
    assert by_name["after"].context is not None and by_name["after"].context.trace_id == 0xABCDEF
    assert len(starts.started) == 2  # "parent2" and "after": the new processor sees light spans too
    assert (by_name["after"].attributes or {})["seen.on_start"] is True


def test_without_the_api_context_key_the_api_functions_are_used(
    exporter: InMemorySpanExporter, under_parent: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from transact.integrations import _otel_light

    monkeypatch.setattr(_otel_light, "_SPAN_KEY", None)
    tracer, _ = _tracer(exporter)
    light = LightSpans(tracer, "transact")  # type: ignore[arg-type]
    light._fast_contexts = False  # and SpanContext built by its own constructor
    with tracer.start_as_current_span("workflow") as parent, light.start("light", {"operationType": "step"}) as span:
        assert trace.get_current_span() is span
        with tracer.start_as_current_span("inside"):
            pass
    assert trace.get_current_span() is trace.INVALID_SPAN
    by_name = {s.name: s for s in exporter.get_finished_spans()}
    assert by_name["light"].parent == parent.get_span_context()
    assert by_name["inside"].parent == by_name["light"].context
