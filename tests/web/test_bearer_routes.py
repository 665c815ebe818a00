"""Bearer-token routes end to end: the gateway as a subprocess against the real oidc-provider."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from typing import Any

import aiohttp
import jwt
from jwt.utils import base64url_encode

from tests.support.gateway import GatewayProcess
from tests.support.keys import rsa_client_key
from tests.support.login import HTML_ACCEPT
from tests.support.op import OidcProvider

API = "urn:test:api"
INTROSPECTION = "POST /token/introspection"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
IDENTITY = {
    "X-Auth-Request-User": "sub",
    "X-Auth-Request-Client": "client_id",
    "X-Auth-Request-Scopes": "scope",
}


def op_counters(op: OidcProvider) -> dict[str, int]:
    """Requests the OP has served, by "METHOD /path" (tests/op/op.mjs GET /test/counters)."""
    with urllib.request.urlopen(op.url("/test/counters"), timeout=5) as response:
        counters: dict[str, int] = json.loads(response.read())
    return counters


def trusted_issuer(op: OidcProvider, resource_server: dict[str, Any], **extra: Any) -> Any:
    """The bearer config trusting `op`, introspecting as the registered resource server."""
    introspection = {
        "client_id": resource_server["client_id"],
        "client_secret": resource_server["client_secret"],
        **extra.pop("introspection", {}),
    }
    return {
        "issuer": op.issuer,
        "audiences": [API],
        "allow_insecure_http": True,
        "allow_private_network": True,
        "leeway": 0,
        "introspection": introspection,
        **extra,
    }


def api_routes(upstream: str) -> list[dict[str, Any]]:
    return [
        {"path": "/api/", "upstream": upstream, "auth": "bearer",
         "policy": {"scopes_all": ["api:read"]}},
        {"path": "/write/", "upstream": upstream, "auth": "bearer",
         "policy": {"scopes_all": ["api:write"]}},
        {"path": "/bare/", "upstream": upstream, "auth": "bearer",
         "forward_authorization": False},
    ]  # fmt: skip


def start_api_gateway(
    factory: Any, op: OidcProvider, upstream: str, **issuer: Any
) -> tuple[GatewayProcess, dict[str, Any]]:
    """A gateway with bearer routes trusting `op`; returns it and the resource-server client."""
    resource_server = op.register_client()
    config = {
        "routes": api_routes(upstream),
        "bearer": {"issuers": [trusted_issuer(op, resource_server, **issuer)]},
        "identity": {"headers": IDENTITY},
    }
    return factory(config, name="api"), resource_server


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def call(url: str, token: str | None = None, **headers: str) -> tuple[int, Any, str]:
    """GET `url` -> (status, JSON body or None, WWW-Authenticate header)."""
    sent = {**(bearer(token) if token else {}), **headers}
    async with (
        aiohttp.ClientSession() as session,
        session.get(url, headers=sent, allow_redirects=False) as response,
    ):
        body = await response.json() if response.content_type == "application/json" else None
        return response.status, body, response.headers.get("WWW-Authenticate", "")


def forged(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    """A JWS compact token with the given parts (for faults the OP cannot produce)."""
    parts = [json.dumps(header).encode(), json.dumps(claims).encode()]
    return b".".join([*map(base64url_encode, parts), base64url_encode(signature)]).decode()


def claims_of(token: str) -> dict[str, Any]:
    payload: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return payload


async def test_jwt_passes_locally_and_survives_a_provider_outage(
    gateway_factory: Any, fresh_oidc_provider: OidcProvider, upstream: str
) -> None:
    """A JWT is checked locally (no introspection); with the OP down, cached keys still
    verify, an unknown kid is a 401 (not 500) and an opaque token is a 503."""
    op = fresh_oidc_provider
    gw, rs = start_api_gateway(gateway_factory, op, upstream)
    first, second = (op.client_credentials_token(rs, resource=API) for _ in range(2))
    opaque = op.client_credentials_token(rs, resource="urn:test:api-opaque")
    assert (await call(f"{gw.url}/api/x", first))[0] == 200
    assert INTROSPECTION not in op_counters(op)
    op.stop()
    status, body, _ = await call(f"{gw.url}/api/x", second)
    assert (status, body["path"]) == (200, "/api/x")
    stranger = rsa_client_key("not-published")
    unknown_kid = jwt.encode(
        claims_of(second), stranger.private_pem, "RS256",
        headers={"kid": stranger.kid, "typ": "at+jwt"},
    )  # fmt: skip
    status, _, challenge = await call(f"{gw.url}/api/x", unknown_kid)
    assert status == 401
    assert 'error="invalid_token"' in challenge
    assert "unknown key" in challenge
    assert (await call(f"{gw.url}/api/x", opaque))[0] == 503


async def test_opaque_token_is_introspected_once_then_cached(
    gateway_factory: Any, oidc_provider: OidcProvider, upstream: str
) -> None:
    """The first request introspects; later ones use the cache, even after a revocation."""
    gw, rs = start_api_gateway(gateway_factory, oidc_provider, upstream)
    token = oidc_provider.client_credentials_token(rs, resource="urn:test:api-opaque")
    before = op_counters(oidc_provider).get(INTROSPECTION, 0)
    status, body, _ = await call(f"{gw.url}/api/one", token)
    assert status == 200
    assert rs["client_id"] == body["headers"]["X-Auth-Request-Client"]
    oidc_provider.revoke(rs, token)
    assert oidc_provider.introspect(rs, token) == {"active": False}
    assert (await call(f"{gw.url}/api/two", token))[0] == 200  # cached until exp / cache_ttl
    assert op_counters(oidc_provider)[INTROSPECTION] - before == 2  # the gateway's + ours


async def test_concurrent_requests_with_a_new_token_introspect_once(
    gateway_factory: Any, oidc_provider: OidcProvider, upstream: str
) -> None:
    """100 concurrent requests carrying one unknown opaque token cause one introspection."""
    gw, rs = start_api_gateway(gateway_factory, oidc_provider, upstream)
    token = oidc_provider.client_credentials_token(rs, resource="urn:test:api-opaque")
    before = op_counters(oidc_provider).get(INTROSPECTION, 0)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(i: int) -> int:
            async with session.get(f"{gw.url}/api/{i}", headers=bearer(token)) as response:
                await response.read()
                return response.status

        statuses = await asyncio.gather(*(one(i) for i in range(100)))
    assert statuses == [200] * 100
    assert op_counters(oidc_provider)[INTROSPECTION] - before == 1


async def test_device_flow_token_with_identity_headers(
    gateway_factory: Any, oidc_provider: OidcProvider, upstream: str
) -> None:
    """A device-flow token is accepted (with require_audience off); the upstream gets sub,
    client id and scopes, never
    the caller's spoofed identity headers; forward_authorization: false drops the token."""
    # The OP's device-flow tokens name no audience: this route opts out of requiring one.
    gw, _ = start_api_gateway(
        gateway_factory, oidc_provider, upstream, introspection={"require_audience": False}
    )
    device = oidc_provider.register_client(grant_types=[DEVICE_GRANT], response_types=[])
    token = oidc_provider.device_flow_token(device, "alice")["access_token"]
    spoofed = {"X-Auth-Request-User": "mallory", "x-auth-request-client": "evil",
               "X_Auth_Request_Scopes": "admin", "X-Gateway-Role": "root"}  # fmt: skip
    assert (await call(f"{gw.url}/api/x", token))[0] == 403  # no api:read in this token
    status, body, _ = await call(f"{gw.url}/bare/x", token, **spoofed)
    assert status == 200
    received = [(name.lower(), value) for name, value in body["header_list"]]
    assert ("x-auth-request-user", "alice") in received
    assert ("x-auth-request-client", device["client_id"]) in received
    assert ("x-auth-request-scopes", "openid email profile groups") in received
    assert not [v for _, v in received if v in ("mallory", "evil", "admin", "root")]
    assert "authorization" not in dict(received)


