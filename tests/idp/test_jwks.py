"""JwksCache: key selection by kid and alg, one shared refetch per cooldown, outage tolerance."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from gateway.errors import InvalidToken, ProviderUnavailable
from gateway.idp.jwks import JwksCache, UnknownSigningKey, key_fits, parse_jwks
from tests.idp.fake_provider import FakeClock, FakeProvider, ec_key, open_guard, rsa_key


def cache_for(
    fake: FakeProvider, session: aiohttp.ClientSession, clock: FakeClock, cooldown: float = 30.0
) -> JwksCache:
    return JwksCache(f"{fake.issuer}/jwks", session, open_guard(), cooldown=cooldown, clock=clock)


KEY_FITS = [
    ({"kty": "RSA"}, "RS256", True),
    ({"kty": "RSA"}, "PS384", True),
    ({"kty": "RSA", "alg": "RS256"}, "PS256", False),
    ({"kty": "RSA", "use": "enc"}, "RS256", False),
    ({"kty": "RSA", "key_ops": ["encrypt"]}, "RS256", False),
    ({"kty": "RSA", "key_ops": ["verify"]}, "RS256", True),
    ({"kty": "EC", "crv": "P-256"}, "ES256", True),
    ({"kty": "EC", "crv": "P-384"}, "ES256", False),
    ({"kty": "RSA"}, "ES256", False),
    ({"kty": "OKP", "crv": "Ed25519"}, "EdDSA", True),
    ({"kty": "oct", "k": "c2VjcmV0"}, "HS256", False),
    ({"kty": "RSA"}, "HS256", False),
    ({"kty": "RSA"}, "none", False),
]


@pytest.mark.parametrize(("jwk", "alg", "fits"), KEY_FITS)
def test_key_fits(jwk: dict[str, Any], alg: str, fits: bool) -> None:
    """A key verifies only the algorithms of its type, curve, `alg` and `use`."""
    assert key_fits(jwk, alg) is fits


def test_parse_jwks_drops_symmetric_and_private_keys() -> None:
    """oct keys, private keys and non-string kids are never used."""
    keys = parse_jwks(
        {"keys": [{"kty": "oct", "k": "x"}, {"kty": "RSA", "d": "x"}, {"kty": "RSA", "kid": 5},
                  "junk", {"kty": "RSA", "kid": "ok"}]}
    )  # fmt: skip
    assert keys == [{"kty": "RSA", "kid": "ok"}]
    with pytest.raises(ProviderUnavailable, match="no 'keys' list"):
        parse_jwks({"keys": "nope"})


async def test_key_by_kid_and_alg(
    fake_provider: FakeProvider, http_session: aiohttp.ClientSession
) -> None:
    """The key named by kid is returned and the JWKS is fetched once."""
    rsa, ec = rsa_key("r1"), ec_key("e1")
    fake_provider.publish(rsa, ec)
    cache = cache_for(fake_provider, http_session, FakeClock())
    assert (await cache.key_for("r1", "RS256")).key_id == "r1"
    assert (await cache.key_for("e1", "ES256")).key_id == "e1"
    assert fake_provider.hits["/jwks"] == 1


async def test_wrong_alg_for_key_is_refused(
    fake_provider: FakeProvider, http_session: aiohttp.ClientSession
) -> None:
    """A known kid used with another algorithm (confusion) is InvalidToken, without a refetch."""
    fake_provider.publish(rsa_key("r1"))
    cache = cache_for(fake_provider, http_session, FakeClock(), cooldown=0)
    for alg in ("ES256", "PS256", "HS256", "none"):
        with pytest.raises(InvalidToken):
            await cache.key_for("r1", alg)
    assert fake_provider.hits["/jwks"] == 1


async def test_token_without_kid(
    fake_provider: FakeProvider, http_session: aiohttp.ClientSession
) -> None:
    """No kid: the one fitting key is used; several fitting keys are ambiguous."""
    fake_provider.publish(rsa_key("r1"), ec_key("e1"))
    cache = cache_for(fake_provider, http_session, FakeClock())
    assert (await cache.key_for(None, "ES256")).key_id == "e1"
    fake_provider.publish(rsa_key("r1"), rsa_key("r2", slot=1))
    cache = cache_for(fake_provider, http_session, FakeClock())
    with pytest.raises(InvalidToken, match="several keys"):
        await cache.key_for(None, "RS256")


async def test_unknown_kid_refetches_once_then_rotated_key_works(
    fake_provider: FakeProvider, http_session: aiohttp.ClientSession
) -> None:
    """After the cooldown, an unknown kid triggers one refetch that finds the rotated key."""
    clock = FakeClock()
    fake_provider.publish(rsa_key("old"))
    cache = cache_for(fake_provider, http_session, clock)
    await cache.key_for("old", "RS256")
    fake_provider.publish(rsa_key("old"), rsa_key("new", slot=1))
    clock.advance(31)
    assert (await cache.key_for("new", "RS256")).key_id == "new"
    assert fake_provider.hits["/jwks"] == 2


async def test_cooldown_prevents_refetch_storms(
    fake_provider: FakeProvider, http_session: aiohttp.ClientSession
) -> None:
    """Unknown kids force one refetch; within its cooldown the rest fail without fetching."""
    clock = FakeClock()
    fake_provider.publish(rsa_key("k1"))
    cache = cache_for(fake_provider, http_session, clock)
    await cache.key_for("k1", "RS256")
    for i in range(50):
        with pytest.raises(UnknownSigningKey):
            await cache.key_for(f"attacker-{i}", "RS256")
        clock.advance(0.5)
    assert fake_provider.hits["/jwks"] == 2  # the first load, then one forced refetch


async def test_concurrent_unknown_kids_share_one_fetch(
    fake_provider: FakeProvider, http_session: aiohttp.ClientSession
) -> None:
    """Fifty concurrent callers with the same new kid cause a single refetch."""
    clock = FakeClock()
    fake_provider.publish(rsa_key("old"))
    cache = cache_for(fake_provider, http_session, clock)
    await cache.key_for("old", "RS256")
    fake_provider.publish(rsa_key("new", slot=1))
    clock.advance(31)
    keys = await asyncio.gather(*(cache.key_for("new", "RS256") for _ in range(50)))
    assert {k.key_id for k in keys} == {"new"}
    assert fake_provider.hits["/jwks"] == 2


async def test_outage_keeps_cached_keys(
    fake_provider: FakeProvider, http_session: aiohttp.ClientSession
) -> None:
    """With the JWKS down, cached keys still verify; an unknown kid is InvalidToken."""
    clock = FakeClock()
    fake_provider.publish(rsa_key("k1"))
    cache = JwksCache(
        f"{fake_provider.issuer}/jwks", http_session, open_guard(), clock=clock, max_age=60
    )
    await cache.key_for("k1", "RS256")
    assert fake_provider.server is not None
    await fake_provider.server.close()
    clock.advance(3600)  # past max_age and cooldown: refetches are attempted and fail
    assert (await cache.key_for("k1", "RS256")).key_id == "k1"
    with pytest.raises(UnknownSigningKey):
        await cache.key_for("rotated", "RS256")


async def test_never_loaded_and_down_is_provider_unavailable(
    http_session: aiohttp.ClientSession,
) -> None:
    """Without any key set, an unreachable JWKS is a 503, not a 401."""
    cache = JwksCache("http://127.0.0.1:9/jwks", http_session, open_guard())
    with pytest.raises(ProviderUnavailable, match="signing keys unavailable"):
        await cache.key_for("k1", "RS256")


@pytest.mark.parametrize("kid", ["../../etc/passwd", "' OR 1=1 --", "", "\x00", "k" * 5000])
async def test_hostile_kids_are_plain_lookups(
    fake_provider: FakeProvider, http_session: aiohttp.ClientSession, kid: str
) -> None:
    """Path or SQL-like kids simply match no key."""
    fake_provider.publish(rsa_key("k1"))
    cache = cache_for(fake_provider, http_session, FakeClock())
    with pytest.raises(UnknownSigningKey):
        await cache.key_for(kid, "RS256")


async def test_uri_from_a_callable(
    fake_provider: FakeProvider, http_session: aiohttp.ClientSession
) -> None:
    """The JWKS URI may come from metadata, read when the first fetch happens."""
    fake_provider.publish(rsa_key("k1"))

    async def uri() -> str:
        return f"{fake_provider.issuer}/jwks"

    cache = JwksCache(uri, http_session, open_guard())
    assert (await cache.key_for("k1", "RS256")).key_id == "k1"
