"""A small body limit for the gateway's own endpoints; proxied bodies stream unbounded by it."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from gateway.web.responses import error_response


def gateway_body_limit(prefix: str, limit: int) -> Middleware:
    """Refuse (413) bodies over ``limit`` bytes on every path under ``prefix``."""
    base = prefix.rstrip("/")

    @web.middleware
    async def body_limit(request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        if path != base and not path.startswith(base + "/"):
            return await handler(request)
        if (request.content_length or 0) > limit:
            return too_large(request, limit)
        # aiohttp's read()/post() raise 413 past the request's client_max_size; the app's
        # is unbounded so that proxied bodies can stream. There is no public setter, and
        # clone() would copy the request's state away from the middlewares around us.
        request._client_max_size = limit
        return await handler(request)

    return body_limit


def too_large(request: web.Request, limit: int) -> web.StreamResponse:
    """413, closing the connection rather than reading the rest of the body."""
    response = error_response(
        request, 413, "body_too_large", f"Request bodies here are limited to {limit} bytes."
    )
    response.force_close()
    return response