async def test_authorization_is_forwarded_by_default(
    gateway_factory: Any, oidc_provider: OidcProvider, upstream: str
) -> None:
    """On a bearer route without forward_authorization: false the upstream gets the token."""
    gw, rs = start_api_gateway(gateway_factory, oidc_provider, upstream)
    token = oidc_provider.client_credentials_token(rs, resource=API)
    status, body, _ = await call(f"{gw.url}/api/x", token)
    assert (200, f"Bearer {token}") == (status, body["headers"].get("Authorization"))
    assert rs["client_id"] == body["headers"]["X-Auth-Request-User"]  # sub of a client token


def tampered(token: str) -> str:
    header, _, signature = token.split(".")
    claims = {**claims_of(token), "scope": "api:read api:write"}
    return ".".join([header, base64url_encode(json.dumps(claims).encode()).decode(), signature])


def unsigned(token: str) -> str:
    header = {**jwt.get_unverified_header(token), "alg": "none"}
    return forged(header, claims_of(token))


async def test_bad_tokens_get_401_with_the_reason(
    gateway_factory: Any, oidc_provider: OidcProvider, fresh_oidc_provider: OidcProvider,
    upstream: str,
) -> None:  # fmt: skip
    """Expired, wrong audience, foreign issuer, tampered, alg none -> 401 invalid_token with
    the reason in WWW-Authenticate, no token logged; no token -> a bare challenge; a token in
    the URL -> 400."""
    gw, rs = start_api_gateway(gateway_factory, oidc_provider, upstream)
    short = oidc_provider.client_credentials_token(rs, resource="urn:test:api-short")
    good = oidc_provider.client_credentials_token(rs, resource=API)
    foreign_client = fresh_oidc_provider.register_client()
    cases = {
        "has expired": short,
        "not meant for this service (audience)": oidc_provider.client_credentials_token(
            rs, resource="urn:test:other"
        ),
        "issuer is not trusted": fresh_oidc_provider.client_credentials_token(foreign_client),
        "signature is invalid": tampered(good),
        "signing algorithm is not accepted": unsigned(good),
        "is malformed": good.split(".")[0] + ".bm90LWpzb24.c2ln",  # payload "not-json"
    }
    await asyncio.sleep(max(0.0, claims_of(short)["exp"] - time.time()) + 0.1)
    for reason, token in cases.items():
        status, body, challenge = await call(f"{gw.url}/api/x", token)
        assert status == 401, reason
        assert challenge.startswith('Bearer realm="gateway", error="invalid_token", '), reason
        assert reason in challenge, challenge
        assert body["error"] == "invalid_token"
    metadata = f"{gw.url}/.well-known/oauth-protected-resource/api/"  # RFC 9728
    assert (await call(f"{gw.url}/api/x"))[::2] == (
        401,
        f'Bearer realm="gateway", resource_metadata="{metadata}"',
    )
    log = gw.log_text()
    assert [reason for reason, token in cases.items() if token in log] == []  # never logged
    for query in ("access_token=abc", "x=1&Access_Token=abc", "access%5Ftoken=abc"):
        status, body, _ = await call(f"{gw.url}/api/x?{query}", good)  # even with a header
        assert (status, body["error"]) == (400, "bad_request"), query


