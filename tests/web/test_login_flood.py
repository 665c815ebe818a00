"""Login starts under attack: floods, reuse of a browser's pending login, cookie planting."""

from __future__ import annotations

from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
import redis

from tests.support.login import HTML_ACCEPT, http_login
from tests.support.op import OidcProvider
from tests.support.redis import RedisServer
from tests.web.login_setup import start_login_gateway

RATE = 12  # login starts per client address and minute in these tests
FLOOD = 60


def jar() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


def login_keys(server: RedisServer, prefix: str) -> list[bytes]:
    return list(redis.Redis.from_url(server.url).scan_iter(match=f"{prefix}login:*"))


async def seen_by_upstream(session: aiohttp.ClientSession, url: str) -> str | None:
    """The user the upstream was told about (X-Auth-Request-User), None if not reached."""
    async with session.get(url, headers={"Accept": "application/json"}) as response:
        if response.status != 200:
            return None
        body = await response.json()
    user: str | None = body["headers"].get("X-Auth-Request-User")
    return user


@pytest.mark.parametrize("store", ["memory", "redis"])
async def test_login_start_flood_never_evicts_a_session(
    gateway_factory: Any,
    oidc_provider: OidcProvider,
    upstream: str,
    request: pytest.FixtureRequest,
    store: str,
) -> None:
    """A flood of unauthenticated navigations from one address gets 429s past the login-start
    budget, writes at most that many login states (counted in the real Redis), and never
    evicts a signed-in user's session (the memory store's session table holds 8 entries)."""
    sessions: dict[str, Any] = {"cache_ttl": 0, "max_login_states": 4, "memory_max_entries": 8}
    prefix = f"flood-{store}:"
    server: RedisServer | None = None
    if store == "redis":
        server = request.getfixturevalue("redis_server")
        sessions.update(store="redis", redis={"url": server.url, "key_prefix": prefix})
    gw, _ = start_login_gateway(
        gateway_factory,
        oidc_provider,
        upstream,
        sessions=sessions,
        extra={"rate_limit": {"enabled": True, "per_minute": RATE}},
    )
    async with jar() as user:
        await http_login(user, f"{gw.url}/", user="alice")
        assert await seen_by_upstream(user, f"{gw.url}/before") == "alice"
        statuses: list[int] = []
        async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as flooder:
            for i in range(FLOOD):
                async with flooder.get(
                    f"{gw.url}/page/{i}", headers={"Accept": HTML_ACCEPT}, allow_redirects=False
                ) as response:
                    statuses.append(response.status)
                    last_page = await response.text()
        assert await seen_by_upstream(user, f"{gw.url}/after") == "alice"
        assert set(statuses) == {302, 429}
        assert statuses.count(302) <= RATE
        assert statuses[-1] == 429
        assert "Too many sign-ins" in last_page
        if server is not None:
            assert 0 < len(login_keys(server, prefix)) <= RATE


async def test_a_pending_login_is_reused_not_rewritten(
    gateway_factory: Any, oidc_provider: OidcProvider, upstream: str, redis_server: RedisServer
) -> None:
    """Navigations of one browser with a login pending send the same state and leave one login
    state in Redis; the login then lands on the page asked for last. A made-up binding cookie
    is not adopted."""
    prefix = "reuse:"
    gw, _ = start_login_gateway(
        gateway_factory,
        oidc_provider,
        upstream,
        sessions={"store": "redis", "redis": {"url": redis_server.url, "key_prefix": prefix}},
    )
    async with jar() as browser:
        states = set()
        for page in ("a", "b", "c"):
            async with browser.get(
                f"{gw.url}/{page}", headers={"Accept": HTML_ACCEPT}, allow_redirects=False
            ) as response:
                assert response.status == 302
                states |= set(parse_qs(urlsplit(response.headers["Location"]).query)["state"])
        assert len(states) == 1
        assert len(login_keys(redis_server, prefix)) == 1
        landed = await http_login(browser, f"{gw.url}/d?x=1", user="dora")
        assert str(landed.url) == f"{gw.url}/d?x=1"
        assert login_keys(redis_server, prefix) == []
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as forger:
        async with forger.get(
            f"{gw.url}/",
            headers={"Accept": HTML_ACCEPT, "Cookie": "gateway_session_login=chosen-by-me"},
            allow_redirects=False,
        ) as response:
            cookie = SimpleCookie(response.headers["Set-Cookie"])
            assert cookie["gateway_session_login"].value != "chosen-by-me"


@pytest.mark.parametrize("secure", [True, False])
async def test_binding_cookie_is_host_only_whatever_cookie_domain_says(
    gateway_factory: Any, oidc_provider: OidcProvider, upstream: str, secure: bool
) -> None:
    """With sessions.cookie_domain set, the login-binding cookie the gateway sends has no Domain
    (and the __Host- prefix when Secure), so a sibling subdomain cannot plant one."""
    gw, _ = start_login_gateway(
        gateway_factory,
        oidc_provider,
        upstream,
        sessions={"cookie_secure": secure, "cookie_domain": "apps.example.test"},
    )
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as browser:
        async with browser.get(
            f"{gw.url}/", headers={"Accept": HTML_ACCEPT}, allow_redirects=False
        ) as response:
            assert response.status == 302
            (header,) = response.headers.getall("Set-Cookie")
    (morsel,) = SimpleCookie(header).values()
    expected = ("__Host-" if secure else "") + "gateway_session_login"
    assert morsel.key == expected
    assert "domain" not in header.lower()
    assert morsel["path"] == "/"
    assert bool(morsel["secure"]) is secure


async def test_a_session_cookie_sent_twice_is_trusted_with_neither(
    gateway_factory: Any, oidc_provider: OidcProvider, upstream: str
) -> None:
    """Two session cookies in one request (one planted by a sibling domain) reach the upstream
    as nobody: an API call gets 401, a navigation a 400 page rather than a login loop."""
    gw, _ = start_login_gateway(gateway_factory, oidc_provider, upstream)
    tickets = []
    for name in ("victor", "mallory"):
        async with jar() as session:
            await http_login(session, f"{gw.url}/", user=name)
            assert await seen_by_upstream(session, f"{gw.url}/me") == name
            (ticket,) = (c.value for c in session.cookie_jar if c.key == "gateway_session")
            tickets.append(ticket)
    both = "; ".join(f"gateway_session={t}" for t in tickets)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as browser:
        async with browser.get(
            f"{gw.url}/x", headers={"Accept": "application/json", "Cookie": both}
        ) as response:
            assert response.status == 401
        async with browser.get(
            f"{gw.url}/x", headers={"Accept": HTML_ACCEPT, "Cookie": both}, allow_redirects=False
        ) as response:
            assert response.status == 400
            assert "more than one sign-in cookie" in await response.text()
