"""`/auth`: forward-auth for nginx `auth_request`, Traefik `ForwardAuth`, Caddy `forward_auth`.

The proxy in front asks whether a request may pass. The original request is read from
`X-Original-URL` (absolute) or `X-Original-URI` + `X-Original-Method` (nginx), or
`X-Forwarded-Uri` + `X-Forwarded-Method` + `X-Forwarded-Host` + `X-Forwarded-Proto`
(Traefik, Caddy) -- believed only from `trusted_proxies`; any other peer gets 403.
Answers: 200 with the identity headers (and identity token) for the proxy to copy;
401 when not signed in, naming the login URL in `X-Gateway-Login-URL` (with `?redirect=1`,
a browser navigation gets a 302 there instead, for proxies that pass the answer on as is);
403 when the policy refuses, no route matches or the method is not allowed.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from gateway.errors import BadRequest, Forbidden, InvalidToken, Unauthorized
from gateway.log import subject_var
from gateway.policy.authz import METHOD_TOKEN
from gateway.policy.routes import CompiledRoute, split_host
from gateway.proxy.headers import ClientView
from gateway.types import Principal
from gateway.web.identity import (
    MethodNotAllowed,
    add_identity_headers,
    authorize,
    establish_identity,
)
from gateway.web.keys import ROUTE_NAME, SERVICES, VIEW
from gateway.web.responses import error_response, wants_html
from gateway.web.services import Services

REDIRECT_VALUES = frozenset({"1", "true", "yes"})
LOGIN_MODES = frozenset({"login", "login_or_bearer"})
# On a 401, where to send the browser (nginx: auth_request_set + error_page 401 + return 302).
LOGIN_URL_HEADER = "X-Gateway-Login-URL"


@dataclass(frozen=True, slots=True)
class OriginalRequest:
    """The request the proxy is asking about."""

    method: str
    scheme: str
    host: str  # as the client sent it, port included
    path: str  # percent-decoded, for route matching
    path_qs: str  # as the client sent it

    @property
    def origin(self) -> str:
        return f"{self.scheme}://{self.host}"

    @property
    def query_string(self) -> str:
        return self.path_qs.partition("?")[2]


def _bad(header: str) -> BadRequest:
    return BadRequest(
        f"forward-auth: unusable {header}",
        public=f"Forward-auth: the {header} header is missing or malformed.",
    )


def _path_and_query(raw: str, header: str) -> tuple[str, str]:
    """The decoded path and the raw path+query of a request target like '/a%20b?x=1'."""
    raw = raw.partition("#")[0]
    if not raw.startswith("/") or raw.startswith("//") or not raw.isprintable() or " " in raw:
        raise _bad(header)
    path = URL(raw.partition("?")[0], encoded=True).path
    segments = path.split("/")
    # A dot segment could make a prefix match one route while the upstream serves another.
    if ".." in segments or "." in segments or "\\" in path or "\x00" in path:
        raise Forbidden(f"forward-auth: dot segments in {raw!r}", public="Path refused.")
    return path, raw


def _method(headers: CIMultiDictProxy[str], fallback: str) -> str:
    method = headers.get("X-Original-Method") or headers.get("X-Forwarded-Method") or fallback
    if not METHOD_TOKEN.fullmatch(method) or len(method) > 20:
        raise _bad("X-Original-Method")
    return method.upper()


def original_request(
    headers: CIMultiDictProxy[str], view: ClientView, method: str
) -> OriginalRequest:
    """The original request from the proxy's headers (the caller has checked the peer)."""
    method = _method(headers, method)
    url = headers.get("X-Original-URL")
    if url is not None:
        return _from_url(url, method)
    name = "X-Original-URI" if "X-Original-URI" in headers else "X-Forwarded-Uri"
    raw_target = headers.get(name)
    if raw_target is None:
        raise _bad("X-Original-URI or X-Forwarded-Uri")
    path, path_qs = _path_and_query(raw_target, name)
    return OriginalRequest(method, view.scheme, view.host, path, path_qs)


def _from_url(url: str, method: str) -> OriginalRequest:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or "@" in parts.netloc:
        raise _bad("X-Original-URL")
    target = url[len(f"{parts.scheme}://{parts.netloc}") :] or "/"
    path, path_qs = _path_and_query(target, "X-Original-URL")
    return OriginalRequest(method, parts.scheme, parts.netloc, path, path_qs)


async def forward_auth(request: web.Request) -> web.StreamResponse:
    """Decide for the proxy: 200 with identity headers, 401 (or a login redirect) or 403."""
    services = request.app[SERVICES]
    view = request[VIEW]
    if not view.trusted_peer:
        raise Forbidden(
            f"forward-auth asked by {view.peer}, which is not in trusted_proxies",
            public="Forward-auth answers trusted proxies only.",
        )
    original = original_request(request.headers, view, request.method)
    route = services.routes.match(split_host(original.host), original.path)
    if route is None:
        raise Forbidden(f"forward-auth: no route for {original.host!r} {original.path!r}")
    request[ROUTE_NAME] = route.name
    response = web.Response(status=200, headers={"Cache-Control": "no-store"})
    if route.config.auth == "public":
        return response
    principal = await _principal(request, services, route, original)
    if isinstance(principal, web.StreamResponse):
        return principal  # not signed in: 401 (with the login URL) or 302 to the login
    subject_var.set(principal.subject)
    try:
        authorize(route, principal, original.method)
    except MethodNotAllowed as exc:
        # nginx takes any answer but 2xx/401/403 for an error (500): refuse plainly.
        raise Forbidden(str(exc), public=exc.public_message) from None
    headers: CIMultiDict[str] = CIMultiDict()
    add_identity_headers(services, route, principal, headers, origin=original.origin)
    response.headers.extend(headers)
    return response


async def _principal(
    request: web.Request, services: Services, route: CompiledRoute, original: OriginalRequest
) -> Principal | web.StreamResponse:
    try:
        return await establish_identity(
            request, services, route, allow_redirect=False, query_string=original.query_string
        )
    except Unauthorized as exc:
        if isinstance(exc, InvalidToken) or route.config.auth not in LOGIN_MODES:
            raise
        if services.login is None:
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
