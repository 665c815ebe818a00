"""Forward-auth: reading the original request from nginx / Traefik / Caddy headers (pure)."""

from __future__ import annotations

import re

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


TARGET = "X-Original-URL (nginx) or X-Forwarded-Uri (Traefik, Caddy)"


@pytest.mark.parametrize(
    ("headers", "header"),
    [
        ({}, TARGET),
        ({"X-Original-URL": "http://app.example/"}, "X-Original-Method"),  # no method
        ({"X-Forwarded-Uri": "/x", "X-Forwarded-Method": "G E T"}, "X-Forwarded-Method"),
        ({"X-Original-URI": "/x", "X-Original-Method": "A" * 21}, "X-Original-Method"),
        ({"X-Original-URL": "ftp://app.example/", "X-Original-Method": "GET"}, "X-Original-URL"),
        ({"X-Original-URL": "http://user@app.example/", "X-Original-Method": "GET"},
         "X-Original-URL"),
        ({"X-Original-URL": "http:///x", "X-Original-Method": "GET"}, "X-Original-URL"),
        ({"X-Original-URL": "http://[x/", "X-Original-Method": "GET"}, "X-Original-URL"),
        ({"X-Original-URL": "http://a b/", "X-Original-Method": "GET"}, "X-Original-URL"),
        ({"X-Original-URL": "http://h/a b", "X-Original-Method": "GET"}, "X-Original-URL"),
        ({"X-Original-URI": "relative", "X-Original-Method": "GET"}, "X-Original-URI"),
        ({"X-Forwarded-Uri": "/a\nb", "X-Forwarded-Method": "GET"}, "X-Forwarded-Uri"),
        ({"X-Forwarded-Uri": "/a b", "X-Forwarded-Method": "GET"}, "X-Forwarded-Uri"),
    ],
)  # fmt: skip
def test_missing_or_malformed_is_bad_request(headers: dict[str, str], header: str) -> None:
    """Without a usable target and method the answer is 400, never a guess; the answer
    names the header at fault."""
    with pytest.raises(BadRequest, match=f"^forward-auth: unusable {re.escape(header)}$") as info:
        read(headers)
    assert f"Forward-auth: the {header} header is missing or malformed." == (
        info.value.public_message
    )


def test_a_twenty_character_method_is_still_a_method() -> None:
    """Methods up to 20 characters are read (WebDAV and friends have long ones)."""
    method = "VERSION-CONTROLLLLLL"
    assert 20 == len(method)
    assert method == read({"X-Original-URI": "/x", "X-Original-Method": method})[0]


def test_fragments_are_not_part_of_the_target() -> None:
    """A fragment never reaches a server: X-Original-URL and -URI agree without it."""
    headers = {
        "X-Original-URL": "http://app.example/x#frag",
        "X-Original-URI": "/x#other",
        "X-Original-Method": "GET",
    }
    assert ("GET", "http", "app.example", "/x", "/x") == read(headers)


MIXED = "X-Original-* and X-Forwarded-* headers"


@pytest.mark.parametrize(
    ("headers", "why"),
    [
        # Traefik sets X-Forwarded-*; the client slipped in an X-Original-URL for another path.
        ({**TRAEFIK, "X-Original-URL": f"https://{H}/public", "X-Original-Method": "POST"},
         f"{MIXED} disagree"),
        ({**TRAEFIK, "X-Original-URI": T, "X-Original-Method": "GET"}, f"{MIXED} disagree"),
        # nginx sets X-Original-*; the client slipped in X-Forwarded-Uri.
        ({**NGINX, "X-Forwarded-Uri": "/public", "X-Forwarded-Method": "POST"},
         f"{MIXED} disagree"),
        ({**NGINX, "X-Original-URI": "/public"}, "X-Original-URL and X-Original-URI disagree"),
        ([("X-Forwarded-Uri", "/a"), ("X-Forwarded-Uri", "/b"), ("X-Forwarded-Method", "GET")],
         "repeated X-Forwarded-Uri headers disagree"),
    ],
)  # fmt: skip
def test_conflicting_targets_are_refused(
    headers: dict[str, str] | list[tuple[str, str]], why: str
) -> None:
    """Two descriptions of different requests, or repeated headers: 403, saying which."""
    with pytest.raises(Forbidden, match=f"^forward-auth: {re.escape(why)}$") as info:
        read(headers)
    assert "Conflicting forward-auth headers." == info.value.public_message


@pytest.mark.parametrize(
    ("headers", "path"),
    [
        ({"X-Original-URL": "http://app.example/a/../admin", "X-Original-Method": "GET"},
         "/a/../admin"),
        ({"X-Forwarded-Uri": "/a/%2e%2e/admin", "X-Forwarded-Method": "GET"}, "/a/%2e%2e/admin"),
    ],
)  # fmt: skip
def test_dotted_targets_are_refused(headers: dict[str, str], path: str) -> None:
    """A target with dot segments is refused (403) by the canonical-path check."""
    with pytest.raises(
        Forbidden, match=re.escape(f"path refused (a dot segment): {path!r}")
    ) as info:
        read(headers)
    assert "Path refused." == info.value.public_message
