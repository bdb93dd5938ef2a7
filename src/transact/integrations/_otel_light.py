"""Operation spans (step, transaction, communication) without the SDK's per-span machinery.

A step on SQLite costs about 12 us; the SDK's span object (its lock, bounded attributes, the
processor calls and the bookkeeping on start and end) costs more than that again, so a traced step
cost 3-4x an untraced one. When the tracer is the OpenTelemetry SDK's, operation spans are built
here instead: a small recording span, current while the operation runs (user spans, instrumented
libraries and the context stored with a child workflow parent under it), handed to the tracer's
span processors at its end as a finished ``ReadableSpan``. Exporters see the same span the SDK
would have made.

Kept from the SDK: the tracer's sampler decides (a span not sampled is current but records
nothing), the processors' ``on_start`` / ``on_end``, exception events and error status, the span
limits' attribute count and value length (from the same environment variables). Not kept: the
SDK's own span-count metrics. Another tracer implementation gets the SDK path
(``LightSpans.supports``).
"""

from __future__ import annotations

import logging
import random
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanLimits, SpanProcessor, sampling
from opentelemetry.sdk.trace import Tracer as SdkTracer
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState
from opentelemetry.trace import propagation as otel_propagation
from opentelemetry.util import types

log = logging.getLogger("transact")

_UNSET = Status(StatusCode.UNSET)
_RANDOM_TRACE_ID = getattr(TraceFlags, "RANDOM_TRACE_ID", 0)
_VALUE_TYPES = (str, bool, int, float)
_NO_ATTRIBUTES: dict[str, types.AttributeValue] = {}  # never written: a recording span gets its own
# SpanContext is a tuple (trace_id, span_id, is_remote, flags, state, is_valid): built directly
# when that still holds, skipping a validation the light path does not need.
_CONTEXT_LAYOUT_MATCHES = tuple(SpanContext(1, 2, False, TraceFlags(1), TraceState())) == (
    1,
    2,
    False,
    TraceFlags(1),
    TraceState(),
    True,
)
# The context API's attach/detach/get_current each forward to the runtime context OpenTelemetry
# loaded at import; the per-step path calls it directly when it is there (else the API).
_RUNTIME = getattr(otel_context, "_RUNTIME_CONTEXT", None)
_get_current: Callable[[], otel_context.Context] = (
    _RUNTIME.get_current if _RUNTIME is not None else otel_context.get_current
)
_attach: Callable[[otel_context.Context], object] = _RUNTIME.attach if _RUNTIME is not None else otel_context.attach
_detach: Callable[[Any], None] = _RUNTIME.detach if _RUNTIME is not None else otel_context.detach
_time_ns = time.time_ns
# The context key under which the API keeps the current span (what get_current_span and
# set_span_in_context read and write); the API functions are used when it is not there.
_SPAN_KEY: str | None = getattr(otel_propagation, "_SPAN_KEY", None)


_getrandbits = random.getrandbits
# The SDK's exporting processors, whose on_start does nothing (exactly these classes: a subclass
# may add a start hook, so it is called).
_NO_START: frozenset[type] = frozenset({BatchSpanProcessor, SimpleSpanProcessor})
_NEEDED = ("sampler", "resource", "span_processor", "id_generator")


def _clean(value: Any, max_length: int | None) -> Any:
    """An attribute value as OpenTelemetry accepts it (a primitive or a homogeneous sequence of
    them), or None to drop it."""
    if isinstance(value, _VALUE_TYPES):
        if max_length is not None and isinstance(value, str):
            return value[:max_length]
        return value
    if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        items = tuple(value)
        kinds = {type(item) for item in items if item is not None}
        if len(kinds) <= 1 and all(k in _VALUE_TYPES for k in kinds):
            if max_length is not None:
                return tuple(i[:max_length] if isinstance(i, str) else i for i in items)
            return items
    return None


