"""Introspection (RFC 7662) against a real loopback endpoint: auth, caching, single flight."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import logging
import time
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from gateway import metrics, tracing
from gateway.config.model import Bearer, Introspection, Tracing, TrustedIssuer
from gateway.crypto import KeyRing
from gateway.errors import ConfigError, InvalidToken, ProviderUnavailable
from gateway.secret import Secret
from gateway.sessions.memory import MemoryStore
from gateway.sessions.shared import SharedState
from gateway.tokens.authenticator import BearerAuthenticator
from gateway.tokens.introspection import (
    IntrospectionCache,
    IntrospectionClient,
    UnsupportedTokenType,
    cache_lifetime,
    introspection_verdict,
    load_assertion_key,
    verdict_scope,
)
from tests.idp.fake_provider import FakeClock, FakeProvider, ServerFactory, open_guard, rsa_key
from tests.tokens.shared_store import DictStore, sealed

AUDIENCE = "api://orders"


def trusted(fake: FakeProvider, **introspection: Any) -> TrustedIssuer:
    settings = {"client_id": "orders-api", "client_secret": "rs-secret", **introspection}
    return TrustedIssuer(
        issuer=fake.issuer, audiences=[AUDIENCE], allow_insecure_http=True,
        allow_private_network=True, introspection=Introspection(**settings),
    )  # fmt: skip


def authenticator(
    fake: FakeProvider, session: aiohttp.ClientSession, clock: FakeClock, **bearer: Any
) -> BearerAuthenticator:
    shared = bearer.pop("shared_cache", None)
    config = Bearer(issuers=[trusted(fake)], **bearer)
    return BearerAuthenticator(config, session, shared_cache=shared, clock=clock)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(time.time())


def active(clock: FakeClock, **claims: Any) -> dict[str, Any]:
    return {"active": True, "sub": "u1", "client_id": "cli", "scope": "orders:read",
            "aud": AUDIENCE, "exp": int(clock.now) + 100, "token_type": "Bearer",
            **claims}  # fmt: skip


async def test_active_token_becomes_principal(
    fake_provider: FakeProvider, http_session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    """An active answer yields the principal; the call is authenticated with Basic."""
    fake_provider.introspection["opaque-1"] = active(clock)
    auth = authenticator(fake_provider, http_session, clock)
    principal = await auth.authenticate("Bearer opaque-1", "")
    assert (principal.subject, principal.client_id) == ("u1", "cli")
    assert principal.scopes == frozenset({"orders:read"})
    request = fake_provider.introspection_requests[0]
    assert request["form"] == {"token": "opaque-1", "token_type_hint": "access_token"}
    assert base64.b64decode(request["authorization"].split()[1]) == b"orders-api:rs-secret"


async def test_cached_until_exp(
    fake_provider: FakeProvider, http_session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    """A positive answer is reused until the token's exp, then asked again."""
    fake_provider.introspection["t"] = active(clock)
    auth = authenticator(fake_provider, http_session, clock)
    for _ in range(5):
        await auth.authenticate("Bearer t", "")
    assert fake_provider.hits["/introspect"] == 1
    clock.advance(101)
    fake_provider.introspection["t"] = active(clock)
    await auth.authenticate("Bearer t", "")
    assert fake_provider.hits["/introspect"] == 2


