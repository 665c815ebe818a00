"""Logout token checks (Back-Channel Logout 1.0, 2.6) against the real OP's JWKS."""

from __future__ import annotations

import asyncio
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


BAD_CLAIMS = [
    ("iat missing", claims(iat=None)),
    ("iat a string", claims(iat="1700000000")),
    ("iat a boolean", claims(iat=True)),
    ("iat too old", claims(iat=NOW - 331)),
    ("iat in the future", claims(iat=NOW + 31)),
    ("no events", claims(events=None)),
    ("events a list", claims(events=[EVENT])),
    ("event member not an object", claims(events={EVENT: "yes"})),
    ("another event only", claims(events={"http://example.com/other": {}})),
    ("nonce present", claims(nonce="n")),
    ("jti missing", claims(jti=None)),
    ("jti empty", claims(jti="")),
    ("neither sid nor sub", claims(sid=None, sub=None)),
    ("sid not a string", claims(sid=5)),
    ("sub empty", claims(sub="", sid=None)),
]


@pytest.mark.parametrize(("case", "bad"), BAD_CLAIMS, ids=[c for c, _ in BAD_CLAIMS])
def test_claim_checks_refuse(case: str, bad: dict[str, Any]) -> None:
    """Each malformed claim set is refused with a 400-class LogoutTokenRejected."""
    with pytest.raises(LogoutTokenRejected) as info:
        check_claims(bad, RULES, NOW)
    assert info.value.status == 400


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (claims(), LogoutRequest(RULES.issuer, "s1", "alice", "j1")),
        (claims(sub=None), LogoutRequest(RULES.issuer, "s1", None, "j1")),
        (claims(sid=None), LogoutRequest(RULES.issuer, None, "alice", "j1")),
        (claims(iat=NOW - 329), LogoutRequest(RULES.issuer, "s1", "alice", "j1")),
    ],
)
def test_claim_checks_accept(given: dict[str, Any], expected: LogoutRequest) -> None:
    """sid, sub or both, and an iat inside max_age + leeway, are accepted."""
    assert expected == check_claims(given, RULES, NOW)


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


FORGERIES: dict[str, Callable[[OidcProvider], str]] = {
    "foreign key": lambda op: sign(op, logout_claims(op, CLIENT), key=foreign_rsa_key()),
    "alg none": lambda op: unsigned(logout_claims(op, CLIENT)),
    "HS256 with the client id as secret": lambda op: sign(
        op, logout_claims(op, CLIENT), alg="HS256", key=CLIENT * 3
    ),
    "wrong aud": lambda op: sign(op, logout_claims(op, "someone-else")),
    "wrong iss": lambda op: sign(op, logout_claims(op, CLIENT, iss=op.issuer + "/other")),
    "expired": lambda op: sign(op, logout_claims(op, CLIENT, exp=int(time.time()) - 100)),
    "typed as an access token": lambda op: sign(
        op, logout_claims(op, CLIENT), header={"typ": "at+jwt"}
    ),
    "unknown kid": lambda op: sign(
        op, logout_claims(op, CLIENT), key=foreign_rsa_key(), header={"kid": "nope"}
    ),
    "not a JWT": lambda op: "not.a.jwt",
}


@pytest.mark.parametrize("case", list(FORGERIES))
async def test_forged_or_misaddressed_tokens_are_refused(
    oidc_provider: OidcProvider, op_jwks: JwksCache, case: str
) -> None:
    """Signature, algorithm, iss, aud, exp and typ are all enforced."""
    token = FORGERIES[case](oidc_provider)
    with pytest.raises(LogoutTokenRejected):
        await validate_logout_token(
            token, jwks=op_jwks, rules=op_rules(oidc_provider), now=time.time()
        )


def shared(store: Any, secret: str = SECRET, clock: Callable[[], float] = time.time) -> SharedState:
    """The store as a gateway with ``secret`` shares it."""
    return SharedState(store, KeyRing([Secret(secret)]), "ns", clock=clock)


async def test_jti_is_claimed_once_per_memory_store() -> None:
    """The second claim of a jti in one store is refused as a replay."""
    store = shared(MemoryStore())
    request = LogoutRequest("https://op.example", "s", None, "jti-7")
    await claim_jti(store, request, 60)
    with pytest.raises(LogoutTokenRejected, match="already used"):
        await claim_jti(store, request, 60)
    await claim_jti(store, LogoutRequest("https://other.example", "s", None, "jti-7"), 60)


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
    with pytest.raises(LogoutTokenRejected):
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
