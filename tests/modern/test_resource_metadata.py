"""OAuth protected-resource metadata (RFC 9728): a client finds how to get a token."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support.op import OidcProvider
from tests.web.test_bearer_routes import trusted_issuer


@pytest.fixture
def url_resource_op(tmp_path: Path) -> Iterator[OidcProvider]:
    """An OP that issues JWTs for any loopback URL named as the resource (RFC 8707)."""
    op = OidcProvider(tmp_path / "op-rs", env={"OP_URL_RESOURCES": "1"})
    op.start()
    yield op
    op.stop()


def _param(challenge: str, name: str) -> str | None:
    match = re.search(rf'{name}="([^"]*)"', challenge)
    return match.group(1) if match else None


async def test_client_discovers_authorization_server_from_401(
    gateway_factory: Any, url_resource_op: OidcProvider, upstream: str
) -> None:
    """The RFC 9728 client flow: a 401 names the metadata, the metadata names the resource,
    the authorization server and the scope; a token asked for that resource then passes."""
    op = url_resource_op
    gw = gateway_factory({"routes": []}, start=False, name="mcp")
    resource_server = op.register_client()
    gw.config.update(
        routes=[
            {"name": "mcp", "path": "/mcp/", "upstream": upstream, "auth": "bearer",
             "policy": {"scopes_all": ["api:read"]}},
            {"path": "/", "upstream": upstream, "auth": "public"},
        ],
        bearer={"issuers": [trusted_issuer(op, resource_server, audiences=[f"{gw.url}/mcp/"])]},
    )  # fmt: skip
    gw.start()
    agent = op.register_client()
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{gw.url}/mcp/tools", headers={"Accept": "application/json"}) as r:
            assert r.status == 401
            challenge = r.headers["WWW-Authenticate"]
        metadata_url = _param(challenge, "resource_metadata")
        assert metadata_url == f"{gw.url}/.well-known/oauth-protected-resource/mcp/"
        async with http.get(metadata_url) as r:
            assert r.status == 200
            metadata = await r.json()
        assert metadata["resource"] == f"{gw.url}/mcp/"
        assert metadata["authorization_servers"] == [op.issuer]
        assert metadata["scopes_supported"] == ["api:read"]
        assert metadata["bearer_methods_supported"] == ["header"]
        assert "ES256" in metadata["dpop_signing_alg_values_supported"]
        issuer = metadata["authorization_servers"][0]
        async with http.get(f"{issuer}/.well-known/openid-configuration") as r:
            assert (await r.json())["issuer"] == issuer
        token = op.token_request(
            agent,
            {"grant_type": "client_credentials", "resource": metadata["resource"],
             "scope": " ".join(metadata["scopes_supported"])},
        )["access_token"]  # fmt: skip
        async with http.get(
            f"{gw.url}/mcp/tools", headers={"Authorization": f"Bearer {token}"}
        ) as r:
            assert r.status == 200
            assert (await r.json())["path"] == "/mcp/tools"


async def test_metadata_only_for_bearer_routes(
    gateway_factory: Any, oidc_provider: OidcProvider, upstream: str
) -> None:
    """The well-known path of a route that takes no tokens is the upstream's, as before;
    login routes' 401s name no metadata."""
    resource_server = oidc_provider.register_client()
    gw = gateway_factory(
        {
            "routes": [
                {"path": "/api/", "upstream": upstream, "auth": "bearer", "require_dpop": True},
                {"path": "/", "upstream": upstream, "auth": "public"},
            ],
            "bearer": {"issuers": [trusted_issuer(oidc_provider, resource_server)]},
        }
    )
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{gw.url}/.well-known/oauth-protected-resource/site") as r:
            assert r.status == 200
            assert (await r.json())["path"] == "/.well-known/oauth-protected-resource/site"
        async with http.get(f"{gw.url}/.well-known/oauth-protected-resource/api/") as r:
            metadata = await r.json()
        assert metadata["dpop_bound_access_tokens_required"] is True
        async with http.get(f"{gw.url}/api/x", headers={"Accept": "application/json"}) as r:
            assert r.status == 401
            challenge = r.headers["WWW-Authenticate"]
        assert challenge.startswith("DPoP ")
        assert _param(challenge, "resource_metadata") == (
            f"{gw.url}/.well-known/oauth-protected-resource/api/"
        )
