"""Rate limiting per client address: pure bucket behaviour and the limited endpoints."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from gateway.errors import RateLimited
from gateway.web.rate_limit import RateLimiter
from tests.support.op import OidcProvider
from tests.web.login_setup import start_login_gateway


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_bucket_allows_burst_then_refills() -> None:
    """per_minute requests pass at once, the next is refused, one more passes a second later."""
    clock = Clock()
    limiter = RateLimiter(60, clock=clock)
    for _ in range(60):
        limiter.check("10.0.0.1", "login")
    with pytest.raises(RateLimited):
        limiter.check("10.0.0.1", "login")
    limiter.check("10.0.0.2", "login")  # another client has its own bucket
    limiter.check("10.0.0.1", "callback")  # and another path its own
    clock.now += 1.0
    limiter.check("10.0.0.1", "login")
    with pytest.raises(RateLimited):
        limiter.check("10.0.0.1", "login")


def test_memory_is_bounded() -> None:
    """A flood from many addresses cannot grow the table past its bound."""
    limiter = RateLimiter(10, max_clients=100)
    for i in range(1000):
        limiter.check(f"10.0.{i // 256}.{i % 256}", "login")
    assert len(limiter._buckets) <= 101


async def test_login_flood_gets_429(
    gateway_factory: Any, oidc_provider: OidcProvider, upstream: str
) -> None:
    """Past the per-minute budget, login starts get 429 and the provider is not asked again."""
    gw, _ = start_login_gateway(gateway_factory, oidc_provider, upstream, name="limited")
    gw.stop()
    gw.config["rate_limit"] = {"enabled": True, "per_minute": 5}
    gw.start()
    statuses = []
    async with aiohttp.ClientSession() as session:
        for _ in range(8):
            async with session.get(f"{gw.url}/_gateway/login?rd=/", allow_redirects=False) as r:
                statuses.append(r.status)
        async with session.get(f"{gw.url}/_gateway/healthz") as r:
            assert r.status == 200  # health is never limited
    assert statuses == [302] * 5 + [429] * 3


def test_exhausted_peeks_and_spend_never_raises() -> None:
    """Failures are counted without raising; `exhausted` tells without spending."""
    clock = Clock()
    limiter = RateLimiter(3, clock=clock)
    for _ in range(5):
        limiter.spend("c", "bearer-failures")
    assert limiter.exhausted("c", "bearer-failures")
    assert not limiter.exhausted("other", "bearer-failures")
    clock.now += 20.0  # 3 per minute: one token back after 20 s
    assert not limiter.exhausted("c", "bearer-failures")


async def test_garbage_token_flood_is_cut_off_before_the_provider(
    gateway_factory: Any, oidc_provider: OidcProvider, upstream: str
) -> None:
    """After per_minute refused tokens, new unknown tokens get 429 without an introspection."""
    client = oidc_provider.register_client()
    gw = gateway_factory(
        {
            "routes": [{"path": "/", "upstream": upstream, "auth": "bearer"}],
            "rate_limit": {"per_minute": 5},
            "bearer": {
                "issuers": [
                    {
                        "issuer": oidc_provider.issuer,
                        "audiences": ["urn:test:api"],
                        "allow_insecure_http": True,
                        "allow_private_network": True,
                        "introspection": {
                            "client_id": client["client_id"],
                            "client_secret": client["client_secret"],
                        },
                    }
                ]
            },
        }
    )
    statuses = []
    async with aiohttp.ClientSession() as session:
        for i in range(9):
            async with session.get(
                f"{gw.url}/x", headers={"Authorization": f"Bearer garbage-opaque-{i}"}
            ) as response:
                statuses.append(response.status)
    assert [401] * 5 + [429] * 4 == statuses
