"""Logout token checks (Back-Channel Logout 1.0, 2.6) against the real OP's JWKS."""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from gateway.config.model import RedisConfig
from gateway.crypto import KeyRing
from gateway.idp.addresses import AddressGuard
from gateway.idp.jwks import JwksCache
from gateway.login.logout_token import (
    REPLAY_CACHE,
    LogoutRequest,
    LogoutTokenRejected,
    LogoutTokenRules,
    check_claims,
    claim_jti,
    release_jti,
    replay_name,
    validate_logout_token,
)
from gateway.secret import Secret
from gateway.sessions.memory import MemoryStore
from gateway.sessions.redis import RedisStore
from gateway.sessions.shared import SharedState
from tests.support.logout_tokens import (
    EVENT,
    foreign_rsa_key,
    logout_claims,
    sign,
    unsigned,
)
from tests.support.op import OidcProvider
from tests.support.redis import RedisServer

CLIENT = "gateway-client"
SECRET = "logout-token-test-secret-0123456789abcdef"
NOW = 1_700_000_000.0
RULES = LogoutTokenRules(
    issuer="https://op.example", client_id=CLIENT, algorithms=["RS256"], max_age=300, leeway=30
)


def claims(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "iss": RULES.issuer,
        "aud": CLIENT,
        "iat": NOW,
        "jti": "j1",
        "events": {EVENT: {}},
        "sub": "alice",
        "sid": "s1",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


NOT_A_NUMBER = "logout token iat is not a number"
OUTSIDE = "logout token iat is outside the accepted window"
NO_EVENT = "logout token events lack the back-channel logout event"
BAD_CLAIMS = [
    ("iat missing", claims(iat=None), NOT_A_NUMBER),
    ("iat a string", claims(iat="1700000000"), NOT_A_NUMBER),
    ("iat a boolean", claims(iat=True), NOT_A_NUMBER),
    ("iat too old", claims(iat=NOW - 331), OUTSIDE),
    ("iat in the future", claims(iat=NOW + 31), OUTSIDE),
    ("no events", claims(events=None), NO_EVENT),
    ("events a list", claims(events=[EVENT]), NO_EVENT),
    ("event member not an object", claims(events={EVENT: "yes"}), NO_EVENT),
    ("another event only", claims(events={"http://example.com/other": {}}), NO_EVENT),
    ("nonce present", claims(nonce="n"), "logout token must not contain a nonce"),
    ("jti missing", claims(jti=None), "logout token jti is missing"),
    ("jti empty", claims(jti=""), "logout token jti is missing"),
    ("neither sid nor sub", claims(sid=None, sub=None), "logout token names neither sid nor sub"),
    ("sid not a string", claims(sid=5), "logout token sid is not a non-empty string"),
    ("sub empty", claims(sub="", sid=None), "logout token sub is not a non-empty string"),
]


@pytest.mark.parametrize(("case", "bad", "reason"), BAD_CLAIMS, ids=[c[0] for c in BAD_CLAIMS])
def test_claim_checks_refuse(case: str, bad: dict[str, Any], reason: str) -> None:
    """Each malformed claim set is refused with a 400 that tells the provider which check
    refused it."""
    with pytest.raises(LogoutTokenRejected) as info:
        check_claims(bad, RULES, NOW)
    assert info.value.status == 400
    assert (reason, reason) == (str(info.value), info.value.public_message)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (claims(), LogoutRequest(RULES.issuer, "s1", "alice", "j1")),
        (claims(sub=None), LogoutRequest(RULES.issuer, "s1", None, "j1")),
        (claims(sid=None), LogoutRequest(RULES.issuer, None, "alice", "j1")),
        (claims(iat=NOW - 329), LogoutRequest(RULES.issuer, "s1", "alice", "j1")),
        (claims(iat=NOW - 330), LogoutRequest(RULES.issuer, "s1", "alice", "j1")),  # the edges
        (claims(iat=NOW + 30), LogoutRequest(RULES.issuer, "s1", "alice", "j1")),
    ],
)
def test_claim_checks_accept(given: dict[str, Any], expected: LogoutRequest) -> None:
    """sid, sub or both, and an iat inside max_age + leeway, are accepted."""
    assert expected == check_claims(given, RULES, NOW)