async def test_missing_scope_gets_403_insufficient_scope(
    gateway_factory: Any, oidc_provider: OidcProvider, upstream: str
) -> None:
    """A valid token without the route's scope -> 403 with error and the required scope."""
    gw, rs = start_api_gateway(gateway_factory, oidc_provider, upstream)
    token = oidc_provider.client_credentials_token(rs, resource=API, scope="api:read")
    status, body, challenge = await call(f"{gw.url}/write/x", token)
    assert (status, body["error"]) == (403, "insufficient_scope")
    assert challenge.startswith('Bearer realm="gateway", error="insufficient_scope"')
    assert 'scope="api:write"' in challenge
    writer = oidc_provider.client_credentials_token(rs, resource=API, scope="api:read api:write")
    assert (await call(f"{gw.url}/write/x", writer))[0] == 200


async def test_introspect_all_mode_falls_back_to_local_checks_for_jwts(
    gateway_factory: Any, oidc_provider: OidcProvider, upstream: str
) -> None:
    """With introspection mode 'all', an OP that refuses JWTs at introspection (400
    unsupported_token_type) does not fail the request: the JWT is checked locally."""
    gw, rs = start_api_gateway(
        gateway_factory, oidc_provider, upstream, introspection={"mode": "all"}
    )
    tokens = [oidc_provider.client_credentials_token(rs, resource=API) for _ in range(3)]
    before = op_counters(oidc_provider).get(INTROSPECTION, 0)
    for token in tokens:
        assert (await call(f"{gw.url}/api/x", token))[0] == 200
    assert op_counters(oidc_provider)[INTROSPECTION] - before == 1  # learnt once, not per token
    opaque = oidc_provider.client_credentials_token(rs, resource="urn:test:api-opaque")
    assert (await call(f"{gw.url}/api/x", opaque))[0] == 200
    other = oidc_provider.client_credentials_token(rs, resource="urn:test:other")
    assert (await call(f"{gw.url}/api/x", other))[0] == 401


