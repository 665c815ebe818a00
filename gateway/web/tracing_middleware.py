"""The server span of each request (only installed when `tracing.enabled`)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway import tracing
from gateway.web.keys import ROUTE_NAME, SERVICES


@web.middleware
async def tracing_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Wrap the request in a server span named by method and route, never by path."""
    services = request.app[SERVICES]
    settings = services.config.tracing
    trust = settings.accept_incoming == "always" or (
        settings.accept_incoming == "trusted_proxies"
        and services.compiled.trusted.trusts(request.remote or "")
    )
    with tracing.server_span(
        f"{request.method} {_route_label(request)}", request.headers, trust_parent=trust
    ) as span:
        span.set_attribute("http.request.method", request.method)
        try:
            response = await handler(request)
        except web.HTTPException as exc:  # a raised redirect is an answer, not a failure
            _finish(span, request, exc.status)
            raise
        _finish(span, request, response.status)
        return response


def _finish(span: tracing.SpanLike, request: web.Request, status: int) -> None:
    # The route is known only once the handler matched it.
    route = _route_label(request)
    span.update_name(f"{request.method} {route}")
    span.set_attribute("http.route", route)
    span.set_attribute("http.response.status_code", status)
    span.set_attribute("gateway.outcome", _outcome(status))


def _route_label(request: web.Request) -> str:
    """The config's route name once matched, else the gateway endpoint's pattern."""
    if ROUTE_NAME in request:
        return request[ROUTE_NAME]
    resource = request.match_info.route.resource
    if resource is None or resource.canonical == "/{tail}":
        return "unmatched"
    return resource.canonical


def _outcome(status: int) -> str:
    if status < 300:
        return "ok"
    if status < 400:
        return "redirect"
    if status in (401, 403):
        return "denied"
    return "client_error" if status < 500 else "error"


async def tracing_lifecycle(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context: start the tracer with the app, flush its spans when it stops."""
    settings = app[SERVICES].config.tracing
    if not settings.enabled:
        yield
        return
    if not tracing.enabled():  # a test may have started it with its own exporter
        tracing.start(settings)
    try:
        yield
    finally:
        tracing.stop()
