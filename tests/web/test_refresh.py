"""Access-token refresh: once per session, across instances; provider outages keep sessions."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from tests.support.login import http_login
from tests.support.op import OidcProvider
from tests.support.redis import RedisServer
from tests.web.login_setup import start_login_gateway

# The OP's access tokens live 3600 s: refreshing when fewer than 3599 s are left means
# "refresh once a second has passed", and a fresh token is not refreshed again at once.
REFRESH_BEFORE = 3599


def refreshes(*logs: str) -> int:
    return sum(log.count('"message":"session refreshed"') for log in logs)


async def test_concurrent_requests_across_two_instances_refresh_once(
    gateway_factory: Any, oidc_provider: OidcProvider, upstream: str, redis_server: RedisServer
) -> None:
    """40 concurrent requests of one session, split over two instances, cause one refresh."""
    sessions = {
        "store": "redis",
        "redis": {"url": redis_server.url, "key_prefix": "t-refresh:"},
        "refresh_before": REFRESH_BEFORE,
        "cache_ttl": 0,
    }
    routes = [{"path": "/", "upstream": upstream, "auth": "login", "pass_access_token": True}]
    a, client = start_login_gateway(
        gateway_factory, oidc_provider, upstream, sessions=sessions, routes=routes, name="a"
    )
    b, _ = start_login_gateway(
        gateway_factory,
        oidc_provider,
        upstream,
        sessions=sessions,
        routes=routes,
        name="b",
        client=client,
    )
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        first = await http_login(session, f"{a.url}/", user="ivy")
        old_token = (await first.json())["headers"]["Authorization"]
        cookie = "; ".join(
            f"{c.key}={c.value}" for c in session.cookie_jar if c.key.endswith("gateway_session")
        )
    await asyncio.sleep(1.5)
    async with aiohttp.ClientSession() as plain:

        async def call(base: str) -> str:
            async with plain.get(
                f"{base}/", headers={"Cookie": cookie, "Accept": "application/json"}
            ) as r:
                assert r.status == 200
                return str((await r.json())["headers"]["Authorization"])

        tokens = await asyncio.gather(*(call(a.url if i % 2 else b.url) for i in range(40)))
    assert refreshes(a.log_text(), b.log_text()) == 1
    assert old_token not in tokens[-1:]  # the session now carries the refreshed token
    assert len(set(tokens) - {old_token}) == 1


async def test_refresh_failure_from_provider_outage_keeps_the_session(
    gateway_factory: Any, fresh_oidc_provider: OidcProvider, upstream: str
) -> None:
    """With the provider down, a due refresh fails but the session keeps working (grace)."""
    gw, _ = start_login_gateway(
        gateway_factory,
        fresh_oidc_provider,
        upstream,
        sessions={"refresh_before": REFRESH_BEFORE, "refresh_grace": 600},
    )
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        await http_login(session, f"{gw.url}/", user="jack")
        fresh_oidc_provider.stop()
        await asyncio.sleep(1.2)
        response = await session.get(f"{gw.url}/", headers={"Accept": "application/json"})
        assert response.status == 200
        assert (await response.json())["headers"]["X-Auth-Request-User"] == "jack"
    assert "refresh failed, keeping the session" in gw.log_text()
