"""The listener's request handler: proxied paths go straight to the proxy pipeline.

aiohttp's Application resolves every request against its router (two dozen gateway
endpoints before the catch-all) and wraps the handler in each middleware per request.
A proxied path needs neither: it is answered by ``context_middleware`` around
``proxy_handler``, called directly, with the catch-all's match info so that the request
looks exactly as the Application would have made it. Everything else (the gateway's own
endpoints, absolute-form targets, ``Expect``; everything while tracing is on, as its
middleware must wrap every request) still goes through the Application. A CONNECT is
answered there and its connection closed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import hdrs, web
from aiohttp.web_urldispatcher import UrlMappingMatchInfo

from gateway.web.handlers.proxy import proxy_handler
from gateway.web.middlewares import context_middleware
from gateway.web.resource_metadata import WELL_KNOWN

RequestHandler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


def proxied_paths_first(
    app: web.Application, prefix: str, fallback: RequestHandler, *, direct: bool = True
) -> RequestHandler:
    """A handler serving proxied paths directly (unless not ``direct``) and every other
    request with ``fallback`` (the Application's own); ``app`` must be frozen."""
    match_info = UrlMappingMatchInfo({}, _catch_all_route(app))
    match_info.add_app(app)
    match_info.freeze()
    return Dispatch(match_info, prefix.rstrip("/"), fallback, direct=direct)


class Dispatch:
    """The listener's request handler (a class, not a closure, so that mutation testing
    reaches its decisions)."""

    __slots__ = ("_direct", "_fallback", "_match_info", "_reserved")

    def __init__(
        self,
        match_info: UrlMappingMatchInfo,
        reserved: str,
        fallback: RequestHandler,
        *,
        direct: bool,
    ) -> None:
        self._match_info = match_info
        self._reserved = reserved
        self._fallback = fallback
        self._direct = direct

    async def __call__(self, request: web.BaseRequest) -> web.StreamResponse:
        if request.method == hdrs.METH_CONNECT:
            response = await self._fallback(request)  # no path in its target: the router's 404
            # What follows a CONNECT head is a tunnel's bytes: never read them as requests.
            response.force_close()
            return response
        if (
            not self._direct
            or not _is_proxied(request, self._reserved)
            or hdrs.EXPECT in request.headers
        ):
            return await self._fallback(request)
        assert isinstance(request, web.Request)  # the Application's request factory made it
        request._match_info = self._match_info
        return await context_middleware(request, proxy_handler)


def _is_proxied(request: web.BaseRequest, reserved: str) -> bool:
    """True when the Application's router would give ``request`` to the catch-all."""
    if not request.raw_path.startswith("/"):
        return False  # absolute-form: the Application's path handling decides
    path = request.path
    if not path.startswith("/"):
        return False  # e.g. CONNECT's authority-form target, `/x` included: the router's 404
    return not (path.startswith(reserved) or path.startswith(WELL_KNOWN))


def _catch_all_route(app: web.Application) -> web.AbstractRoute:
    for resource in app.router.resources():
        if resource.canonical == "/{tail}":
            for route in resource:
                if route.handler is proxy_handler:
                    return route
    raise LookupError("the application has no proxy catch-all route")
