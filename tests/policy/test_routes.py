"""Route matching: host first (exact, wildcard, any), then the longest path prefix."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.config.model import Route
from gateway.policy.canonical import PathRefused, canonical_path
from gateway.policy.routes import RouteTable, split_host


def table(*specs: tuple[str | None, str, str]) -> RouteTable:
    return RouteTable(
        [Route(name=name, host=host, path=path, upstream="http://u") for host, path, name in specs]
    )


# Built inside each test (not at import), so a change to table building is seen by it.
def routes() -> RouteTable:
    return table(
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
        ("evilexample.com", "/", "any-root"),  # a wildcard needs the dot: no suffix trick
        ("a-much-longer-host-name.test", "/", "any-root"),
        (".example.com", "/", "any-root"),  # the bare suffix is no host under it
        ("a.b.example.com", "/", "wild-root"),
        ("x.EU.example.com.", "/", "wild-eu"),
    ],
)
def test_route_choice(host: str, path: str, expected: str) -> None:
    """The table picks the most specific host, then the longest prefix."""
    route = routes().match(host, path)
    assert route is not None
    assert expected == route.name


def test_prefix_order_does_not_depend_on_config_order() -> None:
    """The longest prefix wins whatever order the routes are configured in, and the
    longest wildcard suffix wins whatever order the wildcards are in."""
    reversed_table = table(
        ("*.eu.example.com", "/", "wild-eu"),
        ("*.example.com", "/", "wild-root"),
        (None, "/api/v2/", "any-api-v2"),
        (None, "/api", "any-api"),
        (None, "/", "any-root"),
    )
    shuffled = table(
        ("*.example.com", "/", "wild-root"),
        (None, "/api", "any-api"),
        (None, "/", "any-root"),
        ("*.eu.example.com", "/", "wild-eu"),
        (None, "/api/v2/", "any-api-v2"),
    )
    for t in (reversed_table, shuffled):
        found = [
            t.match(h, p)
            for h, p in [
                ("o.test", "/api/v2/x"),
                ("o.test", "/api/x"),
                ("o.test", "/x"),
                ("x.eu.example.com", "/"),
            ]
        ]
        assert ["any-api-v2", "any-api", "any-root", "wild-eu"] == [r.name if r else None
                                                                   for r in found]  # fmt: skip


def test_routes_iterate_in_config_order_with_default_names() -> None:
    """Iterating the table yields every route once, in config order; an unnamed route is
    named by its position."""
    t = RouteTable(
        [
            Route(host="*.example.com", path="/", upstream="http://u", name="w"),
            Route(path="/b", upstream="http://u"),
            Route(host="app.example.com", path="/", upstream="http://u", name="e"),
            Route(path="/a", upstream="http://u", name="a"),
        ]
    )
    assert [(0, "w"), (1, "route1"), (2, "e"), (3, "a")] == [(r.index, r.name) for r in t]
    route = t.match("o.test", "/b/x")
    assert route is not None
    assert "route1" == route.name


@pytest.mark.parametrize(
    ("prefix", "path", "matches"),
    [
        ("/", "/anything", True),
        ("/api", "/api", True),
        ("/api", "/api/", True),
        ("/api/", "/api", True),
        ("/api/", "/api/x", True),
        ("/api/", "/apix", False),
        ("/api", "/apix", False),
        ("/api", "/", False),
        ("/api/v2/", "/api/v2x", False),
    ],
)
def test_a_prefix_matches_whole_segments(prefix: str, path: str, matches: bool) -> None:
    """A prefix guards itself, with or without its trailing slash, and what is below it."""
    route = RouteTable([Route(path=prefix, upstream="http://u")]).match("h", path)
    assert matches == (route is not None)


def test_no_match_is_none() -> None:
    """With no catch-all route, an unknown host gets no route (the proxy answers 404)."""
    routes = table(("app.example.com", "/", "app"))
    assert routes.match("other.test", "/") is None


@pytest.mark.parametrize(
    ("header", "host"),
    [
        ("a.test:8080", "a.test"),
        ("a.test", "a.test"),
        ("[::1]:8080", "::1"),
        ("[::1]", "::1"),
        ("::1", "::1"),
        ("[::1", "[::1"),
        ("[]", ""),
        ("[::1]]", "::1"),
        ("a:b:c", "a:b:c"),
        (" a.test:80 ", "a.test"),
    ],
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


def test_without_strip_prefix_the_whole_path_goes_upstream() -> None:
    """Without strip_prefix (and on a '/' route with it) the canonical path is sent whole."""
    kept = RouteTable([Route(path="/svc/", upstream="http://u")]).match("h", "/svc/a")
    assert kept is not None
    assert "/svc/a" == kept.upstream_path(canonical_path("/svc/a"))
    root = RouteTable([Route(path="/", upstream="http://u", strip_prefix=True)]).match("h", "/a")
    assert root is not None
    assert "/a/b" == root.upstream_path(canonical_path("/a/b"))
    deep = RouteTable([Route(path="/a/b/", upstream="http://u", strip_prefix=True)])
    route = deep.match("h", "/a/b/c")
    assert route is not None
    assert "/c" == route.upstream_path(canonical_path("/a/b/c"))


@given(host=st.text(max_size=60), path=st.text(max_size=200))
def test_matching_any_host_and_path_returns_a_route_or_none(host: str, path: str) -> None:
    """Route matching is total: any host and path give a route or None, never an error."""
    route = routes().match(host, "/" + path)
    assert route is None or route.matches_path("/" + path)


def secured() -> RouteTable:
    return table((None, "/", "public"), (None, "/admin", "admin"), (None, "/docs/", "docs"))


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
    route = secured().resolve("h", canonical_path(path))
    assert route is not None
    assert expected == route.name


def test_a_reading_that_reaches_a_protected_route_is_refused_and_logged() -> None:
    """A path some upstream reads as another route's with checks of its own is refused,
    and the log says which reading and which routes."""
    t = RouteTable(
        [
            Route(name="public", path="/", upstream="http://u", auth="public"),
            Route(name="admin", path="/admin", upstream="http://u", auth="login"),
        ]
    )
    with pytest.raises(PathRefused) as info:
        t.resolve("h", canonical_path("/ADMIN/x"))
    assert "path '/ADMIN/x' reads as '/admin/x' upstream, which is route admin, not public" == (
        str(info.value)
    )
    long = "/ADMIN/" + "x" * 300
    with pytest.raises(PathRefused) as cut:
        t.resolve("h", canonical_path(long))
    assert str(cut.value).startswith(f"path {long[:200]!r} reads as {long.lower()[:200]!r} ")


def test_a_reading_that_reaches_only_public_routes_passes() -> None:
    """Another reading that lands on an unrestricted (public, no policy) route gains
    nothing: the request goes through its own route."""
    t = RouteTable(
        [
            Route(name="public", path="/", upstream="http://u", auth="public"),
            Route(name="docs", path="/docs", upstream="http://u", auth="public"),
            Route(name="admin", path="/admin", upstream="http://u", auth="login"),
        ]
    )
    route = t.resolve("h", canonical_path("/DOCS/x"))
    assert route is not None
    assert "public" == route.name
    admin = t.resolve("H.", canonical_path("/admin/x"))
    assert admin is not None
    assert "admin" == admin.name


def test_host_specific_readings_are_judged_on_their_own_host() -> None:
    """A reading is matched on the request's host: another host's protected route does not
    make this host's path ambiguous, this host's does."""
    t = RouteTable(
        [
            Route(name="public", path="/", upstream="http://u", auth="public"),
            Route(name="admin-a", host="a.test", path="/admin", upstream="http://u", auth="login"),
            Route(name="public-a", host="a.test", path="/", upstream="http://u", auth="public"),
        ]
    )
    route = t.resolve("b.test", canonical_path("/ADMIN"))
    assert route is not None
    assert "public" == route.name
    with pytest.raises(PathRefused, match="which is route admin-a, not public-a"):
        t.resolve("a.test", canonical_path("/ADMIN"))


def test_prefixes_with_capital_x_and_slashes_are_cut_exactly() -> None:
    """A prefix is compared as written: /BOX/ does not guard /BO, and strip_prefix cuts
    exactly its segments (/a/X/ from /a/X/c leaves /c)."""
    box = RouteTable([Route(path="/BOX/", upstream="http://u", case_sensitive=True)])
    assert box.match("h", "/BO") is None
    t = RouteTable([Route(path="/a/X/", upstream="http://u", strip_prefix=True)])
    route = t.match("h", "/a/X/c")
    assert route is not None
    assert "/c" == route.upstream_path(canonical_path("/a/X/c"))


def test_a_case_sensitive_route_is_judged_by_its_own_readings_only() -> None:
    """A route that declares a case-sensitive upstream is not refused because its path,
    folded, would be another protected route's: that upstream never folds case."""
    t = RouteTable(
        [
            Route(name="API", path="/API", upstream="http://u", auth="bearer", case_sensitive=True),
            Route(name="api", path="/api", upstream="http://u", auth="login"),
        ]
    )
    route = t.resolve("h", canonical_path("/API/x"))
    assert route is not None
    assert "API" == route.name


