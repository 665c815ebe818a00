"""Bodies of the gateway's own endpoints: small and quick; proxied bodies stream unbounded by it."""

from __future__ import annotations

import asyncio

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from gateway.web.connections import close_unread
from gateway.web.keys import SERVICES
from gateway.web.responses import error_response


def gateway_body_limit(*, every_path: bool = False) -> Middleware:
    """Refuse (413) bodies over limits.max_gateway_body_size, and (408) bodies not complete
    within listen.body_timeout, on every path under the prefix (or on every path); read per
    request, so that a reload applies."""

    @web.middleware
    async def body_limit(request: web.Request, handler: Handler) -> web.StreamResponse:
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
        if request.body_exists:
            # Read the (small) body here, under one deadline: a client trickling it byte by
            # byte would otherwise hold the connection for as long as it likes. read()
            # keeps the bytes, so the handler's post()/json()/read() reuse them.
            try:
                async with asyncio.timeout(config.listen.body_timeout):
                    await request.read()
            except web.HTTPRequestEntityTooLarge:
                return too_large(request, limit)
            except TimeoutError:
                return _too_slow(request, config.listen.body_timeout)
        return await handler(request)

    return body_limit


def _under(path: str, base: str) -> bool:
    return path == base or path.startswith(base + "/")


def too_large(request: web.Request, limit: int) -> web.StreamResponse:
    """413, closing the connection rather than reading (draining) the rest of the body."""
    response = error_response(
        request, 413, "body_too_large", f"Request bodies here are limited to {limit} bytes."
    )
    close_unread(request, response)
    return response


def _too_slow(request: web.Request, seconds: float) -> web.StreamResponse:
    """408, closing the connection: the rest of the body is not waited for."""
    response = error_response(
        request, 408, "body_timeout", f"The request body was not complete within {seconds:g} s."
    )
    close_unread(request, response)
    return response
