"""id_token validation (OIDC Core 3.1.3.7) against a real JWKS served on loopback."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from gateway.idp.jwks import JwksCache
from gateway.login.id_token import IdTokenRejected, stored_id_token_claims, validate_id_token
from tests.idp.fake_provider import FakeProvider, open_guard, rsa_key
from tests.login.test_jws_header import hs256_with_public_key

CLIENT = "gateway-client"
KEY = rsa_key("k1")
OTHER_KEY = rsa_key("k1", slot=1)
LEEWAY = 30


@pytest.fixture
async def jwks(fake_provider: FakeProvider) -> AsyncIterator[JwksCache]:
    fake_provider.publish(KEY)
    async with aiohttp.ClientSession() as session:
        yield JwksCache(f"{fake_provider.issuer}/jwks", session, open_guard(), cooldown=0)


def claims(issuer: str, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": issuer,
        "sub": "alice",
        "aud": CLIENT,
        "iat": now,
        "exp": now + 300,
        "nonce": "n-1",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


async def validate(
    token: str,
    jwks: JwksCache,
    issuer: str,
    *,
    nonce: str | None = "n-1",
    now: float | None = None,
    algorithms: tuple[str, ...] = ("RS256",),
) -> dict[str, Any]:
    return await validate_id_token(
        token,
        jwks=jwks,
        issuer=issuer,
        client_id=CLIENT,
        nonce=nonce,
        algorithms=algorithms,
        leeway=LEEWAY,
        now=time.time() if now is None else now,
    )


async def test_a_valid_id_token_yields_its_claims(
    fake_provider: FakeProvider, jwks: JwksCache
) -> None:
    """A token signed with the provider's key, for this client, with the login's nonce."""
    body = claims(fake_provider.issuer)
    assert body == await validate(KEY.sign(body), jwks, fake_provider.issuer)


@pytest.mark.parametrize("claim", ["iss", "sub", "aud", "exp", "iat"])
async def test_each_required_claim_must_be_present(
    fake_provider: FakeProvider, jwks: JwksCache, claim: str
) -> None:
    """A token without sub (no identity), exp (valid forever), iss, aud or iat is refused."""
    token = KEY.sign(claims(fake_provider.issuer, **{claim: None}))
    with pytest.raises(IdTokenRejected, match=f'missing the "{claim}" claim'):
        await validate(token, jwks, fake_provider.issuer)


REFUSED = [
    ("another client", {"aud": "someone-else"}, "Audience doesn't match"),
    ("another issuer", {"iss": "https://evil.example"}, "Invalid issuer"),
    ("expired", {"exp": int(time.time()) - 3600}, "Signature has expired"),
    ("another login", {"nonce": "n-2"}, "^id_token nonce does not match the login request$"),
    ("no nonce", {"nonce": None}, "^id_token nonce does not match the login request$"),
    (
        "two audiences, no azp",
        {"aud": [CLIENT, "other"]},
        "^id_token azp does not name this client$",
    ),
    ("azp of another client", {"azp": "other"}, "^id_token azp does not name this client$"),
    (
        "two audiences, other azp",
        {"aud": [CLIENT, "other"], "azp": "other"},
        "^id_token azp does not name this client$",
    ),
]


@pytest.mark.parametrize(("case", "overrides", "reason"), REFUSED, ids=[c[0] for c in REFUSED])
async def test_misaddressed_or_replayed_tokens_are_refused(
    fake_provider: FakeProvider,
    jwks: JwksCache,
    case: str,
    overrides: dict[str, Any],
    reason: str,
) -> None:
    """Audience, issuer, expiry, nonce and azp each refuse a token, naming the check."""
    token = KEY.sign(claims(fake_provider.issuer, **overrides))
    with pytest.raises(IdTokenRejected, match=reason):
        await validate(token, jwks, fake_provider.issuer)


@pytest.mark.parametrize(
    "overrides",
    [{"aud": [CLIENT, "other"], "azp": CLIENT}, {"azp": CLIENT}, {"aud": [CLIENT]}],
)
async def test_azp_naming_this_client_is_accepted(
    fake_provider: FakeProvider, jwks: JwksCache, overrides: dict[str, Any]
) -> None:
    """Several audiences with azp = this client, or one audience (azp optional), pass."""
    body = claims(fake_provider.issuer, **overrides)
    assert body == await validate(KEY.sign(body), jwks, fake_provider.issuer)


async def test_without_an_expected_nonce_none_is_checked(
    fake_provider: FakeProvider, jwks: JwksCache
) -> None:
    """A refresh-time id_token (no nonce expected) is accepted with any or no nonce."""
    body = claims(fake_provider.issuer, nonce="whatever")
    assert body == await validate(KEY.sign(body), jwks, fake_provider.issuer, nonce=None)


async def test_an_iat_ahead_of_the_gateway_clock_is_refused_past_the_leeway(
    fake_provider: FakeProvider, jwks: JwksCache
) -> None:
    """iat may be at most `leeway` seconds ahead of the gateway's clock, not one more."""
    body = claims(fake_provider.issuer)
    token = KEY.sign(body)
    assert body == await validate(token, jwks, fake_provider.issuer, now=body["iat"] - LEEWAY)
    with pytest.raises(IdTokenRejected, match=r"^id_token iat is missing or in the future$"):
        await validate(token, jwks, fake_provider.issuer, now=body["iat"] - LEEWAY - 1)


