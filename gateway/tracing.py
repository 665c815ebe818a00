"""OpenTelemetry tracing, optional: spans and W3C trace context when `tracing.enabled`.

Nothing from opentelemetry is imported unless tracing is switched on (the `tracing` extra):
with it off, `span()` hands back one shared do-nothing object and `inject()` returns at once.
Attributes are names, routes, hosts, status codes and outcome words only: never a token,
code, cookie, path, query or claim value (tests/test_tracing.py checks a real login's spans).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any, Protocol

from gateway import __version__

if TYPE_CHECKING:
    from gateway.config.model import Tracing

AttributeValue = str | int | float | bool
TRACE_HEADERS = ("traceparent", "tracestate")


class SpanLike(Protocol):
    def set_attribute(self, key: str, value: AttributeValue) -> Any: ...

    def update_name(self, name: str) -> Any: ...


class _NoSpan:
    """The stand-in for a span while tracing is off: a reusable, do-nothing context manager."""

    __slots__ = ()

    def __enter__(self) -> _NoSpan:
        return self

    def __exit__(self, *_exc: object) -> None:
        return None

    def set_attribute(self, key: str, value: AttributeValue) -> None:
        return None

    def update_name(self, name: str) -> None:
        return None


NO_SPAN = _NoSpan()
_tracer: Any = None  # an opentelemetry Tracer while tracing is on
_provider: Any = None
_request_span: contextvars.ContextVar[Any] = contextvars.ContextVar("request_span", default=None)


def enabled() -> bool:
    return _tracer is not None


def start(settings: Tracing, *, exporter: Any = None) -> None:
    """Install the tracer provider for this process: OTLP over HTTP, batched, sampled.

    ``exporter`` replaces the OTLP exporter (an in-memory one in tests).
    """
    global _tracer, _provider
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    resource = Resource.create(
        {"service.name": settings.service_name, "service.version": __version__}
    )
    provider = TracerProvider(
        resource=resource, sampler=ParentBased(TraceIdRatioBased(settings.sample_ratio))
    )
    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        otlp = OTLPSpanExporter(
            endpoint=settings.endpoint,
            headers={k: v.reveal() for k, v in settings.headers.items()},
            timeout=settings.timeout,
        )
        provider.add_span_processor(BatchSpanProcessor(otlp))
    else:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    _provider = provider
    _tracer = provider.get_tracer("gateway", __version__)


def stop() -> None:
    """Flush the spans still queued and switch tracing off."""
    global _tracer, _provider
    if _provider is not None:
        _provider.shutdown()
    _tracer = _provider = None


def span(
    name: str, attributes: Mapping[str, AttributeValue] | None = None, *, client: bool = False
) -> contextlib.AbstractContextManager[SpanLike]:
    """A child span of the current one (``client``: a call leaving the process)."""
    if _tracer is None:
        return NO_SPAN
    return _otel_span(name, attributes, client=client)


@contextlib.contextmanager
def _otel_span(
    name: str, attributes: Mapping[str, AttributeValue] | None, *, client: bool
) -> Iterator[SpanLike]:
    from opentelemetry.trace import SpanKind

    kind = SpanKind.CLIENT if client else SpanKind.INTERNAL
    # The SDK's own exception handling would copy the exception's message into the span: a
    # message may quote a provider's answer, so only the exception's type is recorded.
    with _tracer.start_as_current_span(
        name,
        kind=kind,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as otel:
        try:
            yield otel
        except BaseException as exc:
            _failed(otel, exc)
            raise


def _failed(otel: Any, exc: BaseException) -> None:
    from opentelemetry.trace import StatusCode

    otel.set_attribute("error.type", type(exc).__name__)
    otel.set_status(StatusCode.ERROR, type(exc).__name__)


@contextlib.contextmanager
def server_span(name: str, headers: Mapping[str, str], *, trust_parent: bool) -> Iterator[SpanLike]:
    """The span of one request; continues the caller's trace only if ``trust_parent``."""
    from opentelemetry.trace import SpanKind

    parent = _propagator().extract(headers) if trust_parent else None
    with _tracer.start_as_current_span(
        name,
        context=parent,
        kind=SpanKind.SERVER,
        record_exception=False,
        set_status_on_exception=False,
    ) as otel:
        token = _request_span.set(otel)
        try:
            yield otel
        except BaseException as exc:
            _failed(otel, exc)
            raise
        finally:
            _request_span.reset(token)


def annotate_request(key: str, value: AttributeValue) -> None:
    """Set an attribute on the request's server span (route, auth mode, outcome)."""
    current = _request_span.get()
    if current is not None:
        current.set_attribute(key, value)


def inject(headers: MutableMapping[str, str]) -> None:
    """Replace any trace context in outgoing ``headers`` with the current span's."""
    if _tracer is None:
        return
    for name in TRACE_HEADERS:
        # What a client sent must not reach the upstream beside (or instead of) ours.
        while name in headers:
            del headers[name]
    _propagator().inject(headers)


def _propagator() -> Any:
    # W3C trace context only: no baggage goes to upstreams or comes in from clients.
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    return TraceContextTextMapPropagator()


def current_ids() -> tuple[str, str] | None:
    """The current (trace id, span id) in hex, for log lines; None outside a recorded span."""
    if _tracer is None:
        return None
    from opentelemetry.trace import get_current_span

    context = get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return f"{context.trace_id:032x}", f"{context.span_id:016x}"
