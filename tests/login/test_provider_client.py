"""id_token checks and provider quirks, against a scriptable IdP on loopback.

The real oidc-provider never signs a bad token or answers a mismatched userinfo, so
these faults come from a small fake that signs with keys made in the test.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives.asymmetric import rsa

from gateway.config.model import Provider
from gateway.errors import LoginError
from gateway.login.provider import ProviderClient

CLIENT = "gw-client"
NONCE = "nonce-123"


class FakeIdP:
    """Discovery, JWKS, token and userinfo endpoints whose answers a test controls."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "k1"
        self.issuer = ""
        self.claims: dict[str, Any] = {}
        self.header: dict[str, Any] = {}
        self.alg = "RS256"
        self.signing_key: Any = self.key
        self.userinfo: dict[str, Any] = {}
        self.token_extra: dict[str, Any] = {}
        self.userinfo_paths: list[str] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/.well-known/openid-configuration", self.discovery)
        app.router.add_get("/jwks", self.jwks)
        app.router.add_post("/token", self.token)
        app.router.add_get("/userinfo", self.userinfo_handler)
        app.router.add_get("/users/{id}/info", self.userinfo_handler)
        return app

    async def discovery(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "issuer": self.issuer,
                "authorization_endpoint": f"{self.issuer}/auth",
                "token_endpoint": f"{self.issuer}/token",
                "userinfo_endpoint": f"{self.issuer}/userinfo",
                "jwks_uri": f"{self.issuer}/jwks",
                "id_token_signing_alg_values_supported": ["RS256"],
            }
        )

    async def jwks(self, request: web.Request) -> web.Response:
        public = jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        return web.json_response({"keys": [{**public, "kid": self.kid, "alg": "RS256"}]})

    def id_token(self) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": "user-1",
            "aud": CLIENT,
            "iat": now,
            "exp": now + 300,
            "nonce": NONCE,
            **self.claims,
        }
        claims = {k: v for k, v in claims.items() if v is not None}
        headers = {"kid": self.kid, **self.header}
        if self.alg in ("none", "HS256"):
            # Attack tokens PyJWT refuses to make: unsigned, or HMAC keyed with a public key.
            head = _b64(json.dumps({"alg": self.alg, **headers}).encode())
            signing_input = f"{head}.{_b64(json.dumps(claims).encode())}"
            if self.alg == "none":
                return signing_input + "."
            mac = hmac.new(self.signing_key.encode(), signing_input.encode(), hashlib.sha256)
            return f"{signing_input}.{_b64(mac.digest())}"
        return jwt.encode(claims, self.signing_key, algorithm=self.alg, headers=headers)

    async def token(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "access_token": "at-1",
                "token_type": "Bearer",
                "expires_in": 300,
                "id_token": self.id_token(),
                **self.token_extra,
            }
        )

    async def userinfo_handler(self, request: web.Request) -> web.Response:
        self.userinfo_paths.append(request.path)
        return web.json_response({"sub": "user-1", "email": "u@example.test", **self.userinfo})


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


Complete = Callable[..., Awaitable[tuple[Any, dict[str, Any]]]]


@pytest.fixture
async def idp(aiohttp_server: Callable[..., Awaitable[TestServer]]) -> FakeIdP:
    fake = FakeIdP()
    server = await aiohttp_server(fake.app())
    fake.issuer = str(server.make_url("")).rstrip("/")
    return fake


@pytest.fixture
async def complete(idp: FakeIdP) -> Any:
    sessions: list[aiohttp.ClientSession] = []

    async def run(**provider: Any) -> tuple[Any, dict[str, Any]]:
        config = Provider(
            name="fake",
            issuer=idp.issuer,
            client_id=CLIENT,
            client_secret="x" * 32,
            allow_insecure_http=True,
            allow_private_network=True,
            **provider,
        )
        session = aiohttp.ClientSession()
        sessions.append(session)
        client = ProviderClient(config, session)
        return await client.complete("code", "http://gw/cb", "verifier", NONCE)

    yield run
    for session in sessions:
        await session.close()


async def test_valid_login_merges_userinfo_and_token_fields(idp: FakeIdP, complete: Any) -> None:
    """A good id_token passes; userinfo claims and non-standard token fields become claims."""
    idp.token_extra = {"user_id": "pipa-42"}
    tokens, claims = await complete()
    assert claims["sub"] == "user-1"
    assert claims["email"] == "u@example.test"
    assert claims["user_id"] == "pipa-42"  # PiPA's pairwise user id from the token response
    assert tokens.access_token == "at-1"


async def test_userinfo_url_templated_from_token_response(idp: FakeIdP, complete: Any) -> None:
    """TOKI's userinfo URL embeds the user id from the token response."""
    idp.token_extra = {"userId": "u 7"}
    await complete(endpoints={"userinfo": f"{idp.issuer}/users/{{userId}}/info"})
    assert idp.userinfo_paths == ["/users/u 7/info"]


def _forge_other_key(idp: FakeIdP) -> None:
    idp.signing_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _forge_hs256_with_public_key(idp: FakeIdP) -> None:
    from cryptography.hazmat.primitives import serialization

    idp.alg = "HS256"
    idp.signing_key = (
        idp.key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


REJECTIONS: list[tuple[str, Callable[[FakeIdP], None]]] = [
    ("bad signature", _forge_other_key),
    ("alg none", lambda f: setattr(f, "alg", "none")),
    ("HS256 with the RSA public key", _forge_hs256_with_public_key),
    ("wrong iss", lambda f: f.claims.update(iss="https://evil.test")),
    ("wrong aud", lambda f: f.claims.update(aud="someone-else")),
    ("several aud, no azp", lambda f: f.claims.update(aud=[CLIENT, "other"])),
    ("azp of another client", lambda f: f.claims.update(azp="other")),
    ("expired", lambda f: f.claims.update(exp=int(time.time()) - 600)),
    ("issued in the future", lambda f: f.claims.update(iat=int(time.time()) + 600)),
    ("wrong nonce", lambda f: f.claims.update(nonce="other-nonce")),
    ("no nonce", lambda f: f.claims.update(nonce=None)),
    ("unknown kid", lambda f: f.header.update(kid="no-such-key")),
    ("userinfo sub mismatch", lambda f: f.userinfo.update(sub="someone-else")),
]


@pytest.mark.parametrize(("case", "forge"), REJECTIONS, ids=[c for c, _ in REJECTIONS])
async def test_forged_or_mismatched_tokens_are_refused(
    idp: FakeIdP, complete: Any, case: str, forge: Callable[[FakeIdP], None]
) -> None:
    """Each broken id_token or userinfo ends the login with a LoginError (no session)."""
    forge(idp)
    with pytest.raises(LoginError):
        await complete()
