"""Forward-auth: reading the original request from nginx / Traefik / Caddy headers (pure)."""

from __future__ import annotations

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from gateway.errors import BadRequest, Forbidden
from gateway.proxy.headers import ClientView
from gateway.proxy.original_request import original_request

# What the middleware made of a trusted proxy's X-Forwarded-Host / -Proto.
VIEW = ClientView("10.0.0.1", "10.0.0.1", "https", "app.example:8443", (), True)
T = "/a%20b/c?x=1&y=2"
H = "app.example:8443"
NGINX = {"X-Original-URL": f"http://app.example{T}", "X-Original-Method": "post"}
TRAEFIK = {"X-Forwarded-Uri": T, "X-Forwarded-Method": "POST"}
BOTH_AGREE = {**TRAEFIK, "X-Original-URI": T, "X-Original-Method": "POST"}


def read(headers: dict[str, str] | list[tuple[str, str]]) -> tuple[str, str, str, str, str]:
    items = headers.items() if isinstance(headers, dict) else headers
    found = original_request(CIMultiDictProxy(CIMultiDict(items)), VIEW)
    return found.method, found.scheme, found.host, found.path, found.path_qs


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (NGINX, ("POST", "http", "app.example", "/a b/c", T)),
        ({"X-Original-URI": "/p?q", "X-Original-Method": "GET"}, ("GET", "https", H, "/p", "/p?q")),
        ({**NGINX, "X-Original-URI": T}, ("POST", "http", "app.example", "/a b/c", T)),
        (TRAEFIK, ("POST", "https", H, "/a b/c", T)),
        (BOTH_AGREE, ("POST", "https", H, "/a b/c", T)),
        (
            {"X-Original-URL": "https://h", "X-Original-Method": "PUT"},
            ("PUT", "https", "h", "/", "/"),
        ),
        # Canonical like any request: slashes merged (what nginx serves), host lower case.
        (
            {"X-Original-URL": "http://APP.example.//x//y", "X-Original-Method": "GET"},
            ("GET", "http", "app.example", "/x/y", "//x//y"),
        ),
    ],
)
def test_reads_each_header_family(
    headers: dict[str, str], expected: tuple[str, str, str, str, str]
) -> None:
    """nginx (URL or URI) and Traefik/Caddy headers give method, scheme, host, path."""
    assert read(headers) == expected


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Original-URL": "http://app.example/"},  # no method
        {"X-Forwarded-Uri": "/x", "X-Forwarded-Method": "G E T"},
        {"X-Original-URL": "ftp://app.example/", "X-Original-Method": "GET"},
        {"X-Original-URL": "http://user@app.example/", "X-Original-Method": "GET"},
        {"X-Original-URI": "relative", "X-Original-Method": "GET"},
        {"X-Forwarded-Uri": "/a\nb", "X-Forwarded-Method": "GET"},
    ],
)
def test_missing_or_malformed_is_bad_request(headers: dict[str, str]) -> None:
    """Without a usable target and method the answer is 400, never a guess."""
    with pytest.raises(BadRequest):
        read(headers)


@pytest.mark.parametrize(
    "headers",
    [
        # Traefik sets X-Forwarded-*; the client slipped in an X-Original-URL for another path.
        {**TRAEFIK, "X-Original-URL": f"https://{H}/public", "X-Original-Method": "POST"},
        {**TRAEFIK, "X-Original-URI": T, "X-Original-Method": "GET"},
        # nginx sets X-Original-*; the client slipped in X-Forwarded-Uri.
        {**NGINX, "X-Forwarded-Uri": "/public", "X-Forwarded-Method": "POST"},
        {**NGINX, "X-Original-URI": "/public"},
        [("X-Forwarded-Uri", "/a"), ("X-Forwarded-Uri", "/b"), ("X-Forwarded-Method", "GET")],
        {"X-Original-URL": "http://app.example/a/../admin", "X-Original-Method": "GET"},
        {"X-Forwarded-Uri": "/a/%2e%2e/admin", "X-Forwarded-Method": "GET"},
    ],
)  # fmt: skip
def test_conflicting_or_dotted_targets_are_refused(
    headers: dict[str, str] | list[tuple[str, str]],
) -> None:
    """Two descriptions of different requests, repeated headers or dot segments: 403."""
    with pytest.raises(Forbidden):
        read(headers)