async def test_a_token_signed_by_another_key_is_refused(
    fake_provider: FakeProvider, jwks: JwksCache
) -> None:
    """A token with the right kid but another private key fails the signature check."""
    token = OTHER_KEY.sign(claims(fake_provider.issuer))
    with pytest.raises(IdTokenRejected, match="Signature verification failed"):
        await validate(token, jwks, fake_provider.issuer)


async def test_an_unknown_key_id_is_refused(fake_provider: FakeProvider, jwks: JwksCache) -> None:
    """A kid the provider never published is refused at the key lookup."""
    token = KEY.sign(claims(fake_provider.issuer), kid="nope")
    with pytest.raises(IdTokenRejected, match=r"^id_token key: "):
        await validate(token, jwks, fake_provider.issuer)


async def test_hs256_with_the_public_key_is_refused_by_the_header_check(
    fake_provider: FakeProvider, jwks: JwksCache
) -> None:
    """The key-confusion forgery is refused at the header, before any key lookup, even
    with HS256 in the configured algorithms."""
    token = hs256_with_public_key({"alg": "HS256", "kid": "k1"})
    with pytest.raises(IdTokenRejected, match=r"^id_token algorithm 'HS256' is not accepted"):
        await validate(token, jwks, fake_provider.issuer, algorithms=("RS256", "HS256"))
    assert 0 == fake_provider.hits["/jwks"]


async def test_a_token_just_past_its_exp_is_accepted_within_the_leeway(
    fake_provider: FakeProvider, jwks: JwksCache
) -> None:
    """Clock skew: an id_token whose exp passed 10 s ago is still accepted (leeway 30)."""
    body = claims(fake_provider.issuer, exp=int(time.time()) - 10)
    assert body == await validate(KEY.sign(body), jwks, fake_provider.issuer)


async def test_a_provider_with_several_issuer_names_is_matched_against_each(
    fake_provider: FakeProvider, jwks: JwksCache
) -> None:
    """Where a provider has several issuer names (a profile lists them), a token from any
    of them is accepted, and from no other."""
    body = claims(fake_provider.issuer)
    names = ("https://alias.example", fake_provider.issuer)
    result = await validate_id_token(
        KEY.sign(body), jwks=jwks, issuer=names, client_id=CLIENT, nonce="n-1",
        algorithms=["RS256"], leeway=LEEWAY, now=time.time(),
    )  # fmt: skip
    assert body == result
    with pytest.raises(IdTokenRejected, match="Invalid issuer"):
        await validate_id_token(
            KEY.sign(body), jwks=jwks, issuer=["https://alias.example"], client_id=CLIENT,
            nonce="n-1", algorithms=["RS256"], leeway=LEEWAY, now=time.time(),
        )  # fmt: skip


def test_a_stored_id_token_is_read_without_its_key_even_when_expired() -> None:
    """The id_token kept in a sealed session is re-read long after login: its claims come
    back although it expired an hour ago and no key is at hand; a value that is no JWT
    gives no claims (the claim base is then empty), never an exception."""
    body = claims("https://idp.example", exp=int(time.time()) - 3600, groups=["admins"])
    assert body == stored_id_token_claims(KEY.sign(body))
    assert body == stored_id_token_claims(OTHER_KEY.sign(body))
    assert {} == stored_id_token_claims("not-a-jwt")
    assert {} == stored_id_token_claims("")
