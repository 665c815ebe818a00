"""The canonical request target: one reading of path and host, never laxer than an upstream's."""

from __future__ import annotations

import posixpath
import unicodedata
from collections.abc import Callable
from urllib.parse import unquote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.config.model import Route
from gateway.errors import BadRequest
from gateway.policy.canonical import PathRefused, canonical_host, canonical_path
from gateway.policy.routes import RouteTable


@pytest.mark.parametrize(
    ("raw", "encoded", "decoded"),
    [
        ("/", "/", "/"),
        ("/app/page.html", "/app/page.html", "/app/page.html"),
        ("//svc//admin/", "/svc/admin/", "/svc/admin/"),  # slashes merged, as nginx does
        ("/a;jsessionid=1/b", "/a/b", "/a/b"),  # parameters dropped, as Tomcat does
        ("/;x/admin", "/admin", "/admin"),
        ("/a%3Bb", "/a%3Bb", "/a;b"),  # an encoded ';' is data and stays encoded upstream
        ("/%7euser/%41", "/~user/A", "/~user/A"),  # unreserved characters decoded
        ("/a b/ü", "/a%20b/%C3%BC", "/a b/ü"),
        ("/x%25y", "/x%25y", "/x%y"),
        ("/a#frag", "/a", "/a"),
    ],
)
def test_canonical_form(raw: str, encoded: str, decoded: str) -> None:
    """The upstream receives one re-encoded form; routes match its decoded form."""
    path = canonical_path(raw)
    assert (encoded, decoded) == (path.encoded, path.decoded)


@pytest.mark.parametrize(
    "raw",
    [
        "/x/..;/admin/secret",  # Tomcat reads /admin/secret
        "/x/%2e%2e;/admin/secret",
        "/x/..;foo=bar/admin/secret",
        "/x/.;/admin",
        "/x/../admin",
        "/x/%2E%2e/admin",
        "/x/./admin",
        "/a%2Fb",  # an encoded slash: one segment to us, two to some upstreams
        "/a%5cb",
        "/a\\b",
        "/a%00b",
        "/a%0d%0ab",
        "/a%",  # malformed escape
        "/a%zz",
        "/a%ff",  # not UTF-8
        "*",
        "http://evil/x",
        "relative",
    ],
)
def test_refused(raw: str) -> None:
    """What cannot be read one way is a 400, not a guess."""
    with pytest.raises(PathRefused):
        canonical_path(raw)


@pytest.mark.parametrize(
    ("value", "host"),
    [
        ("Example.COM", "example.com"),
        ("example.com.", "example.com"),
        ("example.com.:8443", "example.com:8443"),
        ("[::1]:8080", "[::1]:8080"),
        ("10.0.0.1", "10.0.0.1"),
    ],
)
def test_canonical_host(value: str, host: str) -> None:
    """Hosts compare in lower case, without a trailing dot, port kept."""
    assert host == canonical_host(value)


@pytest.mark.parametrize(
    "value", ["", "www.a.test, admin.a.test", "[x", "a@b", "a b", "x:99999", "x:", "a/b"]
)
def test_unusable_host_is_bad_request(value: str) -> None:
    """Two hosts, user info, a broken literal: 400, never one of several readings."""
    with pytest.raises(BadRequest):
        canonical_host(value)


SECURED = RouteTable(
    [
        Route(name="public", path="/", upstream="http://u", auth="public"),
        Route(name="admin", path="/admin", upstream="http://u", auth="login"),
        Route(name="static", path="/static", upstream="http://u", auth="public"),
        Route(name="api", path="/API", upstream="http://u", auth="bearer", case_sensitive=True),
    ]
)


@pytest.mark.parametrize(
    "raw",
    [
        "/ADMIN/secret",  # Express and IIS fold case
        "/Admin",
        "/admin.",  # IIS trims trailing dots and spaces
        "/admin%20",
        "/admin./x",
        "/%2561dmin",  # an upstream decoding twice reads /admin
        "/%EF%BD%81dmin",  # fullwidth 'a': NFKC folds it to /admin
        "/%EF%BC%A1DMIN",
    ],
)
def test_readings_of_a_protected_route_are_refused(raw: str) -> None:
    """A path some upstream reads as a protected route's never passes through a laxer one."""
    with pytest.raises(PathRefused):
        SECURED.resolve("h", canonical_path(raw))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("/admin/x", "admin"),
        ("/Static/logo.png", "public"),  # another reading is public too: nothing to gain
        ("/administrator", "public"),  # prefixes match whole segments
        ("/api/x", "public"),  # /API declares a case-sensitive upstream
    ],
)
def test_readings_that_gain_nothing_pass(raw: str, expected: str) -> None:
    """Mixed case is refused only where it would reach a route with checks of its own."""
    route = SECURED.resolve("h", canonical_path(raw))
    assert route is not None
    assert expected == route.name


# Models of how common upstreams resolve the path they receive (the canonical, encoded one).
def _dots(path: str) -> str:
    resolved = posixpath.normpath(path) if path else "/"
    return resolved + ("/" if path.endswith("/") and resolved != "/" else "")


def _tomcat(path: str) -> str:
    no_params = "/".join(s.partition(";")[0] for s in path.split("/"))
    return _dots(unquote(no_params))


def _express(path: str) -> str:
    return unquote(path).lower()


def _nginx(path: str) -> str:
    merged = "/" + "/".join(s for s in unquote(path).split("/") if s)
    return _dots(merged)


def _iis(path: str) -> str:
    twice = unquote(unquote(path)).replace("\\", "/")
    return "/".join(s.rstrip(". ") for s in twice.split("/")).lower()


def _nfkc(path: str) -> str:
    return unicodedata.normalize("NFKC", unquote(path))


UPSTREAMS: dict[str, Callable[[str], str]] = {
    "tomcat": _tomcat,
    "express": _express,
    "nginx": _nginx,
    "iis": _iis,
    "nfkc": _nfkc,
}
PIECES = [
    "/", "admin", "ADMIN", "Admin", "dmin", ".", "..", ";", ";x=1", "%2e", "%2E", "%2f",
    "%25", "%61", "%2561", "%20", " ", "a", "\uff41", "%EF%BD%81", "x", "static", "api", "API",
    "\\", "%5c", "%00", "%3b", "..;",
]  # fmt: skip


@settings(max_examples=3000, deadline=None)
@given(pieces=st.lists(st.sampled_from(PIECES), max_size=8))
def test_never_laxer_than_any_modelled_upstream(pieces: list[str]) -> None:
    """For any path the gateway lets through route R, no modelled upstream resolves what it
    receives to a resource of another route with checks of its own."""
    raw = "/" + "".join(pieces)
    try:
        path = canonical_path(raw)
        route = SECURED.resolve("h", path)
    except PathRefused:
        return
    assert route is not None
    for name, reading in UPSTREAMS.items():
        if name in ("express", "iis") and route.config.case_sensitive:
            continue
        served = SECURED.match("h", reading(path.encoded))
        assert served is None or served is route or served.unrestricted, (
            f"{raw!r} passed as {route.name}; {name} serves {reading(path.encoded)!r} "
            f"of route {served.name}"
        )
