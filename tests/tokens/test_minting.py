"""Identity-token minting without a network: keys, JWKS, claims, caching, config checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jwt
import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, rsa

from gateway.config.load import parse_config
from gateway.config.model import Config
from gateway.errors import ConfigError
from gateway.policy.routes import RouteTable
from gateway.tokens.minting import IdentityTokenMinter, IdentityTokens
from gateway.tokens.signing_keys import thumbprint
from gateway.types import Principal
from tests.support.signing_keys import write_key

UPSTREAM = "http://app.internal:9000"
ALICE = Principal("session", "https://op.example", "alice", {"email": "a@x.test"}, session_id="s1")


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def config(
    token: dict[str, Any],
    keys: list[dict[str, Any]] | None = None,
    public_url: str | None = "https://gw.example",
) -> Config:
    route = {"path": "/", "upstream": UPSTREAM, "auth": "login", "identity_token": token}
    return Config.model_validate(
        {"routes": [route], "signing_keys": keys or [], "public_url": public_url}
    )


def minter(cfg: Config, clock: Clock | None = None) -> tuple[IdentityTokenMinter, IdentityTokens]:
    tokens = IdentityTokens.compile(cfg, RouteTable(cfg.routes), clock or Clock())
    return tokens.minters[0], tokens


def verify(token: str, tokens: IdentityTokens, audience: str = UPSTREAM) -> dict[str, Any]:
    key = jwt.PyJWKSet.from_dict(tokens.jwks())[jwt.get_unverified_header(token)["kid"]]
    claims: dict[str, Any] = jwt.decode(
        token,
        key,
        algorithms=[key.algorithm_name],
        audience=audience,
        options={"verify_exp": False},
    )
    return claims


def test_thumbprint_matches_rfc7638_example() -> None:
    """The kid default is the RFC 7638 thumbprint: the RFC's own example key gives its value."""
    jwk = {
        "kty": "RSA",
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tS"
        "oc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0"
        "_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4"
        "vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
    }
    assert thumbprint(jwk) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


@pytest.mark.parametrize(
    ("kind", "algorithm"), [("rsa", "RS256"), ("ec", "ES256"), ("ed25519", "EdDSA")]
)
def test_each_key_type_signs_a_verifiable_token(tmp_path: Path, kind: str, algorithm: str) -> None:
    """RS256, ES256 and EdDSA tokens verify against the published JWKS; kid is the thumbprint."""
    cfg = config({"algorithm": algorithm}, [{"file": str(write_key(tmp_path, "k", kind))}])
    mint, tokens = minter(cfg)
    token = mint.mint(ALICE, "https://gw.example")
    (published,) = tokens.jwks()["keys"]
    assert {"d", "p", "q"}.isdisjoint(published)  # public parts only
    header = jwt.get_unverified_header(token)
    assert (algorithm, thumbprint(published)) == (header["alg"], header["kid"])
    claims = verify(token, tokens)
    assert (claims["iss"], claims["sub"]) == ("https://gw.example", "alice")
    assert claims["exp"] - claims["iat"] == 300
    assert claims["jti"]


def test_rotation_last_key_signs_and_all_are_published(tmp_path: Path) -> None:
    """With two keys configured the last one signs, and both stay in the JWKS."""
    keys = [
        {"file": str(write_key(tmp_path, "old", "rsa")), "kid": "old"},
        {"file": str(write_key(tmp_path, "new", "rsa")), "kid": "new"},
    ]
    mint, tokens = minter(config({}, keys))
    token = mint.mint(ALICE, "https://gw.example")
    assert jwt.get_unverified_header(token)["kid"] == "new"
    assert [k["kid"] for k in tokens.jwks()["keys"]] == ["old", "new"]
    assert verify(token, tokens)["sub"] == "alice"


def test_seed_004_shape() -> None:
    """Parra's HS256 token: header alg/typ/cty, claims exactly iss, sub, exp, grants.identity."""
    secret = "k" * 40
    token_cfg = {
        "algorithm": "HS256",
        "secret": secret,
        "issuer": "api-key-id",
        "ttl": 3600,
        "headers": {"cty": "parra-fpa;v=1"},
        "include_standard_claims": False,
        "claims": {"sub": "tenant-1", "grants": {"identity": "{sub}"}},
    }
    clock = Clock()
    mint, _ = minter(config(token_cfg), clock)
    token = mint.mint(ALICE, "https://gw.example")
    assert jwt.get_unverified_header(token) == {
        "alg": "HS256",
        "typ": "JWT",
        "cty": "parra-fpa;v=1",
    }
    claims = jwt.decode(token, secret, algorithms=["HS256"], options={"verify_exp": False})
    expected = {"iss": "api-key-id", "sub": "tenant-1", "exp": int(clock.now) + 3600}
    assert {**expected, "grants": {"identity": "alice"}} == claims


