"""DPoP-bound access tokens (RFC 9449) on bearer routes, with tokens from the real OP."""

from __future__ import annotations

import time
from typing import Any, cast

import aiohttp
import jwt
import pytest
import redis

from tests.support.dpop import DpopKey, dpop_token
from tests.support.gateway import GatewayProcess
from tests.support.op import OidcProvider
from tests.support.redis import RedisServer
from tests.web.test_bearer_routes import trusted_issuer

SECRET = "d" * 48


@pytest.fixture
def machine(oidc_provider: OidcProvider) -> dict[str, Any]:
    """A client that gets tokens by client_credentials (bound when it sends a proof)."""
    return oidc_provider.register_client()


def start_gateway(
    factory: Any,
    op: OidcProvider,
    upstream: str,
    redis_server: RedisServer,
    *,
    name: str = "api",
    prefix: str = "dpop:",
    resource_server: dict[str, Any] | None = None,
) -> GatewayProcess:
    """A gateway with a bearer route and a DPoP-only route; instances of one deployment
    share the resource-server client (the shared caches' namespace hashes the config)."""
    resource_server = resource_server or op.register_client()
    config = {
        "routes": [
            {"path": "/api/", "upstream": upstream, "auth": "bearer"},
            {"path": "/strict/", "upstream": upstream, "auth": "bearer", "require_dpop": True},
        ],
        "bearer": {"issuers": [trusted_issuer(op, resource_server)]},
        "sessions": {
            "store": "redis",
            "secrets": [SECRET],
            "redis": {"url": redis_server.url, "key_prefix": prefix},
        },
    }
    gw: GatewayProcess = factory(config, name=name)
    return gw


async def call(
    gw: GatewayProcess,
    path: str,
    *,
    token: str | None = None,
    scheme: str = "DPoP",
    proof: str | None = None,
    method: str = "GET",
) -> tuple[int, str, dict[str, Any]]:
    """(status, WWW-Authenticate, JSON body) of one request through the gateway."""
    headers = {"Accept": "application/json"}
    if token is not None:
        headers["Authorization"] = f"{scheme} {token}"
    if proof is not None:
        headers["DPoP"] = proof
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, gw.url + path, headers=headers) as response,
    ):
        return (
            response.status,
            response.headers.get("WWW-Authenticate", ""),
            await response.json(content_type=None),
        )


def served(body: dict[str, Any]) -> bool:
    """True when the answer is the upstream's echo (it reports the headers it received)."""
    return "headers" in body


@pytest.fixture
def bound(oidc_provider: OidcProvider, machine: dict[str, Any]) -> tuple[DpopKey, str]:
    key = DpopKey()
    response = dpop_token(oidc_provider, machine, key)
    assert response["token_type"] == "DPoP"
    claims = jwt.decode(response["access_token"], options={"verify_signature": False})
    assert claims["cnf"]["jkt"] == key.jkt
    return key, str(response["access_token"])


async def test_bound_jwt_with_valid_proof_passes(
    gateway_factory: Any,
    oidc_provider: OidcProvider,
    upstream: str,
    redis_server: RedisServer,
    bound: tuple[DpopKey, str],
) -> None:
    """A DPoP-bound JWT with a fresh proof for this request reaches the upstream, which
    receives the DPoP authorization as sent."""
    key, token = bound
    gw = start_gateway(gateway_factory, oidc_provider, upstream, redis_server)
    url = f"{gw.url}/api/items"
    status, _, body = await call(
        gw, "/api/items", token=token, proof=key.proof("GET", url, token=token)
    )
    assert status == 200
    assert served(body)
    assert body["headers"]["Authorization"] == f"DPoP {token}"


async def test_bound_token_without_or_with_wrong_proof_is_refused(
    gateway_factory: Any,
    oidc_provider: OidcProvider,
    upstream: str,
    redis_server: RedisServer,
    bound: tuple[DpopKey, str],
) -> None:
    """Each of these never reaches the upstream and gets 401 with a `DPoP` challenge naming
    the RFC's error: the bound token as a plain Bearer token, with no proof, with a proof
    from another key, for another URL, for another method, too old, or for another token."""
    key, token = bound
    gw = start_gateway(gateway_factory, oidc_provider, upstream, redis_server)
    url = f"{gw.url}/api/items"
    other = DpopKey()
    cases = {
        "as bearer": ("Bearer", key.proof("GET", url, token=token), "invalid_token"),
        "no proof": ("DPoP", None, "invalid_dpop_proof"),
        "other key": ("DPoP", other.proof("GET", url, token=token), "invalid_token"),
        "other url": ("DPoP", key.proof("GET", f"{gw.url}/api/other", token=token),
                      "invalid_dpop_proof"),
        "other method": ("DPoP", key.proof("POST", url, token=token), "invalid_dpop_proof"),
        "stale iat": ("DPoP", key.proof("GET", url, token=token, iat=time.time() - 600),
                      "invalid_dpop_proof"),
        "future iat": ("DPoP", key.proof("GET", url, token=token, iat=time.time() + 600),
                       "invalid_dpop_proof"),
        "other token": ("DPoP", key.proof("GET", url, token=token + "x"), "invalid_dpop_proof"),
        "no ath": ("DPoP", key.proof("GET", url), "invalid_dpop_proof"),
    }  # fmt: skip
    for case, (scheme, proof, error) in cases.items():
        status, challenge, body = await call(
            gw, "/api/items", token=token, scheme=scheme, proof=proof
        )
        assert status == 401, case
        assert not served(body), case
        assert challenge.startswith("DPoP "), (case, challenge)
        assert f'error="{error}"' in challenge, (case, challenge)
        assert 'algs="' in challenge, case


