"""A stand-in identity provider on a real loopback aiohttp server, and signing keys.

Serves discovery, a JWKS, an introspection endpoint and a token endpoint stub; counts every
request per path so tests can assert how many calls the gateway made.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from gateway.idp.addresses import AddressGuard

ServerFactory = Callable[..., Awaitable[TestServer]]


@dataclass(frozen=True)
class SigningKey:
    """A private key with the public JWK a provider would publish for it."""

    kid: str
    alg: str
    private: Any
    public_jwk: dict[str, Any]

    def sign(self, claims: dict[str, Any], **headers: Any) -> str:
        header = {"kid": self.kid, **headers}
        alg = header.pop("alg", self.alg)
        return jwt.encode(claims, self.private, algorithm=alg, headers=header)


@cache
def _rsa_private(slot: int) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@cache
def _ec_private(slot: int) -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def rsa_key(kid: str, *, slot: int = 0, alg: str = "RS256", publish_alg: bool = True) -> SigningKey:
    """An RSA key (generated once per slot for the whole test run)."""
    private = _rsa_private(slot)
    jwk = json.loads(RSAAlgorithm.to_jwk(private.public_key()))
    jwk.update(kid=kid, use="sig", **({"alg": alg} if publish_alg else {}))
    return SigningKey(kid, alg, private, jwk)


def ec_key(kid: str, *, slot: int = 0) -> SigningKey:
    private = _ec_private(slot)
    jwk = json.loads(ECAlgorithm.to_jwk(private.public_key()))
    jwk.update(kid=kid, use="sig", alg="ES256")
    return SigningKey(kid, "ES256", private, jwk)


def open_guard() -> AddressGuard:
    """A guard that lets tests call their loopback servers."""
    return AddressGuard(allow_private_network=True, allow_insecure_http=True)


@dataclass
class FakeProvider:
    """Discovery at /.well-known/openid-configuration, /jwks, /introspect, /token."""

    keys: list[dict[str, Any]] = field(default_factory=list)
    introspection: dict[str, dict[str, Any]] = field(default_factory=dict)
    extra_metadata: dict[str, Any] = field(default_factory=dict)
    hits: Counter[str] = field(default_factory=Counter)
    introspection_requests: list[dict[str, Any]] = field(default_factory=list)
    introspection_delay: float = 0.0
    failing: set[str] = field(default_factory=set)
    required_authorization: str | None = None  # e.g. "Basic ..." the introspection needs
    unsupported: set[str] = field(default_factory=set)  # tokens answered unsupported_token_type
    bad_requests: set[str] = field(default_factory=set)  # tokens answered 400 invalid_request
    server: TestServer | None = None
    issuer: str = ""

    def publish(self, *keys: SigningKey) -> None:
        self.keys = [k.public_jwk for k in keys]

    def token_claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims = {
            "iss": self.issuer, "sub": "user-1", "aud": "api://orders", "iat": now,
            "exp": now + 300, "scope": "orders:read orders:write", "client_id": "cli-1",
        }  # fmt: skip
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def metadata(self) -> dict[str, Any]:
        base = self.issuer
        return {
            "issuer": base,
            "authorization_endpoint": f"{base}/auth",
            "token_endpoint": f"{base}/token",
            "userinfo_endpoint": f"{base}/me",
            "jwks_uri": f"{base}/jwks",
            "end_session_endpoint": f"{base}/session/end",
            "introspection_endpoint": f"{base}/introspect",
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "private_key_jwt"],
            "id_token_signing_alg_values_supported": ["RS256", "ES256"],
            "backchannel_logout_supported": True,
            "backchannel_logout_session_supported": True,
            **self.extra_metadata,
        }

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/.well-known/openid-configuration", self._discovery)
        app.router.add_get("/jwks", self._jwks)
        app.router.add_post("/introspect", self._introspect)
        return app

    def _fail(self, request: web.Request) -> web.Response | None:
        self.hits[request.path] += 1
        if request.path in self.failing:
            return web.Response(status=500, text="down")
        return None

    async def _discovery(self, request: web.Request) -> web.Response:
        return self._fail(request) or web.json_response(self.metadata())

    async def _jwks(self, request: web.Request) -> web.Response:
        return self._fail(request) or web.json_response({"keys": self.keys})

    async def _introspect(self, request: web.Request) -> web.Response:
        failed = self._fail(request)
        if failed:
            return failed
        form = dict(await request.post())
        given = request.headers.get("Authorization")
        if self.required_authorization and given != self.required_authorization:
            return web.json_response({"error": "invalid_client"}, status=401)
        self.introspection_requests.append(
            {"form": form, "authorization": request.headers.get("Authorization")}
        )
        if self.introspection_delay:
            await asyncio.sleep(self.introspection_delay)
        if str(form.get("token")) in self.unsupported:  # oidc-provider, for its own JWTs
            return web.json_response({"error": "unsupported_token_type"}, status=400)
        if str(form.get("token")) in self.bad_requests:
            return web.json_response({"error": "invalid_request"}, status=400)
        answer = self.introspection.get(str(form.get("token")), {"active": False})
        return web.json_response(answer)


async def start_fake_provider(aiohttp_server: ServerFactory) -> FakeProvider:
    """Start a FakeProvider on a loopback port of its own."""
    provider = FakeProvider()
    provider.server = await aiohttp_server(provider.app())
    provider.issuer = str(provider.server.make_url("")).rstrip("/")
    return provider


@pytest.fixture
async def fake_provider(aiohttp_server: ServerFactory) -> FakeProvider:
    """A started FakeProvider (aiohttp_server stops it); publish keys with `.publish(...)`."""
    return await start_fake_provider(aiohttp_server)


class FakeClock:
    """A clock the test moves by hand: `clock()` reads it, `clock.advance(s)` moves it."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