async def test_positive_cache_bounded_by_cache_ttl(
    fake_provider: FakeProvider, http_session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    """A long-lived token is re-introspected after cache_ttl (revocation shows up)."""
    fake_provider.introspection["t"] = active(clock, exp=int(clock.now) + 86400)
    auth = authenticator(fake_provider, http_session, clock, cache_ttl=60)
    await auth.authenticate("Bearer t", "")
    clock.advance(61)
    fake_provider.introspection["t"] = {"active": False}
    with pytest.raises(InvalidToken, match="not active"):
        await auth.authenticate("Bearer t", "")
    assert fake_provider.hits["/introspect"] == 2


async def test_negative_answers_cached_briefly(
    fake_provider: FakeProvider, http_session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    """An inactive token is refused from cache for negative_cache_ttl seconds."""
    auth = authenticator(fake_provider, http_session, clock, negative_cache_ttl=10)
    for _ in range(3):
        with pytest.raises(InvalidToken, match="not active"):
            await auth.authenticate("Bearer unknown", "")
    assert fake_provider.hits["/introspect"] == 1
    clock.advance(11)
    with pytest.raises(InvalidToken, match="not active"):
        await auth.authenticate("Bearer unknown", "")
    assert fake_provider.hits["/introspect"] == 2


async def test_concurrent_requests_share_one_call(
    fake_provider: FakeProvider, http_session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    """100 concurrent requests with one new token cause exactly one introspection call."""
    fake_provider.introspection["new"] = active(clock)
    fake_provider.introspection_delay = 0.2
    auth = authenticator(fake_provider, http_session, clock)
    results = await asyncio.gather(*(auth.authenticate("Bearer new", "") for _ in range(100)))
    assert {p.subject for p in results} == {"u1"}
    assert fake_provider.hits["/introspect"] == 1


async def test_concurrent_failures_share_one_call(
    fake_provider: FakeProvider, http_session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    """When the endpoint fails, concurrent callers all get 503 from a single call."""
    await authenticator(fake_provider, http_session, clock).issuers[0].metadata.get()
    fake_provider.failing.add("/introspect")
    auth = authenticator(fake_provider, http_session, clock)
    outcomes = await asyncio.gather(
        *(auth.authenticate("Bearer x", "") for _ in range(20)), return_exceptions=True
    )
    assert all(isinstance(o, ProviderUnavailable) for o in outcomes)
    assert fake_provider.hits["/introspect"] == 1


async def test_endpoint_down_is_503_unless_cached_negative(
    fake_provider: FakeProvider, http_session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    """Provider stopped: unknown tokens get ProviderUnavailable; cached verdicts still hold."""
    fake_provider.introspection["good"] = active(clock)
    auth = authenticator(fake_provider, http_session, clock)
    await auth.authenticate("Bearer good", "")
    with pytest.raises(InvalidToken, match="not active"):
        await auth.authenticate("Bearer bad", "")
    assert fake_provider.server is not None
    await fake_provider.server.close()
    await auth.authenticate("Bearer good", "")
    with pytest.raises(InvalidToken, match="not active"):
        await auth.authenticate("Bearer bad", "")
    with pytest.raises(ProviderUnavailable, match="connection refused"):
        await auth.authenticate("Bearer other", "")


async def test_shared_cache_spares_other_instances_a_call(
    fake_provider: FakeProvider, http_session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    """A second gateway instance reads the verdict from the shared store; no token is stored."""
    store = DictStore()
    fake_provider.introspection["tok-123"] = active(clock)
    for _ in range(2):
        shared = sealed(store, clock)
        instance = authenticator(fake_provider, http_session, clock, shared_cache=shared)
        await instance.authenticate("Bearer tok-123", "")
    assert fake_provider.hits["/introspect"] == 1
    assert all(b"tok-123" not in v and "tok-123" not in k for k, v in store.values.items())


async def test_broken_shared_cache_is_bypassed(
    fake_provider: FakeProvider, http_session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    """A failing shared store does not fail the request."""
    fake_provider.introspection["t"] = active(clock)
    auth = authenticator(
        fake_provider, http_session, clock, shared_cache=sealed(DictStore(broken=True), clock)
    )
    await auth.authenticate("Bearer t", "")


async def test_client_secret_post(
    fake_provider: FakeProvider, http_session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    """client_secret_post sends the credentials in the form."""
    config = trusted(fake_provider, auth_method="client_secret_post")
    assert config.introspection is not None
    client = IntrospectionClient(
        config.introspection, fake_provider.issuer, f"{fake_provider.issuer}/introspect",
        http_session, open_guard(),
    )  # fmt: skip
    await client.introspect("t")
    request = fake_provider.introspection_requests[0]
    assert request["authorization"] is None
    assert request["form"]["client_id"] == "orders-api"
    assert request["form"]["client_secret"] == "rs-secret"


async def test_private_key_jwt(
    fake_provider: FakeProvider, http_session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    """private_key_jwt sends an RFC 7523 assertion signed with the configured key."""
    key = rsa_key("client-key", slot=3)
    pem = key.private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )  # fmt: skip
    (tmp_path / "rs.pem").write_bytes(pem)
    config = trusted(
        fake_provider, auth_method="private_key_jwt", client_secret=None,
        private_key_file=str(tmp_path / "rs.pem"),
    )  # fmt: skip
    assert config.introspection is not None
    client = IntrospectionClient(
        config.introspection, fake_provider.issuer, f"{fake_provider.issuer}/introspect",
        http_session, open_guard(),
    )  # fmt: skip
    await client.introspect("t")
    form = fake_provider.introspection_requests[0]["form"]
    assert form["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    claims = jwt.decode(
        form["client_assertion"], key.private.public_key(), algorithms=["RS256"],
        audience=fake_provider.issuer,
    )  # fmt: skip
    assert claims["iss"] == claims["sub"] == form["client_id"] == "orders-api"
    assert claims["exp"] - claims["iat"] == 60
    assert "client_secret" not in form
    # Each assertion carries its own unguessable jti: the provider refuses a replayed one.
    await client.introspect("t")
    again = jwt.decode(
        fake_provider.introspection_requests[1]["form"]["client_assertion"],
        options={"verify_signature": False},
    )
    assert len(claims["jti"]) >= 32
    assert claims["jti"] != again["jti"]


async def test_rejected_credentials_are_503_with_a_hint(
    fake_provider: FakeProvider, http_session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    """A 401 from the endpoint is a gateway misconfiguration (503), not the caller's fault."""
    fake_provider.required_authorization = aiohttp.encode_basic_auth("orders-api", "other")
    auth = authenticator(fake_provider, http_session, clock)
    with pytest.raises(
        ProviderUnavailable, match=r"HTTP 401 \(check the resource server"
    ) as caught:
        await auth.authenticate("Bearer t", "")
    assert "rs-secret" not in str(caught.value)


NOW = 1_000_000.0
ISSUER = TrustedIssuer(issuer="https://idp", audiences=["api"], discovery=False)
NOT_ACTIVE = "The access token is not active."
NO_KEY = "The DPoP token's introspection answer names no key (cnf.jkt)."
VERDICTS = [
    ({"active": True, "aud": "api"}, None),
    ({"active": "true", "aud": "api"}, NOT_ACTIVE),
    ({"active": False}, NOT_ACTIVE),
    ({}, NOT_ACTIVE),
    ({"active": True, "aud": "api", "iss": "https://other"}, "The token's issuer is not trusted."),
    ({"active": True, "aud": "api", "iss": "https://idp"}, None),
    ({"active": True, "aud": "api", "token_type": "refresh_token"},
     "The token is not a bearer access token."),
    ({"active": True, "aud": "api", "token_type": "access_token"}, None),
    ({"active": True, "aud": "api", "token_type": "Bearer"}, None),
    ({"active": True, "aud": ["x", "api"]}, None),
    ({"active": True, "aud": "x"}, "The token is not meant for this service (audience)."),
    ({"active": True}, "The token names no audience, so it is not meant for this service."),
    ({"active": True, "aud": "api", "exp": NOW - 31}, "The access token has expired."),
    ({"active": True, "aud": "api", "exp": NOW - 30}, "The access token has expired."),
    ({"active": True, "aud": "api", "exp": NOW - 29}, None),
    ({"active": True, "aud": "api", "nbf": NOW + 31}, "The access token is not valid yet."),
    ({"active": True, "aud": "api", "nbf": NOW + 30}, None),  # the leeway's edge
    ({"active": True, "aud": "api", "nbf": NOW + 10}, None),
    ({"active": True, "aud": "api", "token_type": "DPoP", "cnf": {"jkt": "k"}}, None),
    ({"active": True, "aud": "api", "token_type": "dpop", "cnf": {"jkt": "k"}}, None),
    ({"active": True, "aud": "api", "token_type": "DPoP"}, NO_KEY),
    ({"active": True, "aud": "api", "token_type": "DPoP", "cnf": {"x5t#S256": "c"}}, NO_KEY),
    ({"active": True, "aud": "api", "token_type": "Bearer", "cnf": {"jkt": "k"}}, None),
]  # fmt: skip


def test_audience_may_be_optional_by_choice() -> None:
    """With require_audience off, an answer without `aud` passes; a wrong `aud` never does."""
    lenient = ISSUER.model_copy(
        update={"introspection": Introspection(client_id="rs", require_audience=False)}
    )
    assert introspection_verdict({"active": True}, lenient, NOW) == {"active": True}
    assert introspection_verdict({"active": True, "aud": "x"}, lenient, NOW)["active"] is False


@pytest.mark.parametrize(("response", "refusal"), VERDICTS)
def test_introspection_verdict(response: dict[str, Any], refusal: str | None) -> None:
    """Only an active bearer access token of this issuer, for this audience, inside its
    times (30 s leeway), is accepted; a refusal names the check that failed."""
    verdict = introspection_verdict(response, ISSUER, NOW)
    if refusal is None:
        assert verdict == response
    else:
        assert {"active": False, "reason": refusal} == verdict


SCOPE_CHANGES: list[dict[str, Any]] = [
    {"issuer": "https://other-idp"},
    {"audiences": ["api", "more"]},
    {"leeway": 5},
    {"introspection": Introspection(client_id="rs", require_audience=False)},
    {"introspection": Introspection(client_id="other-rs")},
    {"introspection": Introspection(client_id="rs", endpoint="https://idp/other-introspect")},
]


@pytest.mark.parametrize("change", SCOPE_CHANGES)
def test_a_verdict_is_never_shared_with_other_inputs(change: dict[str, Any]) -> None:
    """Another issuer, audience set, leeway, audience rule, client or endpoint gives
    another verdict scope: a verdict reached under one is never reused under the other."""
    base = ISSUER.model_copy(update={"introspection": Introspection(client_id="rs")})
    assert verdict_scope(base) != verdict_scope(base.model_copy(update=change))


def test_the_verdict_scope_ignores_audience_order_and_repeats() -> None:
    """The same audiences in another order, or repeated, are the same inputs."""
    again = ISSUER.model_copy(update={"audiences": ["b", "api", "b"]})
    swapped = ISSUER.model_copy(update={"audiences": ["api", "b"]})
    assert verdict_scope(again) == verdict_scope(swapped)
    bare = ISSUER.model_copy(update={"introspection": None})
    required = ISSUER.model_copy(update={"introspection": Introspection(client_id="rs")})
    assert verdict_scope(bare) != verdict_scope(required)


LIFETIMES = [
    ({"active": True, "exp": NOW + 100}, 100.0),
    ({"active": True, "exp": NOW + 1000}, 300.0),
    ({"active": True}, 300.0),
    ({"active": True, "exp": NOW - 5}, 0.0),
    ({"active": False}, 10.0),
]


@pytest.mark.parametrize(("result", "seconds"), LIFETIMES)
def test_cache_lifetime(result: dict[str, Any], seconds: float) -> None:
    """Positive verdicts live until exp, capped by cache_ttl; negative ones briefly."""
    assert cache_lifetime(result, NOW, positive_ttl=300, negative_ttl=10) == seconds


def client_for(fake: FakeProvider, session: aiohttp.ClientSession, **settings: Any) -> Any:
    config = trusted(fake, **settings)
    assert config.introspection is not None
    return IntrospectionClient(
        config.introspection, fake.issuer, f"{fake.issuer}/introspect", session, open_guard()
    )


async def test_a_token_the_endpoint_will_not_introspect_is_told_apart(
    fake_provider: FakeProvider, http_session: aiohttp.ClientSession
) -> None:
    """HTTP 400 unsupported_token_type is its own answer (the JWT is then checked locally);
    any other 400 or a 500 is an outage, the 400 with a hint about the credentials."""
    client = client_for(fake_provider, http_session)
    endpoint = f"{fake_provider.issuer}/introspect"
    fake_provider.unsupported.add("jwt-like")
    with pytest.raises(UnsupportedTokenType) as info:
        await client.introspect("jwt-like")
    assert f"{endpoint} does not introspect this token" == str(info.value)
    fake_provider.required_authorization = "Basic bm9ib2R5Og=="
    with pytest.raises(ProviderUnavailable) as outage:
        await client.introspect("t")
    assert not isinstance(outage.value, UnsupportedTokenType)
    assert f"{endpoint} answered HTTP 401 (check the resource server's credentials)" == str(
        outage.value
    )
    fake_provider.required_authorization = None
    fake_provider.failing.add("/introspect")
    with pytest.raises(ProviderUnavailable) as down:
        await client.introspect("t")
    assert f"{endpoint} answered HTTP 500" == str(down.value)
    assert 3 == client.call_count


async def test_client_secret_basic_escapes_the_credentials(
    fake_provider: FakeProvider, http_session: aiohttp.ClientSession
) -> None:
    """client_secret_basic form-encodes id and secret first (RFC 6749 2.3.1): a secret
    with ':' or '/' still authenticates."""
    fake_provider.required_authorization = aiohttp.encode_basic_auth("orders%2Fapi", "s%3Ae%2Fc%25")
    client = client_for(fake_provider, http_session, client_id="orders/api", client_secret="s:e/c%")
    fake_provider.introspection["t"] = {"active": True}
    assert {"active": True} == await client.introspect("t")
    assert 1 == client.call_count


def cache_counts() -> tuple[float, float]:
    """The introspection cache's (hit, miss) counters."""
    return tuple(  # type: ignore[return-value]
        metrics.REGISTRY.get_sample_value("gateway_introspection_cache_total", {"result": r}) or 0.0
        for r in ("hit", "miss")
    )


async def test_the_cache_answers_until_the_verdict_expires_and_counts_it() -> None:
    """A verdict is fetched once (a miss), then served from memory (hits) with the same
    expiry until then; a verdict already expired is not kept, one with half a second left is."""
    clock = FakeClock(1000.0)
    cache = IntrospectionCache(max_entries=10, positive_ttl=300, negative_ttl=10, clock=clock)
    calls: list[str] = []

    def answer(result: dict[str, Any]) -> Any:
        async def introspect() -> dict[str, Any]:
            calls.append("call")
            return result

        return introspect

    hits, misses = cache_counts()
    live = {"active": True, "exp": 1100}
    assert (live, 1100.0) == await cache.lookup_until("scope", "t1", answer(live))
    assert live == await cache.lookup("scope", "t1", answer({"active": False}))
    assert (live, 1100.0) == await cache.lookup_until("scope", "t1", answer({"active": False}))
    assert (hits + 2, misses + 1) == cache_counts()
    assert ["call"] == calls
    assert {"active": False} == await cache.lookup("other-scope", "t1", answer({"active": False}))
    assert 2 == len(calls)  # another scope is another verdict
    expired = {"active": True, "exp": 990}
    await cache.lookup("scope", "t2", answer(expired))
    await cache.lookup("scope", "t2", answer(expired))
    assert 4 == len(calls)
    almost = {"active": True, "exp": 1000.5}
    await cache.lookup("scope", "t3", answer(almost))
    await cache.lookup("scope", "t3", answer(almost))
    assert 5 == len(calls)


async def test_callers_joining_a_call_in_flight_are_counted_as_hits() -> None:
    """Concurrent lookups of one token share one call; the joiners count as hits."""
    cache = IntrospectionCache(max_entries=10, positive_ttl=300, negative_ttl=10)
    started = asyncio.Event()
    release = asyncio.Event()

    async def introspect() -> dict[str, Any]:
        started.set()
        await release.wait()
        return {"active": False}

    hits, misses = cache_counts()
    first = asyncio.create_task(cache.lookup("s", "t", introspect))
    await started.wait()
    second = asyncio.create_task(cache.lookup("s", "t", introspect))
    await asyncio.sleep(0)
    release.set()
    assert [{"active": False}] * 2 == [await first, await second]
    assert (hits + 1, misses + 1) == cache_counts()


async def test_another_400_is_an_outage_with_a_credentials_hint(
    fake_provider: FakeProvider, http_session: aiohttp.ClientSession
) -> None:
    """A 400 that is not unsupported_token_type is a misconfiguration (503), with a hint."""
    client = client_for(fake_provider, http_session)
    fake_provider.bad_requests.add("t")
    with pytest.raises(ProviderUnavailable) as outage:
        await client.introspect("t")
    assert not isinstance(outage.value, UnsupportedTokenType)
    assert str(outage.value).endswith("answered HTTP 400 (check the resource server's credentials)")


async def test_an_issuer_without_an_introspection_endpoint_is_an_outage(
    http_session: aiohttp.ClientSession,
) -> None:
    """No endpoint published: a 503 saying so, never an accepted or refused token."""

    async def none_published() -> str | None:
        return None

    client = IntrospectionClient(
        Introspection(client_id="rs", client_secret="s"), "https://idp", none_published,
        http_session, open_guard(),
    )  # fmt: skip
    with pytest.raises(
        ProviderUnavailable, match=r"^the issuer publishes no introspection_endpoint$"
    ):
        await client.introspect("t")


@pytest.mark.parametrize(
    ("key", "algorithm"),
    [
        (lambda: ec.generate_private_key(ec.SECP256R1()), "ES256"),
        (lambda: ed25519.Ed25519PrivateKey.generate(), "EdDSA"),
        (lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256"),
    ],
)
def test_each_assertion_key_type_signs_with_its_algorithm(
    tmp_path: Path, key: Any, algorithm: str
) -> None:
    """An RSA, P-256 or Ed25519 key signs private_key_jwt assertions with its algorithm."""
    path = tmp_path / "rs.pem"
    path.write_bytes(
        key().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )  # fmt: skip
    assert algorithm == load_assertion_key(str(path))[1]


def test_unusable_assertion_keys_are_config_errors(tmp_path: Path) -> None:
    """A P-384 key, or a file that is no key, is refused naming the setting."""
    p384 = tmp_path / "p384.pem"
    p384.write_bytes(
        ec.generate_private_key(ec.SECP384R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )  # fmt: skip
    with pytest.raises(ConfigError) as caught:
        load_assertion_key(str(p384))
    assert ["introspection.private_key_file: use an RSA, P-256 or Ed25519 key"] == (
        caught.value.problems
    )
    junk = tmp_path / "junk.pem"
    junk.write_text("hello")
    with pytest.raises(ConfigError) as unreadable:
        load_assertion_key(str(junk))
    assert unreadable.value.problems[0].startswith(
        "introspection.private_key_file: cannot read a key: "
    )


def test_a_client_secret_method_without_a_secret_is_a_config_error(
    http_session: aiohttp.ClientSession,
) -> None:
    """client_secret_post without a secret is refused when the client is built."""
    with pytest.raises(ConfigError) as caught:
        IntrospectionClient(
            Introspection(client_id="rs", auth_method="client_secret_post"), "https://idp",
            "https://idp/introspect", http_session, open_guard(),
        )  # fmt: skip
    assert ["introspection: client_secret_post needs client_secret"] == caught.value.problems


class BrokenStore(MemoryStore):
    """A shared store that fails every call (Redis down)."""

    async def get(self, key: str) -> bytes | None:
        raise ConnectionError("down")

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        raise ConnectionError("down")


async def test_a_shared_verdict_is_reused_no_longer_than_this_instance_would_keep_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Instance B reuses A's verdict from the shared store without a call, but only for
    its own (shorter) cache_ttl; a broken shared store is bypassed with a warning."""
    clock = FakeClock(1000.0)
    store = MemoryStore(clock=clock)
    ring = KeyRing([Secret("introspection-shared-secret-0123456789ab")])

    def cache(ttl: float, shared_store: MemoryStore = store) -> IntrospectionCache:
        shared = SharedState(shared_store, ring, "ns", clock=clock)
        return IntrospectionCache(
            max_entries=10, positive_ttl=ttl, negative_ttl=5, shared=shared, clock=clock
        )

    calls: list[str] = []

    async def introspect() -> dict[str, Any]:
        calls.append("a")
        return {"active": True, "exp": 2000}

    async def never() -> dict[str, Any]:
        raise AssertionError("B must not call the endpoint")

    assert ({"active": True, "exp": 2000}, 1300.0) == await cache(300).lookup_until(
        "s", "t", introspect
    )
    assert ({"active": True, "exp": 2000}, 1060.0) == await cache(60).lookup_until("s", "t", never)
    assert ["a"] == calls
    with caplog.at_level(logging.WARNING, logger="gateway.tokens.introspection"):
        broken = cache(60, BrokenStore(clock=clock))
        assert ({"active": True, "exp": 2000}, 1060.0) == await broken.lookup_until(
            "s", "t2", introspect
        )
    assert [
        "shared introspection cache unreadable: ConnectionError",
        "shared introspection cache unwritable: ConnectionError",
    ] == [r.getMessage() for r in caplog.records]


async def test_a_refusal_without_credentials_trouble_has_no_credentials_hint(
    aiohttp_server: ServerFactory, http_session: aiohttp.ClientSession
) -> None:
    """A 403 from the endpoint is reported as such, without the credentials hint a 400 or
    401 gets (it would send the operator after the wrong problem)."""

    async def forbidden(request: web.Request) -> web.Response:
        return web.json_response({"error": "access_denied"}, status=403)

    app = web.Application()
    app.router.add_post("/introspect", forbidden)
    server = await aiohttp_server(app)
    endpoint = str(server.make_url("/introspect"))
    client = IntrospectionClient(
        Introspection(client_id="rs", client_secret="s"), "https://idp", endpoint,
        http_session, open_guard(),
    )  # fmt: skip
    with pytest.raises(ProviderUnavailable) as caught:
        await client.introspect("t")
    assert f"{endpoint} answered HTTP 403" == str(caught.value)


def provider_calls(endpoint: str) -> float:
    """Calls counted under gateway_provider_calls_total for this endpoint, any host."""
    return sum(
        sample.value
        for family in metrics.REGISTRY.collect()
        if family.name == "gateway_provider_calls"
        for sample in family.samples
        if sample.name.endswith("_total") and sample.labels.get("endpoint") == endpoint
        and sample.labels.get("result") == "2xx"
    )  # fmt: skip


async def test_introspection_calls_are_counted_under_their_own_endpoint(
    fake_provider: FakeProvider, http_session: aiohttp.ClientSession
) -> None:
    """An operator's dashboard counts introspection calls as endpoint="introspection"."""
    before = provider_calls("introspection")
    await client_for(fake_provider, http_session).introspect("t")
    assert 1.0 == provider_calls("introspection") - before


async def test_a_hanging_endpoint_times_out(
    fake_provider: FakeProvider,
    http_session: aiohttp.ClientSession,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An endpoint that does not answer in time is an outage (503), not a hung request; the
    default limit is 10 seconds."""
    fake_provider.introspection_delay = 2
    config = trusted(fake_provider).introspection
    assert config is not None
    endpoint = f"{fake_provider.issuer}/introspect"
    quick = IntrospectionClient(
        config, fake_provider.issuer, endpoint, http_session, open_guard(), timeout=0.2
    )
    with pytest.raises(ProviderUnavailable, match=r"/introspect did not answer within 0\.2 s$"):
        await quick.introspect("t")
    limits: list[float] = []

    async def recording(*args: Any, **kwargs: Any) -> tuple[int, Any]:
        limits.append(kwargs["timeout"])
        return 200, {"active": False}

    monkeypatch.setattr("gateway.tokens.introspection.fetch_json", recording)
    default = IntrospectionClient(
        config, fake_provider.issuer, endpoint, http_session, open_guard()
    )
    await default.introspect("t")
    assert [10.0] == limits


async def test_private_key_jwt_without_a_key_is_a_config_error(
    fake_provider: FakeProvider, http_session: aiohttp.ClientSession
) -> None:
    """private_key_jwt without private_key_file cannot start; a client of another method
    has no assertion to make."""
    with pytest.raises(ConfigError) as caught:
        client_for(fake_provider, http_session, auth_method="private_key_jwt", client_secret=None)
    assert ["introspection: private_key_jwt needs private_key_file"] == caught.value.problems
    with pytest.raises(ConfigError) as caught:
        client_for(fake_provider, http_session).client_assertion()
    assert ["introspection: private_key_jwt needs private_key_file"] == caught.value.problems


async def test_a_shared_hit_is_counted_and_then_served_from_memory() -> None:
    """A verdict found in the shared store counts as a hit (no miss) and is kept in this
    instance's memory: the next lookup needs neither the store nor the endpoint."""
    clock = FakeClock(1000.0)
    store = DictStore()

    def cache() -> IntrospectionCache:
        return IntrospectionCache(
            max_entries=10, positive_ttl=300, negative_ttl=5, shared=sealed(store, clock),
            clock=clock,
        )  # fmt: skip

    async def introspect() -> dict[str, Any]:
        return {"active": True, "exp": 2000}

    async def never() -> dict[str, Any]:
        raise AssertionError("B must not call the endpoint")

    await cache().lookup("s", "t", introspect)
    b = cache()
    before = cache_counts()
    assert {"active": True, "exp": 2000} == await b.lookup("s", "t", never)
    assert (1.0, 0.0) == tuple(a - z for a, z in zip(cache_counts(), before, strict=True))
    store.broken = True  # the shared store is out of reach now
    assert ({"active": True, "exp": 2000}, 1300.0) == await b.lookup_until("s", "t", never)


async def test_a_shared_refusal_is_reused_no_longer_than_this_instances_negative_ttl() -> None:
    """A refusal from the shared store is kept only for this instance's negative_ttl, even
    when the instance that wrote it keeps refusals longer."""
    clock = FakeClock(1000.0)
    store = MemoryStore(clock=clock)
    ring = KeyRing([Secret("introspection-shared-secret-0123456789ab")])

    def cache(negative: float) -> IntrospectionCache:
        shared = SharedState(store, ring, "ns", clock=clock)
        return IntrospectionCache(
            max_entries=10, positive_ttl=300, negative_ttl=negative, shared=shared, clock=clock
        )

    async def refused() -> dict[str, Any]:
        return {"active": False}

    async def never() -> dict[str, Any]:
        raise AssertionError("B must not call the endpoint")

    assert ({"active": False}, 1060.0) == await cache(60).lookup_until("s", "t", refused)
    assert ({"active": False}, 1005.0) == await cache(5).lookup_until("s", "t", never)


async def test_a_failure_nobody_waits_for_any_more_is_not_reported_as_lost() -> None:
    """When every caller gave up on an introspection call that then fails, the failure is
    retrieved quietly: no 'Task exception was never retrieved' error in the log."""
    loop = asyncio.get_running_loop()
    reported: list[str] = []
    loop.set_exception_handler(lambda _, context: reported.append(str(context["message"])))
    release = asyncio.Event()

    async def introspect() -> dict[str, Any]:
        await release.wait()
        raise ProviderUnavailable("down")

    cache = IntrospectionCache(max_entries=10, positive_ttl=300, negative_ttl=5)
    caller = asyncio.create_task(cache.lookup("s", "t", introspect))
    await asyncio.sleep(0.01)
    caller.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await caller
    release.set()
    for _ in range(5):
        await asyncio.sleep(0)
    del caller
    gc.collect()
    await asyncio.sleep(0)
    assert [] == reported


async def test_an_introspection_call_is_traced_as_a_post_to_that_endpoint(
    fake_provider: FakeProvider, http_session: aiohttp.ClientSession
) -> None:
    """With tracing on, the call is a `provider introspection` client span whose method
    attribute is POST (docs/observability.md)."""
    pytest.importorskip("opentelemetry.sdk", reason="the optional extra 'tracing' is not installed")
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    tracing.start(Tracing(enabled=True), exporter=exporter)
    try:
        await client_for(fake_provider, http_session).introspect("t")
    finally:
        tracing.stop()
    spans = [s for s in exporter.get_finished_spans() if s.name == "provider introspection"]
    assert ["POST"] == [(s.attributes or {}).get("http.request.method") for s in spans]
