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
from gateway.policy.canonical import PathRefused, canonical_host, canonical_path, host_name
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


DOT = "a dot segment"
SLASH = "an encoded slash or a backslash"
CONTROL = "a control character"
ESCAPE = "malformed percent escape"
NOT_UTF8 = "not UTF-8"
NOT_PATH = "not an origin-form path"


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("/x/..;/admin/secret", DOT),  # Tomcat reads /admin/secret
        ("/x/%2e%2e;/admin/secret", DOT),
        ("/x/..;foo=bar/admin/secret", DOT),
        ("/x/.;/admin", DOT),
        ("/x/../admin", DOT),
        ("/x/%2E%2e/admin", DOT),
        ("/x/./admin", DOT),
        ("/a%2Fb", SLASH),  # an encoded slash: one segment to us, two to some upstreams
        ("/a%5cb", SLASH),
        ("/a\\b", SLASH),
        ("/a%00b", CONTROL),
        ("/a%0d%0ab", CONTROL),
        ("/a%7Fb", CONTROL),  # DEL
        ("/a%C2%80b", CONTROL),  # C1 controls U+0080..U+009F
        ("/a%C2%9Fb", CONTROL),
        ("/a%", ESCAPE),
        ("/a%zz", ESCAPE),
        ("/a%ff", NOT_UTF8),
        ("/a\udcffb", NOT_UTF8),  # an undecodable byte the server kept as a surrogate
        ("*", NOT_PATH),
        ("http://evil/x", NOT_PATH),
        ("relative", NOT_PATH),
    ],
)
def test_refused(raw: str, why: str) -> None:
    """What cannot be read one way is a 400, not a guess; the log says which check refused."""
    with pytest.raises(PathRefused) as info:
        canonical_path(raw)
    assert f"path refused ({why}): {raw!r}" == str(info.value)


def test_a_refused_long_path_is_logged_cut_at_200_characters() -> None:
    """Only the first 200 characters of a refused path reach the log."""
    raw = "/" + "a" * 300 + "/%2F"
    with pytest.raises(PathRefused) as info:
        canonical_path(raw)
    assert f"path refused ({SLASH}): {raw[:200]!r}" == str(info.value)


@pytest.mark.parametrize("raw", ["/a%C2%A0b", "/a%7Eb", "/caf%C3%A9"])
def test_printable_non_ascii_is_accepted(raw: str) -> None:
    """A no-break space (U+00A0, the first after the C1 controls) and letters pass."""
    assert canonical_path(raw).decoded.startswith("/")


@pytest.mark.parametrize(
    ("raw", "readings", "folded"),
    [
        ("/admin", (), ()),
        ("/Admin.", ("/Admin",), ("/admin.", "/admin")),  # IIS trims, Express folds
        ("/a%252F%252Fb", ("/a/b",), ("/a%2f%2fb",)),  # decoded twice, slashes merged
        ("/BOX.", ("/BOX",), ("/box.", "/box")),  # only dots and spaces are trimmed
        ("/admin%20/x", ("/admin/x",), ()),  # a trailing space inside the path too
        ("/admin.", ("/admin",), ()),  # the path itself is never one of its readings
        # A second decoding hop (nginx $uri into Tomcat): ';' dropped, '\\' as '/', dots resolved.
        ("/a%3Bx/b", ("/a/b",), ()),
        ("/%252e%252e/admin", ("/../admin", "/admin"), ()),
        ("/%252e/admin", ("/./admin", "/admin"), ()),
        ("/a%255Cb", ("/a\\b", "/a/b"), ("/a%5cb",)),
        ("/a%253B/", ("/a;/", "/a/"), ("/a%3b/",)),
        ("/A%2561", ("/Aa",), ("/a%61", "/aa")),
        # NFKC (fullwidth letters, '/' and '.'), then slashes merged and dots resolved.
        ("/a%EF%BC%8F%EF%BC%8Fb", ("/a/b",), ()),
        ("/x/\uff0e\uff0e/admin", ("/x/../admin", "/x/admin", "/admin"), ()),
        (
            "/\uff21\uff24\uff2d\uff29\uff2e",
            ("/ADMIN",),
            ("/\uff41\uff44\uff4d\uff49\uff4e", "/admin"),
        ),
    ],
)
def test_other_readings_are_listed_once_without_the_path_itself(
    raw: str, readings: tuple[str, ...], folded: tuple[str, ...]
) -> None:
    """Each reading an upstream may apply is listed once, case-kept and folded apart."""
    path = canonical_path(raw)
    assert (readings, folded) == (path.readings, path.folded)
    assert readings == path.readings_for(case_sensitive=True)
    assert readings + folded == path.readings_for(case_sensitive=False)


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
    "value",
    ["", "www.a.test, admin.a.test", "[x", "a@b", "a b", "x:99999", "x:", "a/b", "x:0", "x:65536",
     "...", "." + "a" * 200],
)  # fmt: skip
def test_unusable_host_is_bad_request(value: str) -> None:
    """Two hosts, user info, a broken literal, port 0 or over 65535, only dots: 400, never
    one of several readings; the log quotes at most 100 characters of it."""
    with pytest.raises(BadRequest) as info:
        canonical_host(value)
    assert "The Host header is malformed." == info.value.public_message
    assert f"unusable host {value[:100]!r}" == str(info.value)


