"""The catch-all handler: match a route, establish identity, decide, shape headers, forward."""

from __future__ import annotations

from aiohttp import web

from gateway.errors import NotFound
from gateway.log import request_id_var, subject_var
from gateway.policy.canonical import host_name
from gateway.proxy.forward import forward, forward_websocket, is_websocket_upgrade
from gateway.proxy.headers import REQUEST_DROP, upstream_request_headers
from gateway.web.identity import (
    add_identity_headers,
    authorize,
    authorize_public,
    establish_identity,
    strip_gateway_cookies,
)
from gateway.web.keys import COMPILED, ROUTE_NAME, SERVICES, TARGET, VIEW


async def proxy_handler(request: web.Request) -> web.StreamResponse:
    """Forward a request for an app behind the gateway, judged on its canonical target."""
    services = request.app[SERVICES]
    compiled, target, view = request[COMPILED], request[TARGET], request[VIEW]
    reserved = compiled.config.prefix.rstrip("/")
    if target.decoded == reserved or target.decoded.startswith(reserved + "/"):
        # The reserved prefix belongs to the gateway alone: never proxy into it.
        raise NotFound(f"no gateway endpoint {target.decoded[:200]!r}")
    route = compiled.routes.resolve(host_name(view.host), target)
    if route is None:
        raise NotFound(f"no route for host {view.host!r} path {target.decoded[:200]!r}")
    request[ROUTE_NAME] = route.name
    principal = None
    if route.config.auth == "public":
        authorize_public(route, request.method)
    else:
        outcome = await establish_identity(request, services, route)
        if isinstance(outcome, web.StreamResponse):
            return outcome
        principal = outcome
        subject_var.set(principal.subject)
        authorize(route, principal, request.method)
    upstream = compiled.upstreams.get(route.index)
    if upstream is None:
        raise NotFound(f"route {route.name} has no upstream: it answers forward-auth only")
    headers = upstream_request_headers(
        request.headers,
        view,
        drop=REQUEST_DROP,
        owned=compiled.owned.owns,
        upstream_host=upstream.host_header,
        preserve_host=route.config.preserve_host,
        request_id=request_id_var.get(),
    )
    if services.login is not None:
        strip_gateway_cookies(services.login.cookie_names, headers)
    if principal is not None:
        add_identity_headers(compiled, route, principal, headers, origin=view.origin)
    if route.config.raw_path:
        path = (
            request.raw_path.partition("?")[0]
            if request.raw_path.startswith("/")
            else (target.encoded)
        )
    else:
        path = route.upstream_path(target)
    if is_websocket_upgrade(request):
        return await forward_websocket(request, services.http, upstream, path, headers)
    return await forward(
        request,
        services.pool,
        upstream,
        path,
        headers,
        max_body=compiled.config.limits.max_body_size,
    )