async def test_login_or_bearer_takes_a_token_or_redirects_to_login(
    gateway_factory: Any, oidc_provider: OidcProvider, upstream: str
) -> None:
    """login_or_bearer: a bearer token is enough; a navigation without one goes to sign in;
    a bad token is a 401, never a redirect."""
    gw: GatewayProcess = gateway_factory({"routes": []}, start=False, name="mixed")
    client = oidc_provider.register_client(redirect_uris=[f"{gw.url}/_gateway/callback"])
    rs = oidc_provider.register_client()
    gw.config.update(
        routes=[{"path": "/", "upstream": upstream, "auth": "login_or_bearer"}],
        providers=[{
            "name": "op", "issuer": oidc_provider.issuer, "client_id": client["client_id"],
            "client_secret": client["client_secret"], "allow_insecure_http": True,
            "allow_private_network": True,
        }],
        sessions={"cookie_secure": False, "secrets": ["s" * 48]},
        bearer={"issuers": [trusted_issuer(oidc_provider, rs)]},
    )  # fmt: skip
    gw.start()
    token = oidc_provider.client_credentials_token(rs, resource=API)
    status, body, _ = await call(f"{gw.url}/page", token, Accept=HTML_ACCEPT)
    assert (200, rs["client_id"]) == (status, body["headers"]["X-Auth-Request-User"])
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"{gw.url}/page", headers={"Accept": HTML_ACCEPT}, allow_redirects=False
        ) as response,
    ):
        assert response.status == 302
        assert response.headers["Location"].startswith(oidc_provider.endpoint("authorization"))
    assert (await call(f"{gw.url}/page", "not-a-token", Accept=HTML_ACCEPT))[0] == 401
    assert (await call(f"{gw.url}/page", Accept="application/json"))[0] == 401


async def test_introspect_all_mode_pauses_but_never_stops_introspecting_jwts(
    gateway_factory: Any, oidc_provider: OidcProvider, upstream: str
) -> None:
    """With mode 'all', the OP refusing to introspect a JWT (unsupported_token_type) pauses
    introspection of that issuer's JWTs for cache_ttl only, and only after a JWT that passed
    the local checks: a forged JWT drawing the refusal pauses nothing, and once the pause
    ends the next JWT is sent to the OP again."""
    rs = oidc_provider.register_client()
    issuer = trusted_issuer(oidc_provider, rs, introspection={"mode": "all"})
    config = {
        "routes": api_routes(upstream),
        "bearer": {"issuers": [issuer], "cache_ttl": 1},
        "identity": {"headers": IDENTITY},
    }
    gw = gateway_factory(config, name="api")
    tokens = [oidc_provider.client_credentials_token(rs, resource=API) for _ in range(3)]
    stranger = rsa_client_key("not-published")
    forgery = jwt.encode(
        {**claims_of(tokens[0]), "jti": "forged"}, stranger.private_pem, "RS256",
        headers={"kid": stranger.kid, "typ": "at+jwt"},
    )  # fmt: skip
    start = op_counters(oidc_provider).get(INTROSPECTION, 0)

    def asked() -> int:
        return op_counters(oidc_provider).get(INTROSPECTION, 0) - start

    assert (await call(f"{gw.url}/api/x", forgery))[0] == 401
    assert asked() == 1  # the OP refused to introspect it
    assert (await call(f"{gw.url}/api/x", tokens[0]))[0] == 200
    assert asked() == 2  # the forgery paused nothing
    assert (await call(f"{gw.url}/api/x", tokens[1]))[0] == 200
    assert asked() == 2  # paused: the OP refused a JWT that is genuinely its own
    await asyncio.sleep(1.5)
    assert (await call(f"{gw.url}/api/x", tokens[2]))[0] == 200
    assert asked() == 3  # the pause is over: introspected again