@pytest.mark.parametrize(("value", "host"), [("x:1", "x:1"), ("x:65535", "x:65535")])
def test_every_real_port_is_accepted(value: str, host: str) -> None:
    """Ports 1 to 65535 are hosts' ports."""
    assert host == canonical_host(value)


@pytest.mark.parametrize(
    ("host", "name"),
    [("example.com", "example.com"), ("example.com:8443", "example.com"), ("[::1]", "::1"),
     ("[::1]:8080", "::1"), ("10.0.0.1:80", "10.0.0.1")],
)  # fmt: skip
def test_host_name_drops_port_and_brackets(host: str, name: str) -> None:
    """The name part of a canonical host: no port, no IPv6 brackets."""
    assert name == host_name(host)


def secured() -> RouteTable:
    return RouteTable(
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
        "/%EF%BC%8Fadmin/secret",  # fullwidth '/': NFKC reads //admin, merged /admin
        "/x/%EF%BC%8E%EF%BC%8E/admin/secret",  # fullwidth '..': NFKC reads /x/../admin
        "/x/%252e%252e/admin/secret",  # nginx `$uri` into Tomcat decodes twice
        "/x/.%252e/admin/secret",
        "/admin%3bx/secret",  # a decoded ';' becomes a parameter at the next hop
        "/x/..%3b/admin/secret",
        # NFKC and a second decoding on one chain, in either order (an outside attack):
        "/x/%E2%80%A5/%2561dmin",  # NFKC of the two-dot leader, then decoded: /x/../admin
        "/%EF%BC%8F%2561dmin",  # NFKC of a fullwidth slash, then decoded: //admin
        "/%EF%BD%81%2564min",
        "/x/%25E2%2580%25A5/admin",  # the two-dot leader decoded at the second hop, then NFKC
        "/%25EF%25BC%258Fadmin",
        "/x/%25EF%25BC%258F/..%25EF%25BC%258Fadmin",
        "/%EF%BC%85%36%31dmin",  # a fullwidth '%' folds to an escape of 'a'
        # A decoded or folded '?' or '#' ends the path at a hop that re-reads the target
        # (nginx `proxy_pass ...$uri`; an outside attack):
        "/admin%3Fdelete=1",
        "/admin%23",
        "/admin%3F/x",
        "/admin%EF%BC%9F",  # fullwidth question mark
        "/admin%EF%B9%96",  # small question mark
        "/admin%EF%BC%83",  # fullwidth number sign
        "/%EF%BD%81dmin%3F",
    ],
)
def test_readings_of_a_protected_route_are_refused(raw: str) -> None:
    """A path some upstream reads as a protected route's never passes through a laxer one."""
    with pytest.raises(PathRefused, match="upstream, which is route admin, not "):
        secured().resolve("h", canonical_path(raw))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("/admin/x", "admin"),
        ("/Static/logo.png", "public"),  # another reading is public too: nothing to gain
        ("/administrator", "public"),  # prefixes match whole segments
        ("/%252561dmin", "public"),  # /admin only after three decodings: no modelled chain
        ("/api/x", "public"),  # /API declares a case-sensitive upstream
    ],
)
def test_readings_that_gain_nothing_pass(raw: str, expected: str) -> None:
    """Mixed case is refused only where it would reach a route with checks of its own."""
    route = secured().resolve("h", canonical_path(raw))
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


