"""The accepted-token cache in front of BearerAuthenticator: reuse, expiry, metrics, bound."""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import pytest

from gateway import metrics
from gateway.config.model import Bearer, Introspection, TrustedIssuer
from gateway.errors import InvalidToken
from gateway.tokens import authenticator as authenticator_module
from gateway.tokens.authenticator import BearerAuthenticator
from tests.idp.fake_provider import FakeClock, FakeProvider, SigningKey, rsa_key
from tests.tokens.shared_store import DictStore, sealed

AUDIENCE = "api://orders"


def active(clock: FakeClock, **claims: Any) -> dict[str, Any]:
    return {"active": True, "sub": "u1", "client_id": "cli", "scope": "orders:read",
            "aud": AUDIENCE, "exp": int(clock.now) + 100, "token_type": "Bearer",
            **claims}  # fmt: skip


def bearer(fake: FakeProvider, *, introspect: bool = False, **settings: Any) -> Bearer:
    introspection = (
        Introspection(client_id="orders-api", client_secret="rs-secret") if introspect else None
    )
    issuer = TrustedIssuer(
        issuer=fake.issuer, audiences=[AUDIENCE], allow_insecure_http=True,
        allow_private_network=True, introspection=introspection,
    )  # fmt: skip
    return Bearer(issuers=[issuer], **settings)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(time.time())


@pytest.fixture
def signer(fake_provider: FakeProvider) -> SigningKey:
    key = rsa_key("k1")
    fake_provider.publish(key)
    return key


def sample(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def counters() -> tuple[float, float, float]:
    """Bearer ok outcomes, introspection cache hits and misses so far."""
    return (
        sample("gateway_authentications_total", kind="bearer", outcome="ok"),
        sample("gateway_introspection_cache_total", result="hit"),
        sample("gateway_introspection_cache_total", result="miss"),
    )


async def test_jwt_parsed_once_then_refused_exactly_at_expiry(
    fake_provider: FakeProvider,
    http_session: aiohttp.ClientSession,
    clock: FakeClock,
    signer: SigningKey,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A known JWT is not parsed again; at exp + leeway (30 s) it is refused as expired."""
    parsed: list[str] = []
    original = authenticator_module.unverified_parts

    def counting(token: str) -> Any:
        parsed.append(token)
        return original(token)

    monkeypatch.setattr(authenticator_module, "unverified_parts", counting)
    exp = int(clock.now) + 60
    token = signer.sign(fake_provider.token_claims(exp=exp))
    auth = BearerAuthenticator(bearer(fake_provider), http_session, clock=clock)
    first = await auth.authenticate(f"Bearer {token}", "")
    for _ in range(3):
        assert await auth.authenticate(f"Bearer {token}", "") is first
    assert len(parsed) == 1
    clock.advance(exp + 30 - clock.now - 0.01)
    assert (await auth.authenticate(f"Bearer {token}", "")).subject == "user-1"
    clock.advance(0.01)
    with pytest.raises(InvalidToken, match="expired"):
        await auth.authenticate(f"Bearer {token}", "")


async def test_introspected_principal_lives_as_long_as_the_shared_verdict(
    fake_provider: FakeProvider, http_session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    """A verdict read from the shared store is reused only until that entry's expiry."""
    store = sealed(DictStore(), clock)
    fake_provider.introspection["t"] = active(clock, exp=int(clock.now) + 86400)
    settings: dict[str, Any] = {"introspect": True, "cache_ttl": 60}
    first = BearerAuthenticator(bearer(fake_provider, **settings), http_session, store, clock)
    await first.authenticate("Bearer t", "")
    clock.advance(40)
    second = BearerAuthenticator(bearer(fake_provider, **settings), http_session, store, clock)
    await second.authenticate("Bearer t", "")  # from the store: cached until t0 + 60
    fake_provider.introspection["t"] = {"active": False}  # revoked meanwhile
    clock.advance(19.9)
    await second.authenticate("Bearer t", "")
    assert fake_provider.hits["/introspect"] == 1
    clock.advance(0.1)
    with pytest.raises(InvalidToken, match="not active"):
        await second.authenticate("Bearer t", "")
    assert fake_provider.hits["/introspect"] == 2


async def test_metrics_count_cached_principals(
    fake_provider: FakeProvider,
    http_session: aiohttp.ClientSession,
    clock: FakeClock,
    signer: SigningKey,
) -> None:
    """Reused introspection verdicts still count as cache hits; every success counts as ok."""
    fake_provider.introspection["opaque"] = active(clock)
    introspecting = BearerAuthenticator(
        bearer(fake_provider, introspect=True), http_session, clock=clock
    )
    ok, hits, misses = counters()
    for _ in range(4):
        await introspecting.authenticate("Bearer opaque", "")
    assert counters() == (ok + 4, hits + 3, misses + 1)
    local = BearerAuthenticator(bearer(fake_provider), http_session, clock=clock)
    token = signer.sign(fake_provider.token_claims())
    for _ in range(3):
        await local.authenticate(f"Bearer {token}", "")
    assert counters() == (ok + 7, hits + 3, misses + 1)


async def test_cache_is_bounded(
    fake_provider: FakeProvider, http_session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    """With cache_max_entries=100, the least recently used token is forgotten and asked again."""
    tokens = [f"tok-{n}" for n in range(101)]
    for token in tokens:
        fake_provider.introspection[token] = active(clock)
    config = bearer(fake_provider, introspect=True, cache_max_entries=100)
    auth = BearerAuthenticator(config, http_session, clock=clock)
    for token in tokens:
        await auth.authenticate(f"Bearer {token}", "")
    await auth.authenticate(f"Bearer {tokens[-1]}", "")
    assert fake_provider.hits["/introspect"] == 101
    await auth.authenticate(f"Bearer {tokens[0]}", "")
    assert fake_provider.hits["/introspect"] == 102
