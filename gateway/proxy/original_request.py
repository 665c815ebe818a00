"""The request a forward-auth caller (nginx, Traefik, Caddy) asks about, from its headers.

Two header families describe it:
- nginx: ``X-Original-URL`` (absolute) and/or ``X-Original-URI`` (path and query, host from
  ``X-Forwarded-Host`` or ``Host``), with ``X-Original-Method``;
- Traefik and Caddy: ``X-Forwarded-Uri`` + ``X-Forwarded-Method`` (host and scheme from
  ``X-Forwarded-Host`` / ``X-Forwarded-Proto``).
Each proxy overwrites its own family but passes the other one on from the client untouched,
so when both are present they must describe the same request, or the answer is a refusal:
a client cannot get one path authorized while the proxy serves another. The method is
required (the sub-request's own method is the proxy's, not the client's). Pure functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from multidict import CIMultiDictProxy

from gateway.errors import BadRequest, Forbidden
from gateway.policy.authz import METHOD_TOKEN
from gateway.policy.canonical import CanonicalPath, PathRefused, canonical_host, canonical_path
from gateway.proxy.headers import ClientView

ORIGINAL_HEADERS = (
    "X-Original-URL",
    "X-Original-URI",
    "X-Original-Method",
    "X-Forwarded-Uri",
    "X-Forwarded-Method",
)


@dataclass(frozen=True, slots=True)
class OriginalRequest:
    """The request the proxy is asking about."""

    method: str
    scheme: str
    host: str  # canonical (gateway.policy.canonical), port included
    target: CanonicalPath  # the canonical path, for route matching
    path_qs: str  # as the client sent it

    @property
    def path(self) -> str:
        return self.target.decoded

    @property
    def origin(self) -> str:
        return f"{self.scheme}://{self.host}"

    @property
    def query_string(self) -> str:
        return self.path_qs.partition("?")[2]

    def same_target(self, other: OriginalRequest) -> bool:
        return (self.method, self.host.lower(), self.path_qs) == (
            other.method,
            other.host.lower(),
            other.path_qs,
        )


def _bad(header: str) -> BadRequest:
    return BadRequest(
        f"forward-auth: unusable {header}",
        public=f"Forward-auth: the {header} header is missing or malformed.",
    )


def _conflict(what: str) -> Forbidden:
    return Forbidden(f"forward-auth: {what} disagree", public="Conflicting forward-auth headers.")


def _path_and_query(raw: str, header: str) -> tuple[CanonicalPath, str]:
    """The canonical path and the raw path+query of a request target like '/a%20b?x=1'."""
    raw = raw.partition("#")[0]
    if not raw.startswith("/") or not raw.isprintable() or " " in raw:
        raise _bad(header)
    try:
        return canonical_path(raw.partition("?")[0]), raw
    except PathRefused as exc:
        # Forbidden, not 400: nginx turns any other auth_request answer into a 500.
        raise Forbidden(f"forward-auth: {exc}", public="Path refused.") from None


def _host(value: str, header: str) -> str:
    try:
        return canonical_host(value)
    except BadRequest:
        raise _bad(header) from None


def _method(headers: CIMultiDictProxy[str], name: str) -> str:
    method = headers.get(name, "")
    if not METHOD_TOKEN.fullmatch(method) or len(method) > 20:
        raise _bad(name)
    return method.upper()


def _from_url(url: str, method: str) -> OriginalRequest:
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
    except ValueError:
        raise _bad("X-Original-URL") from None
    if parts.scheme not in ("http", "https") or not hostname or "@" in parts.netloc:
        raise _bad("X-Original-URL")
    target = url[len(f"{parts.scheme}://{parts.netloc}") :] or "/"
    path, path_qs = _path_and_query(target, "X-Original-URL")
    return OriginalRequest(
        method, parts.scheme, _host(parts.netloc, "X-Original-URL"), path, path_qs
    )


def _nginx_family(headers: CIMultiDictProxy[str], view: ClientView) -> OriginalRequest | None:
    url, uri = headers.get("X-Original-URL"), headers.get("X-Original-URI")
    if url is None and uri is None:
        return None
    method = _method(headers, "X-Original-Method")
    if url is not None:
        original = _from_url(url, method)
        if uri is not None and uri.partition("#")[0] != original.path_qs:
            raise _conflict("X-Original-URL and X-Original-URI")
        return original
    path, path_qs = _path_and_query(uri or "", "X-Original-URI")
    return OriginalRequest(method, view.scheme, view.host, path, path_qs)


def _forwarded_family(headers: CIMultiDictProxy[str], view: ClientView) -> OriginalRequest | None:
    uri = headers.get("X-Forwarded-Uri")
    if uri is None:
        return None
    method = _method(headers, "X-Forwarded-Method")
    path, path_qs = _path_and_query(uri, "X-Forwarded-Uri")
    return OriginalRequest(method, view.scheme, view.host, path, path_qs)


def original_request(headers: CIMultiDictProxy[str], view: ClientView) -> OriginalRequest:
    """The original request; BadRequest if undescribed, Forbidden if described two ways."""
    for name in ORIGINAL_HEADERS:
        if len(headers.getall(name, [])) > 1:
            raise _conflict(f"repeated {name} headers")
    nginx, forwarded = _nginx_family(headers, view), _forwarded_family(headers, view)
    if nginx is not None and forwarded is not None and not nginx.same_target(forwarded):
        raise _conflict("X-Original-* and X-Forwarded-* headers")
    found = nginx or forwarded
    if found is None:
        raise _bad("X-Original-URL (nginx) or X-Forwarded-Uri (Traefik, Caddy)")
    return found