@pytest.mark.parametrize(
    ("prefix", "case_sensitive", "raw", "below"),
    [
        ("/App/", False, "/App/Admin/x", ("/Admin/x", "/admin/x")),
        ("/App/", True, "/App/Admin/x", ("/Admin/x",)),
        ("/App", False, "/App", ("/",)),
        ("/App/", False, "/app/", ("/",)),
        ("/App/", False, "/Apple", ("/Apple", "/apple")),
        ("/", False, "/x/Y", ("/x/Y", "/x/y")),
        ("/App/", False, "/APP/x.", ("/x.", "/x")),
        ("/App/", False, "/App/%2561dmin", ("/%61dmin", "/admin")),
        ("/boX/", True, "/boX/in", ("/in",)),
    ],
)
def test_policy_paths_are_the_paths_below_the_prefix_in_every_reading(
    prefix: str, case_sensitive: bool, raw: str, below: tuple[str, ...]
) -> None:
    """Path conditions see the path below the route's prefix (any case of the prefix),
    once for each reading an upstream may act on (case folded unless the route is
    case-sensitive, dots trimmed, decoded twice), each reading once."""
    route = next(
        iter(RouteTable([Route(path=prefix, upstream="http://u", case_sensitive=case_sensitive)]))
    )
    assert below == route.paths_below(canonical_path(raw))


@pytest.mark.parametrize(
    ("policy", "open_policy"),
    [
        ({}, True),
        ({"methods": ["GET"]}, False),
        ({"groups": ["staff"]}, False),
        ({"scopes_all": ["read"]}, False),
        ({"client_ids": ["app"]}, False),
        ({"deny": [{"path": {"prefix": "/archive"}}]}, False),
    ],
)
def test_only_a_route_without_any_requirement_has_an_open_policy(
    policy: dict[str, object], open_policy: bool
) -> None:
    route = Route(path="/", upstream="http://u", auth="bearer", policy=policy)
    compiled = next(iter(RouteTable([route])))
    assert compiled.open_policy is open_policy
    # Only a public route without requirements may be reached under another reading.
    assert compiled.unrestricted is False
