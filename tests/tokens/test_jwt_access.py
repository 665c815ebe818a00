"""Local JWT access-token validation against a real JWKS server, including token attacks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import warnings
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from gateway.config.model import Bearer, TrustedIssuer
from gateway.errors import InvalidToken
from gateway.tokens.authenticator import BearerAuthenticator
from gateway.tokens.jwt_access import (
    JwtAccessTokenValidator,
    check_header,
    check_times,
    looks_like_jwt,
    unverified_parts,
)
from tests.idp.fake_provider import (
    FakeClock,
    FakeProvider,
    ServerFactory,
    SigningKey,
    ec_key,
    rsa_key,
)

AUDIENCE = "api://orders"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forged(header: dict[str, Any], claims: dict[str, Any], sign: Any = None) -> str:
    """A compact JWS built by hand (for attacks PyJWT refuses to produce)."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    signature = sign(signing_input.encode()) if sign else b""
    return f"{signing_input}.{b64(signature)}"


def bearer_config(fake: FakeProvider, **overrides: Any) -> Bearer:
    issuer = TrustedIssuer(
        issuer=fake.issuer, audiences=[AUDIENCE, "api://other"], allow_insecure_http=True,
        allow_private_network=True, **overrides,
    )  # fmt: skip
    return Bearer(issuers=[issuer])


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(time.time())


@pytest.fixture
def signer(fake_provider: FakeProvider) -> SigningKey:
    key = rsa_key("k1")
    fake_provider.publish(key, ec_key("e1"))
    return key


@pytest.fixture
def auth(
    fake_provider: FakeProvider, http_session: aiohttp.ClientSession, clock: FakeClock
) -> BearerAuthenticator:
    return BearerAuthenticator(bearer_config(fake_provider), http_session, clock=clock)


async def check(auth: BearerAuthenticator, token: str) -> Any:
    return await auth.authenticate(f"Bearer {token}", "")


async def test_valid_rs256(
    auth: BearerAuthenticator, fake_provider: FakeProvider, signer: SigningKey
) -> None:
    """A well-formed RS256 token yields the bearer principal."""
    principal = await check(auth, signer.sign(fake_provider.token_claims()))
    assert principal.kind == "bearer"
    assert (principal.issuer, principal.subject) == (fake_provider.issuer, "user-1")
    assert principal.scopes == frozenset({"orders:read", "orders:write"})
    assert principal.client_id == "cli-1"


async def test_valid_es256_with_scp_and_azp(
    auth: BearerAuthenticator, fake_provider: FakeProvider, signer: SigningKey
) -> None:
    """ES256 works; scopes may come from `scp`, the client from `azp`."""
    claims = fake_provider.token_claims(scope=None, client_id=None, scp=["a", "b"], azp="svc")
    principal = await check(auth, ec_key("e1").sign(claims))
    assert principal.scopes == frozenset({"a", "b"})
    assert principal.client_id == "svc"


@pytest.mark.parametrize("typ", ["at+jwt", "application/at+jwt", "JWT", "AT+JWT"])
async def test_access_token_types_accepted(
    auth: BearerAuthenticator, fake_provider: FakeProvider, signer: SigningKey, typ: str
) -> None:
    """RFC 9068 `at+jwt` and plain `JWT` are accepted."""
    await check(auth, signer.sign(fake_provider.token_claims(), typ=typ))


def now_plus(seconds: int) -> int:
    return int(time.time()) + seconds


REFUSED_CLAIMS = [
    ({"exp": now_plus(-120)}, "expired"),
    ({"exp": None}, "no exp"),
    ({"exp": "tomorrow"}, "not a number"),
    ({"nbf": now_plus(600)}, "not valid yet"),
    ({"iat": now_plus(600)}, "issued in the future"),
    ({"aud": "api://billing"}, "audience"),
    ({"aud": None}, "no aud claim"),
    ({"sub": None, "client_id": None}, "neither a subject nor a client"),
]


