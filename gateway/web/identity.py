"""Who is calling: a session or a bearer token, per the route's auth mode (fails closed)."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlencode

from aiohttp import web
from multidict import CIMultiDict

from gateway import metrics
from gateway.errors import (
    Forbidden,
    InsufficientScope,
    InvalidToken,
    MethodNotAllowed,
    NoAuthenticator,
    RateLimited,
    Unauthorized,
)
from gateway.policy.authz import RequestFacts, decide, method_allowed, override_methods
from gateway.policy.canonical import CanonicalPath
from gateway.policy.routes import CompiledRoute
from gateway.tokens.bearer import MissingToken
from gateway.types import Principal
from gateway.web.keys import TARGET, VIEW
from gateway.web.proof_of_possession import RequestTarget, check_proof_of_possession
from gateway.web.resource_metadata import note_resource
from gateway.web.responses import wants_html
from gateway.web.services import Compiled, Services

BEARER_FAILURES = "bearer-failures"


def is_navigation(request: web.Request) -> bool:
    """A top-level browser navigation, which may be redirected to sign in."""
    mode = request.headers.get("Sec-Fetch-Mode")
    if mode is not None:
        return mode == "navigate" and request.method in ("GET", "HEAD")
    return request.method in ("GET", "HEAD") and wants_html(request)


async def establish_identity(
    request: web.Request,
    services: Services,
    route: CompiledRoute,
    *,
    allow_redirect: bool = True,
    query_string: str | None = None,
    dpop_target: RequestTarget | None = None,
) -> Principal | web.StreamResponse:
    """The caller's principal, or a response (redirect to sign in) to send instead.

    Forward-auth passes ``allow_redirect=False`` (no session: 401, never a login), the
    original request's ``query_string``, and its method and URL (``dpop_target``).
    """
    mode = route.config.auth
    origin = dpop_target[1] if dpop_target else request[VIEW].origin
    note_resource(request, _origin_of(origin), route)
    has_authorization = "Authorization" in request.headers
    if mode == "bearer" or (mode == "login_or_bearer" and has_authorization):
        if services.bearer is None:
            raise NoAuthenticator(f"route {route.name} needs bearer tokens; none configured")
        try:
            caller = await _bearer_principal(
                request, services, request.query_string if query_string is None else query_string
            )
        except MissingToken:
            if route.config.require_dpop:
                raise services.bearer.dpop.refused(
                    "A DPoP-bound access token is required.", None
                ) from None
            raise
        await check_proof_of_possession(request, services, route, caller, dpop_target)
        return caller
    login = services.login
    if login is None:
        raise NoAuthenticator(f"route {route.name} needs login; no provider configured")
    principal = await login.session_principal(request)
    if principal is not None:
        if route.config.provider and login.providers[route.config.provider].config.issuer != (
            principal.issuer
        ):
            principal = None
        else:
            return principal
    if not allow_redirect or not is_navigation(request):
        if allow_redirect and request.method not in ("GET", "HEAD") and wants_html(request):
            # A form posted after the session ended: say so rather than lose it silently.
            raise Unauthorized(
                "form posted without a valid session",
                public="Your session has ended, so this form was not sent. "
                "Sign in again, then submit the form again.",
            )
        raise Unauthorized("no valid session", public="Sign-in required: no valid session.")
    return_to = login.origin(request) + canonical_path_qs(request)
    if route.config.provider or len(login.providers) == 1:
        name = route.config.provider or next(iter(login.providers))
        return await login.start_login(request, login.providers[name], return_to)
    prefix = services.config.prefix.rstrip("/")
    raise web.HTTPFound(f"{prefix}/login?" + urlencode({"rd": return_to}))


def _origin_of(url: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.partition('/')[0]}"


def canonical_path_qs(request: web.Request) -> str:
    query = request.rel_url.raw_query_string
    return request[TARGET].encoded + (f"?{query}" if query else "")


async def _bearer_principal(
    request: web.Request, services: Services, query_string: str
) -> Principal:
    """The bearer caller; a client that keeps sending bad tokens is refused new ones.

    Every unknown opaque token costs an introspection call: after `rate_limit.per_minute`
    refused tokens a client address gets 429 for tokens not already known, so a flood of
    garbage cannot be turned against the provider.
    """
    bearer = services.bearer
    if bearer is None:
        raise NoAuthenticator("no bearer issuers configured")
    limiter, client = services.rate_limiter, request[VIEW].client_ip

    def gate() -> None:
        if limiter is not None and limiter.exhausted(client, BEARER_FAILURES):
            raise RateLimited(f"{client} sent too many refused tokens")

    try:
        return await bearer.authenticate(
            request.headers.getall("Authorization", []), query_string, gate=gate
        )
    except InvalidToken:
        if limiter is not None:
            limiter.spend(client, BEARER_FAILURES)
        raise


def _check_methods(route: CompiledRoute, asked: Sequence[str]) -> None:
    """405 unless each method ``asked`` (the request's, then any `_method` override) is
    allowed."""
    methods = route.config.policy.methods
    if methods is None:
        return
    for method in asked:
        if not method_allowed(methods, method):
            raise MethodNotAllowed(f"method {method.upper()[:20]} not allowed on {route.name}")


def authorize_public(route: CompiledRoute, method: str, query_string: str) -> None:
    """A public route's policy: only its methods can be decided without a caller."""
    if route.config.policy.methods is not None:  # no query parsing on most public routes
        _check_methods(route, (method, *override_methods(query_string)))


def authorize(
    route: CompiledRoute,
    principal: Principal,
    method: str,
    query_string: str,
    *,
    target: CanonicalPath | None = None,
    client_ip: str | None = None,
) -> None:
    """Apply the route's policy; raise the matching 403/405.

    Without ``target`` / ``client_ip`` conditions on path / network refuse (fail closed)."""
    if route.open_policy:
        return  # no methods, nothing to decide: the hot path of most API routes
    asked = (method, *override_methods(query_string))
    _check_methods(route, asked)
    facts = RequestFacts(
        asked,
        route.paths_below(target) if target is not None else None,
        client_ip,
    )
    decision = decide(route.config.policy, principal, facts)
    if decision.allowed:
        return
    if decision.status == 405:
        raise MethodNotAllowed(decision.reason)
    if decision.missing_scope:
        metrics.authentication(principal.kind, "insufficient_scope")
        raise InsufficientScope(decision.reason, scope=decision.missing_scope)
    raise Forbidden(decision.reason)


def add_identity_headers(
    compiled: Compiled,
    route: CompiledRoute,
    principal: Principal,
    headers: CIMultiDict[str],
    *,
    origin: str | None = None,
) -> None:
    """Set the route's identity headers (and identity token; ``origin`` is its default iss)."""
    for name, value in compiled.injectors[route.index].build(principal):
        headers[name] = value
    config = route.config
    if principal.kind == "session":
        if config.pass_access_token and principal.access_token:
            headers["Authorization"] = f"Bearer {principal.access_token}"
        if config.pass_id_token_header and principal.id_token:
            headers[config.pass_id_token_header] = principal.id_token
    elif not config.forward_authorization:
        headers.popall("Authorization", None)
    minter = compiled.identity_tokens.minters.get(route.index)
    if minter is not None:
        headers[minter.header_name] = minter.header_value(principal, origin)


def strip_gateway_cookies(names: frozenset[str], headers: CIMultiDict[str]) -> None:
    """Drop the gateway's own cookies: the upstream must never see a session ticket."""
    values = headers.getall("Cookie", [])
    if not values:
        return
    kept = [
        part.strip()
        for value in values
        for part in value.split(";")
        if part.strip() and part.split("=", 1)[0].strip() not in names
    ]
    headers.popall("Cookie")
    if kept:
        headers["Cookie"] = "; ".join(kept)


def client_of(request: web.Request) -> str | None:
    """The caller's address as the gateway believes it (trusted proxies applied), for the
    audit log: who acted, never with what credential."""
    view = request.get(VIEW)
    return view.client_ip if view is not None else request.remote
