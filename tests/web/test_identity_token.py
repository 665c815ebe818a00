"""Signed identity tokens end to end: real login or bearer token, echo upstream, JWKS."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import yaml

from tests.support.gateway import REPO_ROOT, GatewayProcess
from tests.support.login import http_login
from tests.support.op import OidcProvider
from tests.support.ports import free_port
from tests.support.signing_keys import write_key
from tests.web.login_setup import start_login_gateway

ISSUER = "https://gateway.example.test"
PARRA_SECRET = "parra-api-key-secret-" + "x" * 24
PARRA = {
    "header": "X-Parra-Access-Token",
    "algorithm": "HS256",
    "secret": PARRA_SECRET,
    "issuer": "parra-api-key-id",
    "ttl": 3600,
    "headers": {"cty": "parra-fpa;v=1"},
    "include_standard_claims": False,
    "claims": {"grants": {"identity": "{sub}"}},
}


def jar() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def get_json(session: aiohttp.ClientSession, url: str, **headers: str) -> Any:
    async with session.get(url, headers=headers, allow_redirects=False) as response:
        assert response.status == 200, await response.text()
        return await response.json()


def verify(token: str, jwks: dict[str, Any], audience: str) -> dict[str, Any]:
    """Check a token with PyJWT against a fetched JWKS, the way an upstream would."""
    key = jwt.PyJWKSet.from_dict(jwks)[jwt.get_unverified_header(token)["kid"]]
    claims: dict[str, Any] = jwt.decode(
        token, key, algorithms=["RS256", "ES256", "EdDSA"], audience=audience
    )
    return claims


async def test_asymmetric_tokens_verify_against_the_gateway_jwks(
    gateway_factory: Any, oidc_provider: OidcProvider, upstream: str, tmp_path: Path
) -> None:
    """RS256, ES256 and EdDSA tokens reach the upstream, replace a forged one, verify against
    /_gateway/jwks (= /.well-known/jwks.json) and are reused within the session."""
    keys = [{"file": str(write_key(tmp_path, k, k))} for k in ("rsa", "ec", "ed25519")]
    template = {"email": "{claims.email}", "roles": "{claims.groups}", "tier": "gold"}
    routes = [
        {"path": f"/{alg}/", "upstream": upstream,
         "identity_token": {"algorithm": alg, "claims": template, "issuer": ISSUER}}
        for alg in ("RS256", "ES256", "EdDSA")
    ]  # fmt: skip
    gw, _ = start_login_gateway(
        gateway_factory, oidc_provider, upstream, routes=routes, extra={"signing_keys": keys}
    )
    async with jar() as session:
        await http_login(session, f"{gw.url}/RS256/", user="alice")
        jwks = await get_json(session, f"{gw.url}/_gateway/jwks")
        assert await get_json(session, f"{gw.url}/_gateway/.well-known/jwks.json") == jwks
        assert [k["alg"] for k in jwks["keys"]] == ["RS256", "ES256", "EdDSA"]
        for alg in ("RS256", "ES256", "EdDSA"):
            url = f"{gw.url}/{alg}/page"
            body = await get_json(session, url, **{"X-Gateway-Identity": "forged"})
            token = body["headers"]["X-Gateway-Identity"]
            assert jwt.get_unverified_header(token)["alg"] == alg
            claims = verify(token, jwks, audience=upstream)
            assert (claims["iss"], claims["sub"], claims["tier"]) == (ISSUER, "alice", "gold")
            assert (claims["email"], claims["roles"]) == ("alice@example.test", ["users", "admins"])
            again = await get_json(session, url)
            assert again["headers"]["X-Gateway-Identity"] == token  # cached per session


async def test_hs256_token_in_parra_shape_reaches_the_upstream(
    gateway_factory: Any, oidc_provider: OidcProvider, upstream: str
) -> None:
    """Seed 004: header alg HS256, typ JWT, cty parra-fpa;v=1; claims exactly iss, sub, exp and
    grants.identity = the user's sub, signed with the shared secret; a forged one is replaced."""
    routes = [{"path": "/", "upstream": upstream, "identity_token": PARRA}]
    gw, _ = start_login_gateway(gateway_factory, oidc_provider, upstream, routes=routes)
    async with jar() as session:
        await http_login(session, f"{gw.url}/", user="carol")
        body = await get_json(session, f"{gw.url}/feed", **{"X-Parra-Access-Token": "forged"})
    tokens = [v for k, v in body["header_list"] if k.lower() == "x-parra-access-token"]
    assert len(tokens) == 1
    header = jwt.get_unverified_header(tokens[0])
    assert header == {"alg": "HS256", "typ": "JWT", "cty": "parra-fpa;v=1"}
    claims = jwt.decode(tokens[0], PARRA_SECRET, algorithms=["HS256"])
    assert set(claims) == {"iss", "sub", "exp", "grants"}
    assert (claims["iss"], claims["sub"]) == ("parra-api-key-id", "carol")
    assert claims["grants"] == {"identity": "carol"}
    assert abs(claims["exp"] - (time.time() + 3600)) < 60


