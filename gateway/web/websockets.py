"""A WebSocket upgrade on a route: origin check for session sockets, relay, session watch."""

from __future__ import annotations

from aiohttp import web
from multidict import CIMultiDict

from gateway import metrics
from gateway.errors import Forbidden
from gateway.policy.origins import websocket_origin_allowed
from gateway.policy.routes import CompiledRoute
from gateway.proxy.forward import Upstream
from gateway.proxy.websocket import Relay, accept_client, connect_upstream, is_websocket_upgrade
from gateway.types import Principal
from gateway.web.keys import SERVICES, VIEW
from gateway.web.websocket_sessions import WEBSOCKET_SESSIONS

__all__ = ["is_websocket_upgrade", "proxy_websocket"]


async def proxy_websocket(
    request: web.Request,
    route: CompiledRoute,
    principal: Principal | None,
    upstream: Upstream,
    path: str,
    headers: CIMultiDict[str],
) -> web.WebSocketResponse:
    """Relay the upgrade; a session socket must come from an allowed Origin and dies with it.

    Only sockets authenticated by the session cookie are checked: a browser attaches the
    cookie to a cross-site handshake, but never an Authorization header, so bearer sockets
    cannot be hijacked that way.
    """
    services = request.app[SERVICES]
    ticket = None
    if principal is not None and principal.kind == "session" and services.login is not None:
        view = request[VIEW]
        origin = request.headers.get("Origin")
        allowed = route.config.websocket_origins
        if not websocket_origin_allowed(origin, f"{view.scheme}://{view.host}", allowed):
            raise Forbidden(
                f"websocket from origin {origin!r} refused on route {route.name}",
                public="This WebSocket was opened from a page of another origin.",
            )
        ticket = request.cookies.get(services.login.cookies.session_name)
    upstream_ws = await connect_upstream(request, services.http, upstream, path, headers)
    async with upstream_ws:
        client_ws = await accept_client(request, upstream_ws)
        relay = Relay(client_ws, upstream_ws)
        with metrics.WEBSOCKETS_OPEN.track_inprogress():
            if ticket is None:
                await relay.run()
            else:
                with request.app[WEBSOCKET_SESSIONS].watching(ticket, relay):
                    await relay.run()
    return client_ws
