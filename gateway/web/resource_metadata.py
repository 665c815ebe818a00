"""OAuth 2.0 Protected Resource Metadata (RFC 9728) for bearer routes: what a client (an MCP
client, say) needs to get a token, found from the 401's `resource_metadata` parameter."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.errors import BadRequest
from gateway.policy.canonical import canonical_path, host_name
from gateway.policy.routes import CompiledRoute
from gateway.web.keys import COMPILED, ROUTE_NAME, TARGET, VIEW
from gateway.web.responses import json_response

WELL_KNOWN = "/.well-known/oauth-protected-resource"
TOKEN_MODES = frozenset({"bearer", "login_or_bearer"})
# The metadata URL of the route that is refusing this request: a 401's WWW-Authenticate
# names it (RFC 9728 5.1).
RESOURCE_METADATA: web.RequestKey[str] = web.RequestKey("resource_metadata", str)


def metadata_url(origin: str, route: CompiledRoute) -> str:
    """RFC 9728 3.1: the well-known segment goes between the host and the resource's path."""
    path = route.prefix if route.prefix != "/" else ""
    return origin + WELL_KNOWN + path


def note_resource(request: web.Request, origin: str, route: CompiledRoute) -> None:
    """Remember the route's metadata URL for the challenge of a refusal, if it has one."""
    config = request[COMPILED].config
    if config.bearer.resource_metadata and route.config.auth in TOKEN_MODES:
        request[RESOURCE_METADATA] = metadata_url(origin, route)


def with_resource_metadata(request: web.Request, challenge: str) -> str:
    """The challenge with `resource_metadata` added when the refusing route has metadata."""
    url = request.get(RESOURCE_METADATA)
    return f'{challenge}, resource_metadata="{url}"' if url else challenge


def document(
    origin: str, resource_path: str, route: CompiledRoute, request: web.Request
) -> dict[str, Any]:
    """The metadata document of ``route`` for the resource at ``resource_path``."""
    bearer = request[COMPILED].config.bearer
    policy = route.config.policy
    doc: dict[str, Any] = {
        "resource": origin + (resource_path if resource_path != "/" else ""),
        "authorization_servers": [issuer.issuer for issuer in bearer.issuers],
        "bearer_methods_supported": ["header"],
    }
    scopes = sorted(set(policy.scopes_all) | set(policy.scopes_any))
    if scopes:
        doc["scopes_supported"] = scopes
    if bearer.dpop.enabled or route.config.require_dpop:
        doc["dpop_signing_alg_values_supported"] = list(bearer.dpop.algorithms)
    if route.config.require_dpop:
        doc["dpop_bound_access_tokens_required"] = True
    if route.config.name:
        doc["resource_name"] = route.config.name
    return doc


async def protected_resource_metadata(request: web.Request) -> web.StreamResponse:
    """The metadata of the bearer route at the path after the well-known segment; anything
    else (no such route, or metadata turned off) goes to the catch-all like any request."""
    from gateway.web.handlers.proxy import proxy_handler  # the fall-through

    compiled, view = request[COMPILED], request[VIEW]
    if not compiled.config.bearer.resource_metadata or not compiled.config.bearer.issuers:
        return await proxy_handler(request)
    resource_path = request[TARGET].encoded[len(WELL_KNOWN) :] or "/"
    if not resource_path.startswith("/"):
        return await proxy_handler(request)  # /.well-known/oauth-protected-resourceX
    try:
        target = canonical_path(resource_path)
    except BadRequest:
        return await proxy_handler(request)
    route = compiled.routes.resolve(host_name(view.host), target)
    if route is None or route.config.auth not in TOKEN_MODES:
        return await proxy_handler(request)
    request[ROUTE_NAME] = route.name
    response = json_response(document(view.origin, target.encoded, route, request))
    # Public metadata: browser-based clients on other origins may read it (RFC 9728 3).
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response