async def wait_for_kids(url: str, count: int) -> list[str]:
    async with aiohttp.ClientSession() as session:
        for _ in range(100):
            jwks = await get_json(session, f"{url}/_gateway/jwks")
            if len(jwks["keys"]) == count:
                return [k["kid"] for k in jwks["keys"]]
            await asyncio.sleep(0.05)
    raise AssertionError(f"JWKS never had {count} keys")


async def bearer_token_header(gw: GatewayProcess, token: str) -> str:
    async with aiohttp.ClientSession() as session:
        body = await get_json(session, f"{gw.url}/api/x", Authorization=f"Bearer {token}")
    value: str = body["headers"]["X-Gateway-Identity"]
    return value


async def test_key_rotation_last_key_signs_and_all_are_published(
    gateway_factory: Any, oidc_provider: OidcProvider, upstream: str, tmp_path: Path
) -> None:
    """Appending a key and reloading (SIGHUP) makes it the signer; the old key stays published,
    so tokens signed before the rotation still verify. Bearer callers get tokens too."""
    old, new = (
        {"file": str(write_key(tmp_path, kid, "rsa")), "kid": kid} for kid in ("old", "new")
    )
    api = "urn:test:api"
    config = {
        "routes": [{"path": "/api/", "upstream": upstream, "auth": "bearer",
                    "identity_token": {"audience": "billing", "issuer": ISSUER,
                                       "claims": {"app": "{client_id}"}}}],
        "bearer": {"issuers": [{"issuer": oidc_provider.issuer, "audiences": [api],
                                "allow_insecure_http": True, "allow_private_network": True}]},
        "signing_keys": [old],
    }  # fmt: skip
    gw = gateway_factory(config, name="rotation")
    client = oidc_provider.register_client()
    access_token = oidc_provider.client_credentials_token(client, resource=api)
    before = await bearer_token_header(gw, access_token)
    assert jwt.get_unverified_header(before)["kid"] == "old"
    gw.config["signing_keys"] = [old, new]
    gw.write_config()
    gw.send_signal(signal.SIGHUP)
    assert await wait_for_kids(gw.url, 2) == ["old", "new"]
    after = await bearer_token_header(gw, access_token)
    assert jwt.get_unverified_header(after)["kid"] == "new"
    async with aiohttp.ClientSession() as session:
        jwks = await get_json(session, f"{gw.url}/_gateway/jwks")
    for token in (before, after):
        claims = verify(token, jwks, audience="billing")
        assert claims["app"] == client["client_id"]
        assert claims["exp"] <= jwt.decode(access_token, options={"verify_signature": False})["exp"]


def test_identity_token_without_issuer_does_not_start(tmp_path: Path) -> None:
    """An identity token with neither `issuer` nor `public_url` would take its iss from the
    caller's Host header: the gateway refuses to start and names the key path."""
    config = tmp_path / "gateway.yaml"
    route = {"path": "/", "upstream": "http://127.0.0.1:9", "auth": "public",
             "identity_token": {"algorithm": "HS256", "secret": PARRA_SECRET}}  # fmt: skip
    config.write_text(
        yaml.safe_dump({"listen": {"host": "127.0.0.1", "port": free_port()}, "routes": [route]})
    )
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "run", "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=REPO_ROOT,
    )
    assert result.returncode != 0
    assert "routes[0].identity_token.issuer" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
