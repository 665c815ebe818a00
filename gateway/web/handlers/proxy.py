"""The catch-all handler: match a route, establish identity, decide, shape headers, forward."""

from __future__ import annotations

from aiohttp import web
from multidict import CIMultiDict

from gateway import metrics, tracing
from gateway.errors import NotFound
from gateway.log import request_id_var, subject_var
from gateway.policy.canonical import host_name
from gateway.proxy.forward import Upstream, forward
from gateway.proxy.headers import REQUEST_DROP, upstream_request_headers
from gateway.web.external_decisions import ask_authorizer, preflight
from gateway.web.identity import (
    add_identity_headers,
    authorize,
    authorize_public,
    establish_identity,
    strip_gateway_cookies,
)
from gateway.web.keys import COMPILED, ROUTE_NAME, SERVICES, TARGET, VIEW
from gateway.web.pages.failures import SIGNED_IN
from gateway.web.step_up import check_step_up
from gateway.web.websockets import is_websocket_upgrade, proxy_websocket


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
    tracing.annotate_request("gateway.auth_mode", route.config.auth)
    principal = None
    granted: tuple[tuple[str, str], ...] = ()
    if route.config.auth == "public":
        authorize_public(route, request.method, request.rel_url.raw_query_string)
    elif route.config.cors_preflight and preflight(request, services):
        pass  # a credential-less CORS preflight: the upstream answers it, unauthenticated
    else:
        outcome = await establish_identity(request, services, route)
        if isinstance(outcome, web.StreamResponse):
            return outcome
        principal = outcome
        subject_var.set(principal.subject)
        request[SIGNED_IN] = principal  # a 403 page names the account and offers a switch
        stepped = await check_step_up(request, services, route, principal)
        if stepped is not None:
            return stepped  # sent back to the provider for a stronger or fresher sign-in
        authorize(
            route,
            principal,
            request.method,
            request.rel_url.raw_query_string,
            target=target,
            client_ip=view.client_ip,
        )
        query = request.rel_url.raw_query_string
        granted = await ask_authorizer(
            compiled, services, route, principal, method=request.method,
            path_qs=target.decoded + (f"?{query}" if query else ""),
            host=view.host, client_ip=view.client_ip,
        )  # fmt: skip
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
        for name, value in granted:
            headers[name] = value
    if route.config.raw_path:
        path = (
            request.raw_path.partition("?")[0].partition("#")[0]
            if request.raw_path.startswith("/")
            else (target.encoded)
        )
    else:
        path = route.upstream_path(target)
    if is_websocket_upgrade(request):
        tracing.inject(headers)
        return await proxy_websocket(request, route, principal, upstream, path, headers)
    return await _observed_forward(
        request,
        upstream,
        path,
        headers,
        max_body=compiled.config.limits.max_body_size,
        body_idle=compiled.config.limits.body_idle_timeout,
    )


async def _observed_forward(
    request: web.Request,
    upstream: Upstream,
    path: str,
    headers: CIMultiDict[str],
    *,
    max_body: int,
    body_idle: float,
) -> web.StreamResponse:
    """The upstream call in its client span, with the trace context sent along; the
    status class of the upstream's answer is counted per route."""
    attributes = (
        {"gateway.route": upstream.name, "server.address": upstream.host_header}
        if tracing.enabled()
        else None
    )
    with tracing.span("upstream", attributes, client=True) as span:
        tracing.inject(headers)
        services = request.app[SERVICES]
        response = await forward(
            request, services.pool, upstream, path, headers, max_body=max_body, body_idle=body_idle
        )
        span.set_attribute("http.response.status_code", response.status)
    metrics.upstream_response(upstream.name, response.status)
    return response