@pytest.mark.parametrize(("overrides", "reason"), REFUSED_CLAIMS)
async def test_claims_refused(
    auth: BearerAuthenticator,
    fake_provider: FakeProvider,
    signer: SigningKey,
    overrides: dict[str, Any],
    reason: str,
) -> None:
    """Expired, not-yet-valid, wrong-audience tokens are InvalidToken with a public reason."""
    with pytest.raises(InvalidToken) as caught:
        await check(auth, signer.sign(fake_provider.token_claims(**overrides)))
    assert reason in caught.value.public_message


async def test_expiry_leeway(
    auth: BearerAuthenticator, fake_provider: FakeProvider, signer: SigningKey
) -> None:
    """A token expired 10 s ago passes within the 30 s leeway."""
    await check(auth, signer.sign(fake_provider.token_claims(exp=now_plus(-10))))


async def test_wrong_issuer_is_refused_without_any_fetch(
    auth: BearerAuthenticator, fake_provider: FakeProvider, signer: SigningKey
) -> None:
    """A token from an untrusted issuer is refused before keys are looked up."""
    token = signer.sign(fake_provider.token_claims(iss="https://evil.example"))
    with pytest.raises(InvalidToken, match="issuer is not trusted"):
        await check(auth, token)
    assert sum(fake_provider.hits.values()) == 0


async def test_tampered_payload(
    auth: BearerAuthenticator, fake_provider: FakeProvider, signer: SigningKey
) -> None:
    """Changing one claim breaks the signature."""
    header, _, signature = signer.sign(fake_provider.token_claims()).split(".")
    evil = b64(json.dumps(fake_provider.token_claims(sub="admin")).encode())
    with pytest.raises(InvalidToken, match="signature is invalid"):
        await check(auth, f"{header}.{evil}.{signature}")


async def test_alg_none(
    auth: BearerAuthenticator, fake_provider: FakeProvider, signer: SigningKey
) -> None:
    """An unsigned token (alg none) is refused, with or without a kid."""
    for header in ({"alg": "none"}, {"alg": "none", "kid": "k1"}, {"alg": "None", "typ": "JWT"}):
        with pytest.raises(InvalidToken, match="algorithm is not accepted"):
            await check(auth, forged(header, fake_provider.token_claims()))


async def test_hs256_signed_with_the_rsa_public_key(
    auth: BearerAuthenticator, fake_provider: FakeProvider, signer: SigningKey
) -> None:
    """Algorithm confusion: HMAC keyed with the provider's public key is refused."""
    public_pem = signer.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    jwk_json = json.dumps(signer.public_jwk).encode()
    for secret in (public_pem, jwk_json):
        token = forged(
            {"alg": "HS256", "kid": "k1", "typ": "JWT"},
            fake_provider.token_claims(),
            lambda data, key=secret: hmac.new(key, data, hashlib.sha256).digest(),
        )
        with pytest.raises(InvalidToken, match="algorithm is not accepted"):
            await check(auth, token)


async def test_rs256_key_used_as_ps256_is_refused(
    auth: BearerAuthenticator, fake_provider: FakeProvider, signer: SigningKey
) -> None:
    """A key published for RS256 never verifies another algorithm."""
    with pytest.raises(InvalidToken, match="key cannot be used with its algorithm"):
        await check(auth, signer.sign(fake_provider.token_claims(), alg="PS256"))


@pytest.mark.parametrize("kid", ["../../etc/passwd", "' OR 1=1 --", "k1\x00", "%2e%2e%2f"])
async def test_hostile_kids(
    auth: BearerAuthenticator, fake_provider: FakeProvider, signer: SigningKey, kid: str
) -> None:
    """Path and SQL-ish kids only miss the key dictionary: 401, one forced refetch at most."""
    await check(auth, signer.sign(fake_provider.token_claims()))
    for jti in ("a", "b", "c"):
        with pytest.raises(InvalidToken, match="unknown key"):
            await check(auth, signer.sign(fake_provider.token_claims(jti=jti), kid=kid))
    assert fake_provider.hits["/jwks"] == 2  # the first load, then one refetch (cooldown)


