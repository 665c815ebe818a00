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


# --- the bucket arithmetic, with an injected clock (the module's own mutants) -----------


def refused_count(bucket: str) -> float:
    from gateway.metrics import REGISTRY

    value = REGISTRY.get_sample_value("gateway_rate_limited_total", {"endpoint": bucket})
    return value or 0.0


def test_refusal_says_who_exceeded_which_budget_and_counts_it() -> None:
    """A refusal is a 429 naming bucket and client in the log, the given public text (or
    the default) for the client, and one more in the metric for that endpoint."""
    limiter = RateLimiter(1, clock=Clock())
    limiter.check("10.0.0.9", "rl-unit-a")
    before = refused_count("rl-unit-a")
    with pytest.raises(RateLimited) as refused:
        limiter.check("10.0.0.9", "rl-unit-a", public="Wait a minute.")
    assert str(refused.value) == "rate limit for rl-unit-a exceeded by 10.0.0.9"
    assert refused.value.public_message == "Wait a minute."
    assert refused.value.status == 429
    assert refused_count("rl-unit-a") == before + 1
    with pytest.raises(RateLimited) as refused:
        limiter.check("10.0.0.9", "rl-unit-a")
    assert refused.value.public_message == "Too many requests; slow down."
    assert refused_count("rl-unit-a") == before + 2
    assert refused_count("rl-unit-b") == 0.0


def test_refill_rate_is_per_minute_over_sixty_seconds() -> None:
    """120 per minute: after a spent burst, one request passes 0.5 s later, not before,
    and a refused attempt spends nothing."""
    clock = Clock()
    limiter = RateLimiter(120, clock=clock)
    for _ in range(120):
        limiter.check("c", "b")
    clock.now += 0.49
    with pytest.raises(RateLimited):
        limiter.check("c", "b")
    clock.now += 0.01  # 0.5 s since the burst: one token (the refusal spent none)
    limiter.check("c", "b")
    with pytest.raises(RateLimited):
        limiter.check("c", "b")


def test_idle_client_refills_only_up_to_the_burst() -> None:
    """However long a client was idle, it gets per_minute requests at once, not more."""
    clock = Clock()
    limiter = RateLimiter(3, clock=clock)
    limiter.check("c", "b")
    clock.now += 3600.0
    for _ in range(3):
        limiter.check("c", "b")
    with pytest.raises(RateLimited):
        limiter.check("c", "b")


def test_exhausted_is_exact_at_one_token() -> None:
    """`exhausted` is false with exactly one token left, true below; it refills with time
    and is capped like the bucket; it never creates or spends anything."""
    clock = Clock()
    limiter = RateLimiter(2, clock=clock)  # one token per 30 s
    assert not limiter.exhausted("c", "b")
    limiter.spend("c", "b")
    assert not limiter.exhausted("c", "b")  # one left
    limiter.spend("c", "b")
    assert limiter.exhausted("c", "b")
    clock.now += 29.9
    assert limiter.exhausted("c", "b")
    clock.now += 0.1
    assert not limiter.exhausted("c", "b")  # exactly one back
    clock.now += 1000.0
    assert not limiter.exhausted("c", "b")
    limiter.spend("c", "b")
    limiter.spend("c", "b")  # capped at two: both spent now
    assert limiter.exhausted("c", "b")
    assert not limiter.exhausted("never-seen", "b")
    assert ("b", "never-seen") not in limiter._buckets


def test_spend_counts_failures_until_the_limit() -> None:
    """Each spend takes one token: per_minute failures exhaust the budget, fewer do not."""
    limiter = RateLimiter(4, clock=Clock())
    for _ in range(3):
        limiter.spend("c", "failures")
    assert not limiter.exhausted("c", "failures")
    limiter.spend("c", "failures")
    assert limiter.exhausted("c", "failures")
    with pytest.raises(RateLimited):
        limiter.check("c", "failures")


def test_the_least_recently_seen_client_is_forgotten_first() -> None:
    """With room for two clients, a third pushes out the one seen longest ago; a client
    seen again moves to the back, and exactly max_clients are kept."""
    clock = Clock()
    limiter = RateLimiter(1, clock=clock, max_clients=2)
    limiter.check("a", "b")
    limiter.check("b", "b")
    with pytest.raises(RateLimited):
        limiter.check("a", "b")  # seen again: now "b" is the oldest
    limiter.check("c", "b")  # a third client: "b" is forgotten
    assert len(limiter._buckets) == 2
    with pytest.raises(RateLimited):
        limiter.check("a", "b")  # still remembered, still spent
    limiter.check("b", "b")  # forgotten: a fresh bucket
