"""Decisions beyond the route's policy: its Rego policy and its external HTTP authorizer
(after the policy allowed), and the CORS preflights a route lets through unauthenticated."""

from __future__ import annotations

from aiohttp import web

from gateway.errors import Forbidden
from gateway.policy.cors import is_cors_preflight
from gateway.policy.ext_authz import decision_request
from gateway.policy.routes import CompiledRoute
from gateway.types import Principal
from gateway.web.services import Compiled, Services


async def ask_authorizer(
    compiled: Compiled,
    services: Services,
    route: CompiledRoute,
    principal: Principal,
    *,
    method: str,
    path_qs: str,
    host: str,
    client_ip: str,
) -> tuple[tuple[str, str], ...]:
    """After the route's policy allowed: its Rego policy, then its external authorizer
    (whose headers are returned); 403 when either refuses, 503 when the authorizer is down."""
    rego = compiled.rego.get(route.index)
    client = compiled.authorizers.get(route.index)
    if rego is None and client is None:
        return ()
    body = decision_request(route.name, method, path_qs, host, client_ip, principal)
    if rego is not None:
        allowed, reason = rego.decide(body)
        if not allowed:
            raise Forbidden(reason)
    if client is None:
        return ()
    decision = await client.decide(services.http, body)
    if not decision.allowed:
        raise Forbidden(decision.reason)
    return decision.headers


def preflight(
    request: web.Request,
    services: Services,
    *,
    method: str | None = None,
    query_string: str | None = None,
) -> bool:
    """A credential-less CORS preflight (gateway.policy.cors); forward-auth passes the
    original request's method and query."""
    cookie_names = services.login.cookie_names if services.login else frozenset()
    return is_cors_preflight(
        request.method if method is None else method,
        request.headers,
        request.rel_url.raw_query_string if query_string is None else query_string,
        cookie_names,
    )