def _nfkc_nginx(path: str) -> str:
    # An NFKC-folding hop in front of one that merges slashes and resolves dot segments.
    merged = "/" + "/".join(s for s in _nfkc(path).split("/") if s)
    return _dots(merged)


def _nginx_uri_to_nfkc_app(path: str) -> str:
    # `proxy_pass http://app$uri` into an app that decodes and NFKC-folds (IIS-like).
    return _nfkc_nginx(unquote(path))


def _nginx_uri_reread(path: str) -> str:
    # `proxy_pass http://app$uri`: the decoded path is sent as a target again, so a
    # decoded '?' or '#' ends its path there.
    return _nginx(unquote(path).partition("?")[0].partition("#")[0])


def _nfkc_hop_to_nginx(path: str) -> str:
    # A hop that decodes and NFKC-folds, forwarding to nginx, which decodes again.
    return _nginx(unicodedata.normalize("NFKC", unquote(path)))


def _nginx_uri_to_tomcat(path: str) -> str:
    # `proxy_pass http://tomcat$uri`: nginx decodes once, Tomcat strips ';' and decodes again.
    return _tomcat(unquote(path))


UPSTREAMS: dict[str, Callable[[str], str]] = {
    "tomcat": _tomcat,
    "nginx $uri to tomcat": _nginx_uri_to_tomcat,
    "express": _express,
    "nginx": _nginx,
    "iis": _iis,
    "nfkc": _nfkc,
    "nfkc then nginx": _nfkc_nginx,
    "nginx $uri to an nfkc app": _nginx_uri_to_nfkc_app,
    "nfkc hop to nginx": _nfkc_hop_to_nginx,
    "nginx $uri re-read as a target": _nginx_uri_reread,
}
PIECES = [
    "/", "admin", "ADMIN", "Admin", "dmin", ".", "..", ";", ";x=1", "%2e", "%2E", "%2f",
    "%25", "%61", "%2561", "%20", " ", "a", "\uff41", "%EF%BD%81", "x", "static", "api", "API",
    "\\", "%5c", "%00", "%3b", "..;", "%252e", "%253b", "%252f", "\uff0f", "%EF%BC%8F",
    "\uff0e", "%EF%BC%8E", "\u2025", "%E2%80%A5", "%25E2%2580%25A5", "%25EF%25BC%258F",
    "\uff05", "%EF%BC%85", "%36%31", "%2564", "%3F", "%23", "%EF%BC%9F",
]  # fmt: skip


@settings(max_examples=3000, deadline=None)
@given(pieces=st.lists(st.sampled_from(PIECES), max_size=8))
def test_never_laxer_than_any_modelled_upstream(pieces: list[str]) -> None:
    """For any path the gateway lets through route R, no modelled upstream resolves what it
    receives to a resource of another route with checks of its own."""
    raw = "/" + "".join(pieces)
    table = secured()
    try:
        path = canonical_path(raw)
        route = table.resolve("h", path)
    except PathRefused:
        return
    assert route is not None
    for name, reading in UPSTREAMS.items():
        if name in ("express", "iis") and route.config.case_sensitive:
            continue
        served = table.match("h", reading(path.encoded))
        assert served is None or served is route or served.unrestricted, (
            f"{raw!r} passed as {route.name}; {name} serves {reading(path.encoded)!r} "
            f"of route {served.name}"
        )


@pytest.mark.parametrize(
    ("raw", "reading", "only_folded"),
    [
        ("/adm%C4%B1n", "/admin", True),  # U+0131: Java's equalsIgnoreCase reads i
        ("/adm%C4%B0n", "/admin", True),  # U+0130 (lower() gives i + a combining dot)
        ("/%C5%BFecret", "/secret", False),  # long s, U+017F (NFKC-folds to s as well)
        ("/x/%E2%84%AAey", "/x/key", True),  # Kelvin K lower-cases to k (NFKC gives K)
        ("/pa%C3%9Fword", "/password", True),  # U+00DF: casefold and toUpperCase give ss
        ("/PA%E1%BA%9EWORD", "/password", True),  # U+1E9E, capital sharp s
    ],
)
def test_java_case_insensitive_readings_are_among_the_folded_ones(
    raw: str, reading: str, only_folded: bool
) -> None:
    path = canonical_path(raw)
    assert reading in path.readings_for(case_sensitive=False)
    assert (reading not in path.readings_for(case_sensitive=True)) is only_folded