def test_the_replay_mark_outlives_every_acceptable_token() -> None:
    """A token accepted now (its iat up to `leeway` ahead) stays acceptable for exactly
    replay_ttl seconds, so its jti mark never expires while a replay could still pass."""
    newest = claims(iat=NOW + RULES.leeway)
    assert LogoutRequest(RULES.issuer, "s1", "alice", "j1") == check_claims(newest, RULES, NOW)
    last = NOW + RULES.replay_ttl
    assert LogoutRequest(RULES.issuer, "s1", "alice", "j1") == check_claims(newest, RULES, last)
    with pytest.raises(LogoutTokenRejected, match="outside the accepted window"):
        check_claims(newest, RULES, last + 1)


@pytest.fixture
async def op_jwks(oidc_provider: OidcProvider) -> AsyncIterator[JwksCache]:
    guard = AddressGuard(allow_private_network=True, allow_insecure_http=True)
    async with aiohttp.ClientSession() as session:
        yield JwksCache(str(oidc_provider.discovery["jwks_uri"]), session, guard, cooldown=0)


def op_rules(op: OidcProvider) -> LogoutTokenRules:
    return LogoutTokenRules(
        issuer=op.issuer, client_id=CLIENT, algorithms=["RS256"], max_age=300, leeway=30
    )


async def test_signed_token_from_the_op_is_accepted(
    oidc_provider: OidcProvider, op_jwks: JwksCache
) -> None:
    """A token signed with the OP's published key yields its sid, sub and jti."""
    body = logout_claims(oidc_provider, CLIENT, sid="sid-1", jti="jti-1")
    token = sign(oidc_provider, body)
    result = await validate_logout_token(
        token, jwks=op_jwks, rules=op_rules(oidc_provider), now=body["iat"]
    )
    assert LogoutRequest(oidc_provider.issuer, "sid-1", "alice", "jti-1") == result


FORGERIES: dict[str, tuple[Callable[[OidcProvider], str], str]] = {
    "foreign key": (
        lambda op: sign(op, logout_claims(op, CLIENT), key=foreign_rsa_key()),
        "logout token rejected: Signature verification failed",
    ),
    "alg none": (
        lambda op: unsigned(logout_claims(op, CLIENT)),
        "logout token algorithm 'none' is not accepted",
    ),
    "HS256 with the client id as secret": (
        lambda op: sign(op, logout_claims(op, CLIENT), alg="HS256", key=CLIENT * 3),
        "logout token algorithm 'HS256' is not accepted",
    ),
    "wrong aud": (
        lambda op: sign(op, logout_claims(op, "someone-else")),
        "logout token rejected: Audience doesn't match",
    ),
    "wrong iss": (
        lambda op: sign(op, logout_claims(op, CLIENT, iss=op.issuer + "/other")),
        "logout token rejected: Invalid issuer",
    ),
    "expired": (
        lambda op: sign(op, logout_claims(op, CLIENT, exp=int(time.time()) - 100)),
        "logout token rejected: Signature has expired",
    ),
    "typed as an access token": (
        lambda op: sign(op, logout_claims(op, CLIENT), header={"typ": "at+jwt"}),
        "logout token has type 'at+jwt'",
    ),
    "typed at length": (
        lambda op: sign(op, logout_claims(op, CLIENT), header={"typ": "x" * 40 + "+jwt"}),
        f"logout token has type '{'x' * 30}'",
    ),
    "unknown kid": (
        lambda op: sign(
            op, logout_claims(op, CLIENT), key=foreign_rsa_key(), header={"kid": "nope"}
        ),
        "logout token key: ",
    ),
    "not a JWT": (lambda op: "not.a.jwt", "logout token is not a signed JWT"),
}


@pytest.mark.parametrize("case", list(FORGERIES))
async def test_forged_or_misaddressed_tokens_are_refused(
    oidc_provider: OidcProvider, op_jwks: JwksCache, case: str
) -> None:
    """Signature, algorithm, iss, aud, exp, typ and the key id are each enforced, and the
    provider is told which check refused."""
    forge, reason = FORGERIES[case]
    with pytest.raises(LogoutTokenRejected, match=f"^{re.escape(reason)}") as info:
        await validate_logout_token(
            forge(oidc_provider), jwks=op_jwks, rules=op_rules(oidc_provider), now=time.time()
        )
    assert str(info.value) == info.value.public_message


async def test_a_token_just_past_its_exp_is_accepted_within_the_leeway(
    oidc_provider: OidcProvider, op_jwks: JwksCache
) -> None:
    """Clock skew: a logout token whose exp passed 10 s ago is still accepted (leeway 30)."""
    body = logout_claims(oidc_provider, CLIENT, sid="sid-2", jti="jti-2")
    body["exp"] = int(time.time()) - 10
    result = await validate_logout_token(
        sign(oidc_provider, body), jwks=op_jwks, rules=op_rules(oidc_provider), now=body["iat"]
    )
    assert "sid-2" == result.sid


