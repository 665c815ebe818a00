"""Faults with real components really stopped: Redis, the provider, the gateway, upstreams."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp

from tests.support.login import HTML_ACCEPT, _follow, _submit, http_login
from tests.support.op import OidcProvider
from tests.support.ports import free_port
from tests.support.redis import RedisServer
from tests.web.login_setup import start_login_gateway

JSON = {"Accept": "application/json"}


def jar() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def status_of(session: aiohttp.ClientSession, url: str, **kw: Any) -> int:
    async with session.get(url, allow_redirects=False, **kw) as response:
        return response.status


async def test_redis_outage_fails_closed_then_recovers_with_sessions_intact(
    gateway_factory: Any,
    oidc_provider: OidcProvider,
    upstream: str,
    persistent_redis: RedisServer,
) -> None:
    """Redis down: protected 503, public 200, readyz 503; Redis back: the same session works."""
    routes = [
        {"path": "/", "upstream": upstream, "auth": "login"},
        {"path": "/public", "upstream": upstream, "auth": "public"},
    ]
    redis = {"url": persistent_redis.url, "timeout": 0.5}
    gw, _ = start_login_gateway(
        gateway_factory,
        oidc_provider,
        upstream,
        routes=routes,
        sessions={"store": "redis", "redis": redis, "cache_ttl": 0},
    )
    async with jar() as session:
        await http_login(session, f"{gw.url}/", user="lena")
        persistent_redis.stop()
        async with session.get(f"{gw.url}/", headers=JSON) as protected:
            assert protected.status == 503
            assert (await protected.json())["error"] == "store_unavailable"
        async with session.get(f"{gw.url}/", headers={"Accept": HTML_ACCEPT}) as page:
            assert page.status == 503  # a browser is not sent to log in again either
        assert await status_of(session, f"{gw.url}/public/x") == 200
        assert await status_of(session, f"{gw.url}/_gateway/readyz") == 503
        persistent_redis.start()
        for _ in range(50):
            if await status_of(session, f"{gw.url}/_gateway/readyz") == 200:
                break
            await asyncio.sleep(0.2)
        async with session.get(f"{gw.url}/", headers=JSON) as again:
            assert again.status == 200
            assert (await again.json())["headers"]["X-Auth-Request-User"] == "lena"


async def test_new_login_with_provider_down_is_a_clear_503_page(
    gateway_factory: Any, fresh_oidc_provider: OidcProvider, upstream: str
) -> None:
    """When the provider cannot be reached, a new login gets a 503 page saying so."""
    gw, _ = start_login_gateway(gateway_factory, fresh_oidc_provider, upstream)
    fresh_oidc_provider.stop()
    async with jar() as session:
        async with session.get(f"{gw.url}/", headers={"Accept": HTML_ACCEPT}) as page:
            assert page.status == 503
            assert "sign-in service cannot be reached" in await page.text()
    assert "provider_unavailable" in gw.log_text()


async def test_gateway_restart_keeps_sessions_and_logins_in_flight(
    gateway_factory: Any, oidc_provider: OidcProvider, upstream: str, redis_server: RedisServer
) -> None:
    """With Redis, sessions survive a restart, and a login started before it completes after."""
    sessions = {"store": "redis", "redis": {"url": redis_server.url, "key_prefix": "t-rst:"}}
    gw, _ = start_login_gateway(gateway_factory, oidc_provider, upstream, sessions=sessions)
    async with jar() as first, jar() as second:
        await http_login(first, f"{gw.url}/", user="mia")
        started = await second.get(
            f"{gw.url}/deep/link", allow_redirects=False, headers={"Accept": HTML_ACCEPT}
        )
        assert started.status == 302
        gw.restart()
        async with first.get(f"{gw.url}/", headers=JSON) as kept:
            assert (await kept.json())["headers"]["X-Auth-Request-User"] == "mia"
        trail: list[str] = []
        response = started
        for _ in range(8):  # finish at the provider: its forms, then back to the gateway
            response = await _follow(second, response, trail)
            if str(response.url).startswith(gw.url):
                break
            submitted = await _submit(second, response, "noah", "pw", trail)
            assert submitted is not None, trail
            response = submitted
        assert f"{gw.url}/deep/link" == str(response.url)
        assert (await response.json())["headers"]["X-Auth-Request-User"] == "noah"


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


async def test_memory_stays_flat_under_upstream_failures(gateway_factory: Any) -> None:
    """Thousands of 502s with request ids leave the gateway's RSS where it was."""
    dead = f"http://127.0.0.1:{free_port()}"
    gw = gateway_factory(
        {
            "routes": [{"path": "/", "upstream": dead, "auth": "public"}],
            "logging": {"access_log": False, "level": "error"},
        }
    )
    async with aiohttp.ClientSession() as session:

        async def burst(n: int) -> None:
            for _ in range(n // 20):
                codes = await asyncio.gather(
                    *(status_of(session, f"{gw.url}/x", headers=JSON) for _ in range(20))
                )
                assert {502} == set(codes)

        await burst(600)
        before = rss_kib(gw.pid)
        await burst(4000)
        after = rss_kib(gw.pid)
    assert after - before < 4096, (before, after)


async def test_form_post_after_session_end_tells_the_user(
    gateway_factory: Any, oidc_provider: OidcProvider, upstream: str
) -> None:
    """A browser form POST without a session is not lost silently: the page says it was not sent."""
    gw, _ = start_login_gateway(gateway_factory, oidc_provider, upstream)
    async with (
        jar() as session,
        session.post(
            f"{gw.url}/orders", data={"qty": "3"}, headers={"Accept": HTML_ACCEPT}
        ) as response,
    ):
        assert response.status == 401
        assert "this form was not sent" in await response.text()