class LightSpans:
    """Builds operation spans for one SDK tracer."""

    def __init__(self, tracer: SdkTracer, scope_name: str) -> None:
        self._sampler = tracer.sampler
        self._resource = tracer.resource
        self._processor = tracer.span_processor
        self._ids = tracer.id_generator
        self._scope = InstrumentationScope(scope_name)
        limits = SpanLimits()
        self._max_attributes = limits.max_span_attributes
        self._max_length = limits.max_span_attribute_length
        self._max_events = limits.max_events
        self._parent_based = self._sampler is sampling.DEFAULT_ON
        self._flags = {
            (sampled, random): TraceFlags((TraceFlags.SAMPLED if sampled else 0) | (_RANDOM_TRACE_ID if random else 0))
            for sampled in (False, True)
            for random in (False, True)
        }
        self._last_parent: tuple[SpanContext | None, TraceFlags, bool] = (None, self._flags[False, False], False)
        self._span_type: type[LightSpan] = type(
            "LightSpan",
            (LightSpan,),
            {"_spans": self, "_resource": self._resource, "_instrumentation_scope": self._scope},
        )
        self._start_wanted: tuple[object, bool] = (None, True)
        self._on_end = self._processor.on_end  # (the provider's processor list is read at each call)
        # A random generator's span ids are valid by construction; SpanContext's layout checked once.
        self._fast_contexts = _CONTEXT_LAYOUT_MATCHES and type(self._ids) is RandomIdGenerator
        is_random = getattr(self._ids, "is_trace_id_random", None)
        self._random_ids = bool(is_random()) if is_random is not None else False

    @staticmethod
    def supports(tracer: object) -> bool:
        return _LAYOUT_MATCHES and isinstance(tracer, SdkTracer) and all(hasattr(tracer, n) for n in _NEEDED)

    def start(self, name: str, attributes: dict[str, types.AttributeValue]) -> LightSpan:
        """A span under the current one; ``attributes`` are the caller's own (already valid)."""
        context = _get_current()
        # The current span, as get_current_span finds it (inline: this runs once per step).
        found: trace.Span | None = (
            context.get(_SPAN_KEY) if _SPAN_KEY is not None else trace.get_current_span(context)  # type: ignore[assignment]
        )
        current = (found or trace.INVALID_SPAN).get_span_context()
        if self._parent_based and current.is_valid:
            # The SDK's default sampler under a parent: sampled as the parent is, with its trace
            # state. A workflow's steps share one parent: its flags are worked out once.
            known = self._last_parent
            if known[0] is not current:
                sampled = bool(current.trace_flags.sampled)
                random_id = bool(getattr(current.trace_flags, "random_trace_id", False))
                known = (current, self._flags[sampled, random_id], sampled)
                self._last_parent = known  # one assignment: safe to share between threads
            # (The random generator's own draw, made here: 0 is the one invalid id.)
            span_id = (_getrandbits(64) if self._fast_contexts else 0) or self._ids.generate_span_id()
            if self._fast_contexts:  # SpanContext's own tuple, without re-validating known-good ids
                span_context = tuple.__new__(
                    SpanContext, (current.trace_id, span_id, False, known[1], current.trace_state, True)
                )
            else:
                span_context = SpanContext(current.trace_id, span_id, False, known[1], current.trace_state)
            return self._make(name, span_context, current, known[2], attributes, context)
        parent = current if current.is_valid else None
        trace_id = parent.trace_id if parent is not None else self._ids.generate_trace_id()
        if self._parent_based:  # ... and a root: sampled
            recording = sampled = True
            trace_state = None
        else:
            decision = self._sampler.should_sample(context, trace_id, name, SpanKind.INTERNAL, attributes)
            sampled = decision.decision.is_sampled()  # type: ignore[no-untyped-call]
            recording = decision.decision.is_recording()  # type: ignore[no-untyped-call]
            trace_state = decision.trace_state
            attributes = dict(decision.attributes)  # the sampler's say, as in the SDK
        random_id = self._random_ids if parent is None else getattr(parent.trace_flags, "random_trace_id", False)
        flags = self._flags[sampled, bool(random_id)]
        span_context = SpanContext(
            trace_id, self._ids.generate_span_id(), is_remote=False, trace_flags=flags, trace_state=trace_state
        )
        return self._make(name, span_context, parent, recording, attributes, context)

    def _make(
        self,
        name: str,
        span_context: SpanContext,
        parent: SpanContext | None,
        recording: bool,
        attributes: dict[str, types.AttributeValue],
        context: otel_context.Context,
    ) -> LightSpan:
        # Built field by field (no __init__ call): this runs once per step. Only what differs per
        # span is set; the rest are class attributes (see LightSpan).
        span: LightSpan = object.__new__(self._span_type)
        span._name = name
        span._context = span_context
        span._parent = parent
        span._start_time = _time_ns()
        span._outer = context
        span._recording = recording
        if recording:
            span._attributes = attributes
            # (_wants_start's answer for an unchanged processor list, inline)
            known = self._start_wanted
            changed = known[0] is not getattr(self._processor, "_span_processors", None)
            if (changed or known[1]) and self._wants_start():
                self._processor.on_start(span, parent_context=context)  # type: ignore[arg-type]
        return span

    def _wants_start(self) -> bool:
        """Whether any processor does something on a span's start (the SDK's batch and simple
        processors do not: their on_start is empty). Worked out again whenever the provider's processor list changes; a
        processor list this cannot see is always called."""
        processors = getattr(self._processor, "_span_processors", None)
        if processors is None:
            return True
        known = self._start_wanted
        if known[0] is not processors:
            wanted = any(
                type(p) not in _NO_START and type(p).on_start is not SpanProcessor.on_start for p in processors
            )
            known = self._start_wanted = (processors, wanted)
        return known[1]


# The fields ReadableSpan's accessors read. The light span sets them itself instead of running
# ReadableSpan.__init__ (one object per span, not two); an SDK whose layout differs is not used.
_READABLE_FIELDS = frozenset(
    {
        "_attributes",
        "_context",
        "_end_time",
        "_events",
        "_instrumentation_info",
        "_instrumentation_scope",
        "_kind",
        "_links",
        "_name",
        "_parent",
        "_resource",
        "_start_time",
        "_status",
    }
)
_LAYOUT_MATCHES = set(vars(ReadableSpan(name="layout"))) == _READABLE_FIELDS


