"""Route matching: host first (exact, wildcard, any), then the longest path prefix."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.config.model import Route
from gateway.policy.canonical import canonical_path
from gateway.policy.routes import RouteTable, split_host


def table(*specs: tuple[str | None, str, str]) -> RouteTable:
    return RouteTable(
        [Route(name=name, host=host, path=path, upstream="http://u") for host, path, name in specs]
    )


ROUTES = table(
    (None, "/", "any-root"),
    (None, "/api", "any-api"),
    (None, "/api/v2/", "any-api-v2"),
    ("app.example.com", "/", "app-root"),
    ("app.example.com", "/admin", "app-admin"),
    ("*.example.com", "/", "wild-root"),
    ("*.eu.example.com", "/", "wild-eu"),
)


@pytest.mark.parametrize(
    ("host", "path", "expected"),
    [
        ("other.test", "/", "any-root"),
        ("other.test", "/api", "any-api"),
        ("other.test", "/api/x", "any-api"),
        ("other.test", "/apix", "any-root"),  # a prefix matches whole segments only
        ("other.test", "/api/v2/items", "any-api-v2"),
        ("other.test", "/api/v2", "any-api-v2"),  # "/api/v2/" also guards "/api/v2"
        ("app.example.com", "/admin/users", "app-admin"),
        ("APP.example.com", "/x", "app-root"),  # hosts compare case-insensitively
        ("app.example.com.", "/x", "app-root"),  # a trailing dot is the same host
        ("api.example.com", "/", "wild-root"),
        ("x.eu.example.com", "/", "wild-eu"),  # the longer wildcard suffix wins
        ("example.com", "/", "any-root"),  # *.example.com does not match the apex
        ("app.example.com", "/api", "app-root"),  # host-specific beats a longer any-host prefix
    ],
)
def test_route_choice(host: str, path: str, expected: str) -> None:
    """The table picks the most specific host, then the longest prefix."""
    route = ROUTES.match(host, path)
    assert route is not None
    assert expected == route.name


def test_no_match_is_none() -> None:
    """With no catch-all route, an unknown host gets no route (the proxy answers 404)."""
    routes = table(("app.example.com", "/", "app"))
    assert routes.match("other.test", "/") is None


@pytest.mark.parametrize(
    ("header", "host"),
    [("a.test:8080", "a.test"), ("a.test", "a.test"), ("[::1]:8080", "::1"), ("[::1]", "::1")],
)
def test_split_host(header: str, host: str) -> None:
    """The Host header's port and IPv6 brackets are not part of the host name."""
    assert host == split_host(header)


def test_strip_prefix() -> None:
    """With strip_prefix the upstream sees the canonical path below the matched prefix."""
    route = RouteTable([Route(path="/svc", upstream="http://u", strip_prefix=True)]).match(
        "h", "/svc/a/b"
    )
    assert route is not None
    assert route.upstream_path(canonical_path("/svc/a/b")) == "/a/b"
    assert route.upstream_path(canonical_path("/svc")) == "/"
    # Cut by segments of the canonical path, not by the raw length: '//svc/admin' is
    # '/svc/admin', and the upstream must get '/admin' (it used to get '/c/admin').
    assert route.upstream_path(canonical_path("//svc/admin")) == "/admin"
    assert route.upstream_path(canonical_path("/svc;v=1/a%20b")) == "/a%20b"


@given(host=st.text(max_size=60), path=st.text(max_size=200))
def test_matching_any_host_and_path_returns_a_route_or_none(host: str, path: str) -> None:
    """Route matching is total: any host and path give a route or None, never an error."""
    route = ROUTES.match(host, "/" + path)
    assert route is None or route.matches_path("/" + path)


SECURED = table(
    (None, "/", "public"),
    (None, "/admin", "admin"),
    (None, "/docs/", "docs"),
)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("//admin/x", "admin"),  # nginx merges slashes: it serves /admin/x
        ("/admin;jsessionid=1/x", "admin"),  # Tomcat drops ;params: it serves /admin/x
        ("/admin;x=1", "admin"),
        ("///admin", "admin"),
        ("/docs", "docs"),  # a '/docs/' prefix also guards '/docs'
        ("/docs;x/y", "docs"),
        ("/adminx", "public"),
        ("/public//page", "public"),
    ],
)
def test_lenient_readings_never_reach_a_laxer_route(path: str, expected: str) -> None:
    """A path the upstream would read as a protected one matches the protected route."""
    route = SECURED.resolve("h", canonical_path(path))
    assert route is not None
    assert expected == route.name