def shared(store: Any, secret: str = SECRET, clock: Callable[[], float] = time.time) -> SharedState:
    """The store as a gateway with ``secret`` shares it."""
    return SharedState(store, KeyRing([Secret(secret)]), "ns", clock=clock)


async def test_jti_is_claimed_once_per_memory_store() -> None:
    """The second claim of a jti in one store is refused as a replay."""
    store = shared(MemoryStore())
    request = LogoutRequest("https://op.example", "s", None, "jti-7")
    await claim_jti(store, request, 60)
    with pytest.raises(LogoutTokenRejected) as info:
        await claim_jti(store, request, 60)
    assert "logout token was already used (jti replay)" == info.value.public_message
    await claim_jti(store, LogoutRequest("https://other.example", "s", None, "jti-7"), 60)


async def test_a_released_jti_can_be_claimed_again() -> None:
    """A logout whose sessions could not be ended gives its jti back: the provider's retry
    is not refused as a replay; another issuer's same jti stays claimed."""
    store = shared(MemoryStore())
    request = LogoutRequest("https://op.example", "s", None, "jti-8")
    other = LogoutRequest("https://other.example", "s", None, "jti-8")
    await claim_jti(store, request, 60)
    await claim_jti(store, other, 60)
    await release_jti(store, request)
    await claim_jti(store, request, 60)
    with pytest.raises(LogoutTokenRejected, match="already used"):
        await claim_jti(store, other, 60)


@pytest.fixture
async def redis_stores(redis_server: RedisServer) -> AsyncIterator[list[RedisStore]]:
    """Two clients on one Redis, as two gateway instances would have."""
    config = RedisConfig.model_validate({"url": redis_server.url, "key_prefix": "lt-test:"})
    stores = [RedisStore.from_config(config) for _ in range(2)]
    yield stores
    for store in stores:
        await store.close()


async def test_jti_replay_is_seen_across_redis_clients(redis_stores: list[RedisStore]) -> None:
    """Two instances on one Redis share the replay cache: the second one refuses."""
    first, second = (shared(store) for store in redis_stores)
    request = LogoutRequest("https://op.example", None, "bob", secrets.token_hex(8))
    await claim_jti(first, request, 60)
    with pytest.raises(LogoutTokenRejected, match="already used"):
        await claim_jti(second, request, 60)


async def test_planted_marks_do_not_block_a_claim(
    redis_stores: list[RedisStore], redis_server: RedisServer
) -> None:
    """A mark in Redis that this deployment did not seal (a bare value, another secret's
    seal, or its own seal past the expiry inside it) does not refuse a first logout; the
    mark that replaces it does refuse the replay. Racing claims over a planted mark: one
    wins."""
    store = shared(redis_stores[0])
    past = shared(redis_stores[0], clock=lambda: time.time() - 3600)
    stranger = shared(redis_stores[0], secret="another-deployment-secret-0123456789")
    raw = redis_server.client()
    for plant in ("bare", "stranger", "stale"):
        request = LogoutRequest("https://op.example", None, "eve", secrets.token_hex(8))
        key = "lt-test:" + store.key(REPLAY_CACHE, replay_name(request.issuer, request.jti))
        if plant == "bare":
            raw.set(key, b"1", px=60_000)
        else:
            await (past if plant == "stale" else stranger).claim(
                REPLAY_CACHE, replay_name(request.issuer, request.jti), 60
            )
        assert raw.get(key) is not None
        await claim_jti(store, request, 60)  # not refused: the planted mark is not ours
        with pytest.raises(LogoutTokenRejected, match="already used"):
            await claim_jti(store, request, 60)
    request = LogoutRequest("https://op.example", None, "eve", secrets.token_hex(8))
    raw.set("lt-test:" + store.key(REPLAY_CACHE, replay_name(request.issuer, request.jti)), b"1")
    racers = [shared(redis_stores[0]), shared(redis_stores[1])] * 5
    outcomes = await asyncio.gather(
        *(claim_jti(racer, request, 60) for racer in racers), return_exceptions=True
    )
    assert [o for o in outcomes if o is None] == [None]
    assert all(isinstance(o, LogoutTokenRejected) for o in outcomes if o is not None)
