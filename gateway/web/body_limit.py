"""Bodies of the gateway's own endpoints: small and quick; proxied bodies stream unbounded by it."""

from __future__ import annotations

import asyncio
import functools

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from gateway.errors import BodyTimeout
from gateway.proxy.lingering import skip_lingering
from gateway.web.connections import close_unread
from gateway.web.keys import SERVICES
from gateway.web.responses import error_response


def gateway_body_limit(*, every_path: bool = False) -> Middleware:
    """Refuse (413) bodies over limits.max_gateway_body_size, and (408) bodies not complete
    within listen.body_timeout, on every path under the prefix (or on every path); read per
    request, so that a reload applies."""
    # A module-level function, bound with partial rather than a closure, so that its
    # decisions are mutation-tested too (mutmut does not mutate nested functions).
    return web.middleware(functools.partial(limit_body, every_path=every_path))


async def limit_body(
    request: web.Request, handler: Handler, *, every_path: bool
) -> web.StreamResponse:
    """The middleware of gateway_body_limit."""
    config = request.app[SERVICES].config
    if not every_path and not _under(request.path, config.prefix.rstrip("/")):
        return await handler(request)
    limit = config.limits.max_gateway_body_size
    if (request.content_length or 0) > limit:
        return too_large(request, limit)
    # aiohttp's read()/post() raise 413 past the request's client_max_size; the app's
    # is unbounded so that proxied bodies can stream. There is no public setter, and
    # clone() would copy the request's state away from the middlewares around us.
    request._client_max_size = limit
    deadline = None
    if request.body_exists and not request.content.is_eof():
        # A client trickling the body byte by byte would otherwise hold the connection
        # (and the handler) for as long as it likes.
        deadline = asyncio.get_running_loop().call_later(
            config.listen.body_timeout, _body_overdue, request, config.listen.body_timeout
        )
    try:
        return await handler(request)
    except web.HTTPRequestEntityTooLarge:
        return too_large(request, limit)
    finally:
        if deadline is not None:
            deadline.cancel()
        if not request.content.is_eof():
            # Answered (or failed) without reading the whole body: it was refused as
            # too large, or not needed. Close rather than read the rest for nothing.
            skip_lingering(request)


def _under(path: str, base: str) -> bool:
    return path == base or path.startswith(base + "/")


def _body_overdue(request: web.Request, seconds: float) -> None:
    """The body is not complete in time: the handler's read fails with 408 (BodyTimeout)."""
    if not request.content.is_eof():
        request.content.set_exception(
            BodyTimeout(f"request body to {request.path} not complete within {seconds:g} s")
        )
        skip_lingering(request)


def too_large(request: web.Request, limit: int) -> web.StreamResponse:
    """413, closing the connection rather than reading (draining) the rest of the body."""
    response = error_response(
        request, 413, "body_too_large", f"Request bodies here are limited to {limit} bytes."
    )
    close_unread(request, response)
    return response