def test_token_reused_per_session_until_shortly_before_expiry() -> None:
    """The same session gets the same token until 60 s before exp; another session its own."""
    clock = Clock()
    mint, _ = minter(config({"algorithm": "HS256", "secret": "k" * 32}), clock)
    first = mint.mint(ALICE, "https://gw.example")
    clock.now += 239
    assert first == mint.mint(ALICE, "https://gw.example")
    other = Principal("session", ALICE.issuer, "alice", ALICE.claims, session_id="s2")
    assert first != mint.mint(other, "https://gw.example")
    clock.now += 2  # 241 s: within the last 60 s of the 300 s lifetime
    assert first != mint.mint(ALICE, "https://gw.example")


def test_token_never_outlives_the_bearer_token() -> None:
    """For a bearer caller, exp is capped at the access token's own exp."""
    clock = Clock()
    mint, _ = minter(config({"algorithm": "HS256", "secret": "k" * 32}), clock)
    caller = Principal("bearer", "https://op.example", "svc", {"exp": int(clock.now) + 30})
    token = mint.mint(caller, "https://gw.example")
    claims = jwt.decode(
        token, "k" * 32, algorithms=["HS256"], options={"verify_aud": False, "verify_exp": False}
    )
    assert int(clock.now) + 30 == claims["exp"]


def test_authorization_header_carries_bearer() -> None:
    """With header Authorization the value is 'Bearer <token>'."""
    mint, _ = minter(config({"algorithm": "HS256", "secret": "k" * 32, "header": "Authorization"}))
    assert mint.header_value(ALICE, "https://gw.example").startswith("Bearer ey")


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ({"algorithm": "HS256"}, "HS256 needs a shared secret"),
        ({"algorithm": "HS256", "secret": "short"}, "at least 32 bytes"),
        ({"algorithm": "RS256", "secret": "k" * 32}, "only HS256 uses a secret"),
        ({"algorithm": "HS256", "secret": "k" * 32, "headers": {"alg": "none"}}, "headers.alg"),
        ({"headers": {"kid": "x"}}, "headers.kid"),
        ({"algorithm": "HS256", "secret": "k" * 32, "claims": {"exp": 1}}, "claims.exp"),
        ({"header": "Cookie"}, "header the gateway controls"),
        ({"header": "Bad Header"}, "not a valid header name"),
        ({"ttl": 0.5}, "ttl"),
    ],
)
def test_invalid_token_settings_are_refused(token: dict[str, Any], message: str) -> None:
    """Inconsistent identity_token settings fail config loading with the key path."""
    route = {"path": "/", "upstream": UPSTREAM, "identity_token": token}
    with pytest.raises(ConfigError, match=message) as caught:
        parse_config(yaml.safe_dump({"routes": [route]}))
    assert any("routes[0].identity_token" in p for p in caught.value.problems)


def test_missing_or_unusable_keys_are_refused(tmp_path: Path) -> None:
    """A route needing a key type nobody configured, an unreadable or non-key file: ConfigError."""
    not_a_key = tmp_path / "junk.pem"
    not_a_key.write_text("hello")
    keys = [
        {"file": str(write_key(tmp_path, "rsa", "rsa"))},
        {"file": str(not_a_key)},
        {"file": str(tmp_path / "absent.pem")},
    ]
    with pytest.raises(ConfigError) as caught:
        IdentityTokens.compile(config({"algorithm": "ES256"}, keys), [])
    assert [
        f"signing_keys[1].file: {not_a_key} is not an unencrypted PEM private key",
        f"signing_keys[2].file: cannot read {tmp_path / 'absent.pem'}: No such file or directory",
    ] == caught.value.problems
    cfg = config({"algorithm": "ES256"}, keys[:1])
    with pytest.raises(
        ConfigError, match=r"routes\[0\]\.identity_token\.algorithm: ES256 needs an EC"
    ):
        minter(cfg)


def test_header_authorization_conflicts_with_pass_access_token() -> None:
    """A route cannot send both its access token and an identity token in Authorization."""
    route = {
        "path": "/",
        "upstream": UPSTREAM,
        "pass_access_token": True,
        "identity_token": {"algorithm": "HS256", "secret": "k" * 32, "header": "authorization"},
    }
    with pytest.raises(ConfigError, match="conflicts with pass_access_token"):
        parse_config(yaml.safe_dump({"routes": [route]}))


