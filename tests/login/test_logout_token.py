"""Logout token checks (Back-Channel Logout 1.0, 2.6) against the real OP's JWKS."""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from gateway.config.model import RedisConfig
from gateway.idp.addresses import AddressGuard
from gateway.idp.jwks import JwksCache
from gateway.login.logout_token import (
    LogoutRequest,
    LogoutTokenRejected,
    LogoutTokenRules,
    check_claims,
    claim_jti,
    validate_logout_token,
)
from gateway.sessions.memory import MemoryStore
from gateway.sessions.redis import RedisStore
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


async def test_jti_is_claimed_once_per_memory_store() -> None:
    """The second claim of a jti in one store is refused as a replay."""
    store = MemoryStore()
    request = LogoutRequest("https://op.example", "s", None, "jti-7")
    await claim_jti(store, request, 60)
    with pytest.raises(LogoutTokenRejected, match="already used"):
        await claim_jti(store, request, 60)
    await claim_jti(store, LogoutRequest("https://other.example", "s", None, "jti-7"), 60)


async def test_jti_replay_is_seen_across_redis_clients(redis_server: RedisServer) -> None:
    """Two instances on one Redis share the replay cache: the second one refuses."""
    config = RedisConfig.model_validate({"url": redis_server.url, "key_prefix": "lt-test:"})
    first, second = RedisStore.from_config(config), RedisStore.from_config(config)
    request = LogoutRequest("https://op.example", None, "bob", secrets.token_hex(8))
    try:
        await claim_jti(first, request, 60)
        with pytest.raises(LogoutTokenRejected):
            await claim_jti(second, request, 60)
    finally:
        await first.close()
        await second.close()