async def test_replayed_proof_refused_across_gateways(
    gateway_factory: Any,
    oidc_provider: OidcProvider,
    upstream: str,
    redis_server: RedisServer,
    bound: tuple[DpopKey, str],
) -> None:
    """A proof used once at one gateway is refused at another gateway on the same Redis
    (the same URL, served by both); Redis holds the used jti only sealed."""
    key, token = bound
    rs = oidc_provider.register_client()
    first = start_gateway(
        gateway_factory, oidc_provider, upstream, redis_server, name="a", resource_server=rs
    )
    second = start_gateway(
        gateway_factory, oidc_provider, upstream, redis_server, name="b", resource_server=rs
    )
    jti = "replayed-jti-" + key.jkt[:8]
    # Both gateways answer one public URL (as behind a load balancer): the proof names it.
    url = f"{first.url}/api/items"
    proof = key.proof("GET", url, token=token, jti=jti)
    status, _, _ = await call(first, "/api/items", token=token, proof=proof)
    assert status == 200
    headers = {"Authorization": f"DPoP {token}", "DPoP": proof, "Accept": "application/json",
               "Host": first.url.removeprefix("http://")}  # fmt: skip
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{second.url}/api/items", headers=headers) as response,
    ):
        assert response.status == 401
        assert 'error="invalid_dpop_proof"' in response.headers["WWW-Authenticate"]
        assert "headers" not in await response.json()
    client = redis.Redis.from_url(redis_server.url)
    marks = [k for k in client.scan_iter("dpop:dpop-jti:*")]
    assert marks, "the used jti must be marked in Redis"
    stored = [cast(bytes | None, client.get(k)) for k in marks]
    assert all(jti.encode() not in (value or b"") for value in stored)
    # Fresh proofs still pass on the second gateway: only the replay was refused.
    fresh = key.proof("GET", url, token=token)
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{second.url}/api/items", headers={**headers, "DPoP": fresh}) as response,
    ):
        assert response.status == 200


async def test_route_requiring_dpop_refuses_plain_bearer(
    gateway_factory: Any,
    oidc_provider: OidcProvider,
    upstream: str,
    redis_server: RedisServer,
    machine: dict[str, Any],
    bound: tuple[DpopKey, str],
) -> None:
    """`require_dpop`: an unbound (otherwise valid) bearer token is refused with a DPoP
    challenge, no token gets `DPoP algs=...`; a bound token with its proof passes."""
    gw = start_gateway(gateway_factory, oidc_provider, upstream, redis_server)
    plain = oidc_provider.client_credentials_token(machine)
    status, _, body = await call(gw, "/api/x", token=plain, scheme="Bearer")
    assert status == 200  # the plain token is good where DPoP is not required
    status, challenge, body = await call(gw, "/strict/x", token=plain, scheme="Bearer")
    assert status == 401
    assert not served(body)
    assert challenge.startswith("DPoP ")
    assert 'error="invalid_token"' in challenge
    status, challenge, _ = await call(gw, "/strict/x")
    assert status == 401
    assert challenge.startswith("DPoP ")
    assert "error=" not in challenge
    key, token = bound
    proof = key.proof("GET", f"{gw.url}/strict/x", token=token)
    status, _, body = await call(gw, "/strict/x", token=token, proof=proof)
    assert status == 200
    assert served(body)


async def test_bound_opaque_token_by_introspection(
    gateway_factory: Any,
    oidc_provider: OidcProvider,
    upstream: str,
    redis_server: RedisServer,
    machine: dict[str, Any],
) -> None:
    """An opaque DPoP-bound token (its binding read from the introspection answer) passes
    with its proof and is refused as a plain Bearer token."""
    key = DpopKey()
    token = str(
        dpop_token(oidc_provider, machine, key, resource="urn:test:api-opaque")["access_token"]
    )
    gw = start_gateway(gateway_factory, oidc_provider, upstream, redis_server)
    url = f"{gw.url}/api/o"
    status, _, body = await call(
        gw, "/api/o", token=token, proof=key.proof("GET", url, token=token)
    )
    assert status == 200
    assert served(body)
    status, challenge, body = await call(gw, "/api/o", token=token, scheme="Bearer")
    assert status == 401
    assert not served(body)
    assert 'error="invalid_token"' in challenge


async def test_forward_auth_checks_proof_against_the_original_request(
    gateway_factory: Any,
    oidc_provider: OidcProvider,
    upstream: str,
    redis_server: RedisServer,
    bound: tuple[DpopKey, str],
) -> None:
    """Forward-auth judges the proof against the request the proxy asks about (nginx's
    X-Original-URL and method), not the auth subrequest: a proof for the original passes,
    one for another URL or method is refused."""
    key, token = bound
    resource_server = oidc_provider.register_client()
    gw = gateway_factory(
        {
            "routes": [{"path": "/api/", "upstream": upstream, "auth": "bearer"}],
            "bearer": {"issuers": [trusted_issuer(oidc_provider, resource_server)]},
            "trusted_proxies": ["127.0.0.1/32"],
        }
    )
    original = "https://app.example/api/orders"

    async def ask(proof: str, method: str = "POST") -> tuple[int, str]:
        headers = {"X-Original-URL": original, "X-Original-Method": method,
                   "Authorization": f"DPoP {token}", "DPoP": proof}  # fmt: skip
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{gw.url}/_gateway/auth", headers=headers) as response,
        ):
            return response.status, response.headers.get("WWW-Authenticate", "")

    assert (await ask(key.proof("POST", original, token=token)))[0] == 200
    status, challenge = await ask(key.proof("POST", f"{gw.url}/_gateway/auth", token=token))
    assert status == 401
    assert 'error="invalid_dpop_proof"' in challenge
    status, _ = await ask(key.proof("GET", original, token=token))
    assert status == 401
