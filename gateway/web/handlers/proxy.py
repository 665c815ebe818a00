"""The catch-all handler: match a route, establish identity, decide, shape headers, forward."""

from __future__ import annotations

from aiohttp import web

from gateway.errors import BadRequest, NotFound
from gateway.log import request_id_var, subject_var
from gateway.policy.routes import path_problem, split_host
from gateway.proxy.forward import forward
from gateway.proxy.headers import REQUEST_DROP, upstream_request_headers
from gateway.web.identity import (
    add_identity_headers,
    authorize,
    establish_identity,
    strip_gateway_cookies,
    strip_identity_headers,
)
from gateway.web.keys import ROUTE_NAME, SERVICES, VIEW
from gateway.web.websockets import is_websocket_upgrade, proxy_websocket


async def proxy_handler(request: web.Request) -> web.StreamResponse:
    """Forward a request for an app behind the gateway."""
    services = request.app[SERVICES]
    problem = path_problem(request.path)
    if problem is not None:
        raise BadRequest(f"path with {problem} refused: {request.path!r}")
    if request.path.startswith(services.reserved_prefix) or (
        request.path == services.reserved_prefix.rstrip("/")
    ):
        # The reserved prefix belongs to the gateway alone: never proxy into it.
        raise NotFound(f"no gateway endpoint {request.path!r}")
    view = request[VIEW]
    route = services.routes.match(split_host(view.host), request.path)
    if route is None:
        raise NotFound(f"no route for host {view.host!r} path {request.path!r}")
    request[ROUTE_NAME] = route.name
    principal = None
    if route.config.auth != "public":
        outcome = await establish_identity(request, services, route)
        if isinstance(outcome, web.StreamResponse):
            return outcome
        principal = outcome
        subject_var.set(principal.subject)
        authorize(route, principal, request.method)
    upstream = services.upstreams.get(route.index)
    if upstream is None:
        raise NotFound(f"route {route.name} has no upstream: it answers forward-auth only")
    headers = upstream_request_headers(
        request.headers,
        view,
        drop=REQUEST_DROP,
        upstream_host=upstream.host_header,
        preserve_host=route.config.preserve_host,
        request_id=request_id_var.get(),
    )
    strip_identity_headers(services, route, headers)
    if services.login is not None:
        strip_gateway_cookies(services.login.cookie_names, headers)
    if principal is not None:
        add_identity_headers(
            services, route, principal, headers, origin=f"{view.scheme}://{view.host}"
        )
    path = route.upstream_path(request.rel_url.raw_path)
    if is_websocket_upgrade(request):
        return await proxy_websocket(request, route, principal, upstream, path, headers)
    return await forward(
        request,
        services.http,
        upstream,
        path,
        headers,
        max_body=services.config.limits.max_body_size,
    )
