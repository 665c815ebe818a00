"""`/auth`: forward-auth for nginx `auth_request`, Traefik `ForwardAuth`, Caddy `forward_auth`.

The proxy in front asks whether a request may pass; the original request comes from its
`X-Original-*` (nginx) or `X-Forwarded-*` (Traefik, Caddy) headers (see
gateway.proxy.original_request), believed only from `trusted_proxies`: others get 403.
Answers: 200 with the identity headers (and identity token) for the proxy to copy;
401 when not signed in, naming the login URL in `X-Gateway-Login-URL` (with `?redirect=1`,
a browser navigation gets a 302 there instead, for proxies that pass the answer on as is);
403 when the policy refuses, no route matches or the method is not allowed.
"""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

from aiohttp import web
from multidict import CIMultiDict

from gateway.errors import Forbidden, InvalidToken, MethodNotAllowed, Unauthorized
from gateway.log import subject_var
from gateway.policy.canonical import PathRefused, host_name
from gateway.policy.routes import CompiledRoute
from gateway.proxy.original_request import OriginalRequest, original_request
from gateway.types import Principal
from gateway.web.external_decisions import ask_authorizer, preflight
from gateway.web.identity import (
    add_identity_headers,
    authorize,
    authorize_public,
    establish_identity,
)
from gateway.web.keys import COMPILED, ROUTE_NAME, SERVICES, VIEW
from gateway.web.responses import error_response, wants_html
from gateway.web.services import Services
from gateway.web.step_up import check_step_up

REDIRECT_VALUES = frozenset({"1", "true", "yes"})
LOGIN_MODES = frozenset({"login", "login_or_bearer"})
# On a 401, where to send the browser (nginx: auth_request_set + error_page 401 + return 302).
LOGIN_URL_HEADER = "X-Gateway-Login-URL"


async def forward_auth(request: web.Request) -> web.StreamResponse:
    """Decide for the proxy: 200 with identity headers, 401 (or a login redirect) or 403."""
    services = request.app[SERVICES]
    view = request[VIEW]
    if not view.trusted_peer:
        raise Forbidden(
            f"forward-auth asked by {view.peer}, which is not in trusted_proxies",
            public="Forward-auth answers trusted proxies only.",
        )
    compiled = request[COMPILED]
    original = original_request(request.headers, view)
    try:
        route = compiled.routes.resolve(host_name(original.host), original.target)
    except PathRefused as exc:
        raise Forbidden(f"forward-auth: {exc}", public="Path refused.") from None
    if route is None:
        raise Forbidden(f"forward-auth: no route for {original.host!r} {original.path[:200]!r}")
    request[ROUTE_NAME] = route.name
    response = web.Response(status=200, headers={"Cache-Control": "no-store"})
    try:
        if route.config.auth == "public":
            authorize_public(route, original.method, original.query_string)
            return response
        if route.config.cors_preflight and preflight(
            request, services, method=original.method, query_string=original.query_string
        ):
            return response
        principal = await _principal(request, services, route, original)
        if isinstance(principal, web.StreamResponse):
            return principal  # not signed in: 401 (with the login URL) or 302 to the login
        subject_var.set(principal.subject)
        await check_step_up(request, services, route, principal, allow_redirect=False)
        authorize(
            route,
            principal,
            original.method,
            original.query_string,
            target=original.target,
            client_ip=view.client_ip,
        )
        granted = await ask_authorizer(
            compiled, services, route, principal, method=original.method,
            path_qs=original.target.decoded
            + (f"?{original.query_string}" if original.query_string else ""),
            host=original.host, client_ip=view.client_ip,
        )  # fmt: skip
    except MethodNotAllowed as exc:
        # nginx takes any answer but 2xx/401/403 for an error (500): refuse plainly.
        raise Forbidden(str(exc), public=exc.public_message) from None
    headers: CIMultiDict[str] = CIMultiDict()
    add_identity_headers(compiled, route, principal, headers, origin=original.origin)
    for name, value in granted:
        headers[name] = value
    response.headers.extend(headers)
    return response


async def _principal(
    request: web.Request, services: Services, route: CompiledRoute, original: OriginalRequest
) -> Principal | web.StreamResponse:
    try:
        return await establish_identity(
            request,
            services,
            route,
            allow_redirect=False,
            query_string=original.query_string,
            dpop_target=(original.method, original.origin + original.target.encoded),
        )
    except Unauthorized as exc:
        bearer_failure = isinstance(exc, InvalidToken) or route.config.auth not in LOGIN_MODES
        if bearer_failure or services.login is None:
            raise
        login_url = _login_url(services, original)
        if _redirect_wanted(request, original):
            return web.Response(
                status=302, headers={"Location": login_url, "Cache-Control": "no-store"}
            )
        realm = services.config.bearer.realm
        headers = {"WWW-Authenticate": f'Bearer realm="{realm}"', LOGIN_URL_HEADER: login_url}
        return error_response(request, 401, exc.code, exc.public_message, headers=headers)


def _redirect_wanted(request: web.Request, original: OriginalRequest) -> bool:
    if request.query.get("redirect", "").lower() not in REDIRECT_VALUES:
        return False
    mode = request.headers.get("Sec-Fetch-Mode")
    navigation = mode == "navigate" if mode is not None else wants_html(request)
    return navigation and original.method in ("GET", "HEAD")


def _login_url(services: Services, original: OriginalRequest) -> str:
    """The gateway's login, returning to the original URL (escaped: nginx cannot escape)."""
    public_url = services.config.public_url
    base = original.origin
    if public_url:
        parts = urlsplit(public_url)
        base = f"{parts.scheme}://{parts.netloc}"
    prefix = services.config.prefix.rstrip("/")
    return f"{base}{prefix}/login?" + urlencode({"rd": original.origin + original.path_qs})