@pytest.mark.parametrize("kid", [7, None, ["k1"], {"k": 1}])
async def test_non_string_kids(
    auth: BearerAuthenticator, fake_provider: FakeProvider, signer: SigningKey, kid: Any
) -> None:
    """A kid that is not a string is a malformed token, never an exception."""
    token = forged({"alg": "RS256", "kid": kid}, fake_provider.token_claims(), lambda d: b"x")
    with pytest.raises(InvalidToken, match=r"malformed|unknown key"):
        await check(auth, token)


@pytest.fixture
async def attacker(aiohttp_server: ServerFactory) -> Any:
    """A server publishing the attacker's keys, counting requests."""
    evil_key = rsa_key("evil", slot=2)
    hits: list[str] = []

    async def jwks(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.json_response({"keys": [evil_key.public_jwk]})

    app = web.Application()
    app.router.add_get("/{tail:.*}", jwks)
    server = await aiohttp_server(app)
    return evil_key, str(server.make_url("/jwks")), hits


async def test_key_location_headers_are_never_fetched(
    auth: BearerAuthenticator, fake_provider: FakeProvider, signer: SigningKey, attacker: Any
) -> None:
    """jku / x5u / jwk / x5c pointing at the attacker are ignored: refused, nothing fetched."""
    evil_key, evil_url, evil_hits = attacker
    claims = fake_provider.token_claims()
    attacks = [
        {"jku": evil_url},
        {"x5u": evil_url},
        {"jwk": evil_key.public_jwk},
        {"x5c": ["MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"]},
        {"jku": evil_url, "kid": "k1"},
    ]
    for headers in attacks:
        with pytest.raises(InvalidToken, match=r"unknown key|signature is invalid"):
            await check(auth, evil_key.sign(claims, **headers))
    assert evil_hits == []
    assert fake_provider.hits["/jwks"] == 2  # the first load, then one refetch (cooldown)


async def test_key_location_headers_on_a_genuine_token_are_ignored(
    auth: BearerAuthenticator, fake_provider: FakeProvider, signer: SigningKey, attacker: Any
) -> None:
    """A token signed by the provider is verified with the provider's keys, jku or not."""
    _, evil_url, evil_hits = attacker
    await check(auth, signer.sign(fake_provider.token_claims(), jku=evil_url, x5u=evil_url))
    assert evil_hits == []


@pytest.mark.parametrize("crit", [["exp"], ["b64"], ["urn:example:x"], [], "b64"])
async def test_crit_header_refused(
    auth: BearerAuthenticator, fake_provider: FakeProvider, signer: SigningKey, crit: Any
) -> None:
    """Critical extensions are not supported, so any `crit` is refused."""
    # PyJWT refuses most `crit` headers while reading; check_header refuses the rest
    # (test_check_header checks that layer alone).
    with pytest.raises(InvalidToken, match=r"malformed|requires extensions"):
        await check(auth, signer.sign(fake_provider.token_claims(), crit=crit, exp=1))


@pytest.mark.parametrize("typ", ["logout+jwt", "dpop+jwt", "secevent+jwt", 5])
async def test_other_token_types_refused(
    auth: BearerAuthenticator, fake_provider: FakeProvider, signer: SigningKey, typ: Any
) -> None:
    """Logout tokens, DPoP proofs and other JWT types are not access tokens."""
    with pytest.raises(InvalidToken, match=r"not an access token \(typ\)|malformed"):
        await check(auth, signer.sign(fake_provider.token_claims(), typ=typ))


async def test_oversized_token(
    auth: BearerAuthenticator, fake_provider: FakeProvider, signer: SigningKey
) -> None:
    """A token beyond 8 KiB is refused before parsing."""
    token = signer.sign(fake_provider.token_claims(padding="x" * 9000))
    with pytest.raises(InvalidToken, match="too large"):
        await check(auth, token)
    assert sum(fake_provider.hits.values()) == 0


async def test_signature_checked_once_until_exp(
    auth: BearerAuthenticator,
    fake_provider: FakeProvider,
    signer: SigningKey,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A repeated token is served from the verification cache until it expires."""
    verified: list[str] = []
    original = JwtAccessTokenValidator._verify

    def counting(token: str, *args: Any) -> dict[str, Any]:
        verified.append(token)
        return original(token, *args)

    monkeypatch.setattr(JwtAccessTokenValidator, "_verify", staticmethod(counting))
    token = signer.sign(fake_provider.token_claims(exp=int(clock.now) + 60))
    for _ in range(5):
        await check(auth, token)
    assert len(verified) == 1
    clock.advance(60 + 31)
    with pytest.raises(InvalidToken, match="expired"):
        await check(auth, token)


async def test_jwks_outage_keeps_cached_keys(
    auth: BearerAuthenticator, fake_provider: FakeProvider, signer: SigningKey, clock: FakeClock
) -> None:
    """Provider stopped: new tokens with a cached kid pass; an unknown kid is a clean 401."""
    await check(auth, signer.sign(fake_provider.token_claims(jti="1")))
    assert fake_provider.server is not None
    await fake_provider.server.close()
    clock.advance(45)  # past the cooldown: the refetch is attempted, fails, is survived
    await check(auth, signer.sign(fake_provider.token_claims(jti="2")))
    with pytest.raises(InvalidToken, match="unknown key"):
        await check(auth, rsa_key("rotated", slot=1).sign(fake_provider.token_claims()))


async def test_rotated_key_after_cooldown(
    auth: BearerAuthenticator, fake_provider: FakeProvider, signer: SigningKey, clock: FakeClock
) -> None:
    """A new kid seen during a refetch's cooldown is refused, then found after it."""
    await check(auth, signer.sign(fake_provider.token_claims()))
    with pytest.raises(InvalidToken, match="unknown key"):  # one refetch, then the cooldown
        await check(auth, signer.sign(fake_provider.token_claims(jti="x"), kid="nope"))
    rotated = rsa_key("k2", slot=1)
    fake_provider.publish(signer, rotated)
    with pytest.raises(InvalidToken, match="unknown key"):
        await check(auth, rotated.sign(fake_provider.token_claims(jti="a")))
    clock.advance(31)
    await check(auth, rotated.sign(fake_provider.token_claims(jti="b")))
    assert fake_provider.hits["/jwks"] == 3


ALG = "The token's signing algorithm is not accepted."
HEADERS = [
    ({"alg": "RS256"}, "RS256"),
    ({"alg": "ES256", "typ": "at+jwt", "kid": "x"}, "ES256"),
    ({"alg": "HS256"}, ALG),
    ({"alg": "none"}, ALG),
    ({"alg": "PS512"}, ALG),  # not in the issuer's list
    ({}, ALG),
    ({"alg": "RS256", "typ": "id_token+jwt"}, "The token is not an access token (typ)."),
    ({"alg": "RS256", "crit": ["exp"]},
     "The token requires extensions this service does not support."),
    ({"alg": "RS256", "kid": 3}, "The access token is malformed."),
]  # fmt: skip


@pytest.mark.parametrize(("header", "expected"), HEADERS)
def test_check_header(header: dict[str, Any], expected: str) -> None:
    """Header checks: alg allow-list (never none/HS*), typ, crit, kid type."""
    allowed = ["RS256", "ES256", "HS256", "none"]
    if expected in ("RS256", "ES256"):
        assert check_header(header, allowed) == expected
        return
    with pytest.raises(InvalidToken) as caught:
        check_header(header, allowed)
    assert expected == caught.value.public_message


TIMES = [
    ({"exp": 1100}, 1000, 0, None),
    ({"exp": 1000}, 1000, 0, "The access token has expired."),
    ({"exp": 990}, 1000, 30, None),
    ({"exp": 1100.5, "nbf": 1020, "iat": 1020}, 1000, 30, None),
    ({"exp": 1100, "nbf": 1030, "iat": 1030}, 1000, 30, None),  # the leeway's edge
    ({"exp": 1100, "nbf": 1031}, 1000, 30, "The access token is not valid yet."),
    ({"exp": 1100, "iat": 1031}, 1000, 30, "The access token was issued in the future."),
    ({"exp": True}, 1000, 0, "The token's exp claim is not a number."),
    ({}, 1000, 0, "The token has no expiry time (exp)."),
]


@pytest.mark.parametrize(("claims", "now", "leeway", "expected"), TIMES)
def test_check_times(
    claims: dict[str, Any], now: float, leeway: float, expected: str | None
) -> None:
    """exp is required; nbf and iat may not lie in the future beyond the leeway."""
    if expected is None:
        assert check_times(claims, now, leeway) == claims["exp"]
        return
    with pytest.raises(InvalidToken) as caught:
        check_times(claims, now, leeway)
    assert expected == caught.value.public_message


async def test_a_token_signed_with_a_short_rsa_key_is_refused(
    auth: BearerAuthenticator, fake_provider: FakeProvider
) -> None:
    """An issuer key under 2048 bits (factorable) is not trusted, even correctly published."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 (the point of the test)
    jwk = json.loads(RSAAlgorithm.to_jwk(private.public_key()))
    jwk.update(kid="weak", use="sig", alg="RS256")
    fake_provider.publish(SigningKey("weak", "RS256", private, jwk))
    with warnings.catch_warnings():  # PyJWT (2.10 and later) warns when signing with it, too
        warnings.simplefilter("ignore")
        token = SigningKey("weak", "RS256", private, jwk).sign(fake_provider.token_claims())
    with pytest.raises(InvalidToken, match="key for this token is unusable"):
        await check(auth, token)


@pytest.mark.parametrize(
    ("token", "jwt_shaped"),
    [("a.b.c", False), ("e30.e30", False), ("bm90IGpzb24.e30.c2ln", False),
     ("W10.e30.c2ln", False), ("e30.bm90.c2ln", True), ("e30.W10.c2ln", True)],
)  # fmt: skip
def test_only_a_json_object_header_makes_a_jwt(token: str, jwt_shaped: bool) -> None:
    """A token is handled as a JWT only with three parts and a JSON-object header (others
    are opaque, for introspection); a JWT whose payload is unreadable is malformed."""
    assert jwt_shaped == looks_like_jwt(token)
    if jwt_shaped:
        with pytest.raises(InvalidToken) as caught:
            unverified_parts(token)
        assert "The access token is malformed." == caught.value.public_message


async def test_an_accepted_jwt_is_reused_until_exp_plus_leeway(
    auth: BearerAuthenticator, fake_provider: FakeProvider, signer: SigningKey, clock: FakeClock
) -> None:
    """A verified token is not verified again; it stays usable until exp + leeway and
    is refused as expired from then on."""
    claims = fake_provider.token_claims()
    token = signer.sign(claims)
    validator = auth.jwt
    first = await validator.validate(token)
    assert claims["exp"] + 30 == first.usable_until
    fake_provider.publish()  # the key is gone: only the memory of the check remains
    assert first is await validator.validate(token)
    clock.advance(claims["exp"] + 30 - clock.now)
    with pytest.raises(InvalidToken) as caught:
        await validator.validate(token)
    assert "The access token has expired." == caught.value.public_message


async def test_only_configured_issuers_are_trusted(
    auth: BearerAuthenticator, fake_provider: FakeProvider, signer: SigningKey
) -> None:
    """trusts() answers for configured issuers only; another issuer's token is refused
    before any key is fetched."""
    assert auth.jwt.trusts(fake_provider.issuer)
    assert not auth.jwt.trusts("https://stranger.example")
    stranger = signer.sign(fake_provider.token_claims(iss="https://stranger.example"))
    with pytest.raises(InvalidToken) as caught:
        await auth.jwt.validate(stranger)
    assert "The token's issuer is not trusted." == caught.value.public_message
    assert 0 == fake_provider.hits["/jwks"]