class LightSpan(trace.Span, ReadableSpan):
    """One operation's span: current inside its ``with`` block, ended (and handed to the
    processors, when recording) when the block exits; it is its own finished ``ReadableSpan``, as
    the SDK's span is. Used from the operation's own thread."""

    # Fields every span starts with, as class attributes: only what differs per span is written
    # at construction (ReadableSpan's accessors find the rest here). See _READABLE_FIELDS.
    _kind = SpanKind.INTERNAL
    _instrumentation_info = None
    _end_time: int | None = None
    # Lists from the first event or link: most spans have none, so nothing is allocated.
    _events: list[Event] | tuple[()] = ()
    _links: list[Link] | tuple[()] = ()
    _status = _UNSET
    _token: object = None
    _outer: otel_context.Context | None = None  # the context current where the span started
    _attributes: dict[str, types.AttributeValue] = _NO_ATTRIBUTES  # a recording span gets its own
    # Set for each span by LightSpans._make.
    _name: str
    _context: SpanContext
    _parent: SpanContext | None
    _start_time: int | None
    _recording: bool
    # Per factory (LightSpans makes a subclass that sets them): shared by all its spans.
    _spans: LightSpans
    _resource: Resource
    _instrumentation_scope: InstrumentationScope | None

    # -- the current span while the operation runs ----------------------------------------------
    def __enter__(self) -> LightSpan:
        outer = self._outer
        if _SPAN_KEY is not None and outer is not None:  # what set_span_in_context does, inline
            self._token = _attach(otel_context.Context({**outer, _SPAN_KEY: self}))
        else:
            self._token = _attach(trace.set_span_in_context(self, outer))
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        try:
            if isinstance(ev, Exception):
                self.record_exception(ev)
                self.set_status(Status(StatusCode.ERROR, f"{type(ev).__name__}: {ev}"))
        finally:
            try:
                _detach(self._token)
            except Exception:  # as the API's detach: a foreign token is logged, not raised
                log.exception("failed to detach the context of span %r", self._name)
            # Spans wait in batch processors' queues: one that holds no token keeps one object
            # fewer alive for Python's collector to walk.
            self._token = None
            if self._end_time is None:  # end(), inline: this runs once per step
                self._end_time = _time_ns()
                if self._recording:
                    self._spans._on_end(self)

    # -- trace.Span ------------------------------------------------------------------------------
    def get_span_context(self) -> SpanContext:
        return self._context

    def is_recording(self) -> bool:
        return self._recording and self._end_time is None

    def set_attributes(self, attributes: Mapping[str, types.AttributeValue]) -> None:
        for key, value in attributes.items():
            self.set_attribute(key, value)

    def set_attribute(self, key: str, value: types.AttributeValue) -> None:
        if not self.is_recording():
            return
        cleaned = _clean(value, self._spans._max_length)
        if cleaned is None or not isinstance(key, str) or not key:
            log.warning("span attribute %r dropped: %r is not a valid OpenTelemetry attribute value", key, value)
            return
        limit = self._spans._max_attributes
        if key not in self._attributes and limit is not None and len(self._attributes) >= limit:
            return  # over the span limit, as the SDK drops it
        self._attributes[key] = cleaned

    def add_event(self, name: str, attributes: types.Attributes = None, timestamp: int | None = None) -> None:
        if not self.is_recording():
            return
        limit = self._spans._max_events
        if limit is not None and len(self._events) >= limit:
            return
        if isinstance(self._events, tuple):
            self._events = []
        self._events.append(Event(name, attributes, timestamp if timestamp is not None else time.time_ns()))

    def add_link(self, context: SpanContext, attributes: types.Attributes = None) -> None:
        if self.is_recording() and context.is_valid:
            if isinstance(self._links, tuple):
                self._links = []
            self._links.append(Link(context, attributes))

    def update_name(self, name: str) -> None:
        if self.is_recording():
            self._name = name

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        if not self.is_recording() or self._status.status_code is StatusCode.OK:
            return  # OK is final, as in the SDK
        self._status = status if isinstance(status, Status) else Status(status, description)

    def record_exception(
        self,
        exception: BaseException,
        attributes: types.Attributes = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        event_attributes: dict[str, types.AttributeValue] = {
            "exception.type": type(exception).__qualname__,
            "exception.message": str(exception),
            "exception.stacktrace": "".join(traceback.format_exception(exception)),
            "exception.escaped": str(escaped),
        }
        if attributes:
            event_attributes.update(attributes)
        self.add_event("exception", event_attributes, timestamp)

    def end(self, end_time: int | None = None) -> None:
        if self._end_time is not None:
            return  # ended already (an end time is what "ended" means)
        self._end_time = end_time if end_time is not None else _time_ns()
        if self._recording:
            self._spans._on_end(self)