def decoded(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(
        token, "k" * 32, algorithms=["HS256"], options={"verify_aud": False, "verify_exp": False}
    )
    return claims


def test_bearer_callers_never_share_a_cached_token() -> None:
    """Two bearer callers of one route (no session) each get a token naming themselves."""
    mint, _ = minter(config({"algorithm": "HS256", "secret": "k" * 32}))
    svc_a = Principal("bearer", "https://op.example", "svc-a", {"sub": "svc-a"})
    svc_b = Principal("bearer", "https://op.example", "svc-b", {"sub": "svc-b"})
    assert "svc-a" == decoded(mint.mint(svc_a))["sub"]
    assert "svc-b" == decoded(mint.mint(svc_b))["sub"]


def test_changed_claims_mint_a_new_token_for_the_same_session() -> None:
    """After a refresh changed the session's claims, the upstream sees the new ones."""
    mint, _ = minter(
        config({"algorithm": "HS256", "secret": "k" * 32, "claims": {"email": "{claims.email}"}})
    )
    assert "a@x.test" == decoded(mint.mint(ALICE))["email"]
    changed = Principal("session", ALICE.issuer, "alice", {"email": "b@x.test"}, session_id="s1")
    assert "b@x.test" == decoded(mint.mint(changed))["email"]


def test_a_session_principal_is_not_capped_by_its_id_token_exp() -> None:
    """Only a bearer caller's exp caps the minted token; a session's claims may carry the
    (long past) id_token exp, which says nothing about the session."""
    clock = Clock()
    mint, _ = minter(config({"algorithm": "HS256", "secret": "k" * 32}), clock)
    session = Principal("session", ALICE.issuer, "alice", {"exp": 1}, session_id="s9")
    assert int(clock.now) + 300 == decoded(mint.mint(session))["exp"]


def test_another_header_carries_the_bare_token() -> None:
    """A header other than Authorization carries the token itself, no 'Bearer ' prefix."""
    mint, _ = minter(config({"algorithm": "HS256", "secret": "k" * 32, "header": "X-Identity"}))
    value = mint.header_value(ALICE)
    assert value.startswith("ey")
    assert "alice" == decoded(value)["sub"]
    assert "X-Identity" == mint.header_name


def test_standard_claims_make_every_token_unique() -> None:
    """Standard claims add iat and a 22-character random jti to each minted token."""
    clock = Clock()
    mint, _ = minter(
        config({"algorithm": "HS256", "secret": "k" * 32, "include_standard_claims": True}), clock
    )
    claims = decoded(mint.mint(ALICE))
    assert int(clock.now) == claims["iat"]
    assert 22 == len(claims["jti"])


def test_a_short_lived_token_is_reminted_in_its_last_quarter() -> None:
    """With a 40 s lifetime the cached token is handed out for 30 s, then replaced."""
    clock = Clock()
    mint, _ = minter(config({"algorithm": "HS256", "secret": "k" * 32, "ttl": 40}), clock)
    first = mint.mint(ALICE)
    clock.now += 29.5
    assert first == mint.mint(ALICE)
    clock.now += 0.5
    assert first != mint.mint(ALICE)


def pem_file(path: Path, key: Any) -> Path:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


def test_weak_or_unsupported_keys_are_refused_saying_why(tmp_path: Path) -> None:
    """An RSA key under 2048 bits, an EC key off P-256 and a DSA key are each refused with
    the reason; a kid used twice is refused too."""
    short = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 (tested)
    keys = [
        {"file": str(pem_file(tmp_path / "short.pem", short))},
        {"file": str(pem_file(tmp_path / "p384.pem", ec.generate_private_key(ec.SECP384R1())))},
        {"file": str(pem_file(tmp_path / "dsa.pem", dsa.generate_private_key(key_size=2048)))},
        {"file": str(write_key(tmp_path, "a", "ec")), "kid": "same"},
        {"file": str(write_key(tmp_path, "b", "ec")), "kid": "same"},
    ]
    with pytest.raises(ConfigError) as caught:
        IdentityTokens.compile(config({"algorithm": "ES256"}, keys), [])
    assert [
        "signing_keys[0].file: RSA key of 1024 bits; at least 2048 needed",
        "signing_keys[1].file: EC key on curve secp384r1; only P-256 (ES256) is supported",
        "signing_keys[2].file: unsupported key type DSAPrivateKey (use RSA, EC P-256 or Ed25519)",
        "signing_keys: kid 'same' is used twice",
    ] == caught.value.problems


def test_published_keys_say_what_they_are_for(tmp_path: Path) -> None:
    """Each published JWK carries use 'sig' and its algorithm, so relying parties pick it."""
    keys = [
        {"file": str(write_key(tmp_path, "e", "ec"))},
        {"file": str(write_key(tmp_path, "r", "rsa"))},
    ]
    _, tokens = minter(config({"algorithm": "ES256"}, keys))
    published = tokens.jwks()["keys"]
    assert [("sig", "ES256"), ("sig", "RS256")] == [(k["use"], k["alg"]) for k in published]


def test_a_later_bearer_token_of_the_same_caller_is_not_outlived() -> None:
    """The same caller presenting a shorter-lived token gets an identity token capped at
    that token's exp, not the cached one minted for its earlier, longer token."""
    clock = Clock()
    mint, _ = minter(config({"algorithm": "HS256", "secret": "k" * 32}), clock)
    long = Principal("bearer", "https://op.example", "svc", {"sub": "svc", "exp": clock.now + 300})
    short = Principal("bearer", "https://op.example", "svc", {"sub": "svc", "exp": clock.now + 30})
    assert int(clock.now) + 300 == decoded(mint.mint(long))["exp"]
    assert int(clock.now) + 30 == decoded(mint.mint(short))["exp"]


def test_each_route_signs_with_its_own_key() -> None:
    """Two routes with the same claims but their own secrets never share a cached token."""
    routes = [
        {"path": "/a/", "upstream": UPSTREAM, "auth": "login",
         "identity_token": {"algorithm": "HS256", "secret": "a" * 32}},
        {"path": "/b/", "upstream": UPSTREAM, "auth": "login"},
        {"path": "/c/", "upstream": UPSTREAM, "auth": "login",
         "identity_token": {"algorithm": "HS256", "secret": "c" * 32}},
    ]  # fmt: skip
    cfg = Config.model_validate({"routes": routes, "public_url": "https://gw.example/"})
    tokens = IdentityTokens.compile(cfg, RouteTable(cfg.routes), Clock())
    assert [0, 2] == sorted(tokens.minters)
    for index, secret in ((0, "a" * 32), (2, "c" * 32)):
        claims = jwt.decode(
            tokens.minters[index].mint(ALICE), secret, algorithms=["HS256"],
            options={"verify_aud": False, "verify_exp": False},
        )  # fmt: skip
        assert "https://gw.example" == claims["iss"]  # public_url without its trailing '/'


def test_the_issuer_is_public_url_without_only_its_trailing_slash() -> None:
    """The default issuer is public_url minus its trailing '/', nothing more: a URL ending
    in other characters (here a capital X) keeps them, or upstreams would refuse the iss."""
    route = {"path": "/", "upstream": UPSTREAM, "auth": "login",
             "identity_token": {"algorithm": "HS256", "secret": "x" * 32}}  # fmt: skip
    for public_url, issuer in (("https://gw.example/appX/", "https://gw.example/appX"),
                               ("https://gw.example/appX", "https://gw.example/appX")):  # fmt: skip
        cfg = Config.model_validate({"routes": [route], "public_url": public_url})
        tokens = IdentityTokens.compile(cfg, RouteTable(cfg.routes), Clock())
        claims = jwt.decode(
            tokens.minters[0].mint(ALICE), "x" * 32, algorithms=["HS256"],
            options={"verify_aud": False, "verify_exp": False},
        )  # fmt: skip
        assert issuer == claims["iss"]


def test_every_unusable_route_is_reported_with_its_key_path() -> None:
    """Problems of several routes are all listed, each under its own key path: a missing
    issuer, an unknown placeholder in the claims."""
    routes = [
        {"path": "/a/", "upstream": UPSTREAM, "auth": "login",
         "identity_token": {"algorithm": "HS256", "secret": "a" * 32}},
        {"path": "/b/", "upstream": UPSTREAM, "auth": "login",
         "identity_token": {"algorithm": "HS256", "secret": "b" * 32, "issuer": "gw",
                            "claims": {"x": "{nope}"}}},
    ]  # fmt: skip
    cfg = Config.model_validate({"routes": routes})
    with pytest.raises(ConfigError) as caught:
        IdentityTokens.compile(cfg, RouteTable(cfg.routes), Clock())
    assert [
        "routes[0].identity_token.issuer: set it (or the top-level public_url) to the name "
        "upstreams expect",
        "routes[1].identity_token.claims.x: unknown placeholder {nope} (known: sub, issuer, "
        "client_id, scope, kind, claims.NAME)",
    ] == caught.value.problems
