"""Build a gateway wired to the test OP with a freshly registered client."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.gateway import GatewayProcess
from tests.support.login import HTML_ACCEPT
from tests.support.op import OidcProvider

SECRET = "s" * 48


def private_key_pair(directory: Path) -> tuple[Path, dict[str, Any]]:
    """A PEM private key file and its public JWK (for private_key_jwt)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = directory / "client-key.pem"
    pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    return pem, {**public, "kid": "client-key-1", "alg": "RS256", "use": "sig"}


def start_login_gateway(
    factory: Any,
    op: OidcProvider,
    upstream: str,
    *,
    auth_method: str = "client_secret_basic",
    sessions: dict[str, Any] | None = None,
    discovery: bool = True,
    routes: list[dict[str, Any]] | None = None,
    provider: dict[str, Any] | None = None,
    name: str = "gateway",
    port: int | None = None,
    client: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    client_metadata: dict[str, Any] | None = None,
) -> tuple[GatewayProcess, dict[str, Any]]:
    """Register a client for a not-yet-started gateway, configure it (plus `extra` top-level
    keys), start it."""
    gw: GatewayProcess = factory({"routes": []}, start=False, name=name, port=port)
    prefix = f"{gw.url}/_gateway"
    if client is None:
        metadata: dict[str, Any] = {
            "redirect_uris": [f"{prefix}/callback"],
            "post_logout_redirect_uris": [f"{prefix}/logged-out"],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": auth_method,
            "backchannel_logout_uri": f"{prefix}/backchannel-logout",
            "backchannel_logout_session_required": True,
            **(client_metadata or {}),
        }
        key_file = None
        if auth_method == "private_key_jwt":
            key_file, public = private_key_pair(gw.workdir)
            metadata["jwks"] = {"keys": [public]}
        client = op.register_client(**metadata)
        if key_file is not None:
            client["_key_file"] = str(key_file)
    entry: dict[str, Any] = {
        "name": "op",
        "label": "Test OP",
        "issuer": op.issuer,
        "client_id": client["client_id"],
        "token_endpoint_auth_method": client["token_endpoint_auth_method"],
        "scopes": ["openid", "email", "profile", "groups", "offline_access"],
        "extra_auth_params": {"prompt": "consent"},
        "allow_insecure_http": True,
        "allow_private_network": True,
        **(provider or {}),
    }
    if client.get("client_secret") and client["token_endpoint_auth_method"] != "none":
        entry["client_secret"] = client["client_secret"]
    if client.get("_key_file"):
        entry.update(private_key_file=client["_key_file"], private_key_id="client-key-1")
    if not discovery:
        meta = op.discovery
        entry["discovery"] = False
        entry["endpoints"] = {
            "authorization": meta["authorization_endpoint"],
            "token": meta["token_endpoint"],
            "userinfo": meta["userinfo_endpoint"],
            "jwks": meta["jwks_uri"],
            "end_session": meta["end_session_endpoint"],
        }
    gw.config.update(
        routes=routes or [{"path": "/", "upstream": upstream, "auth": "login"}],
        providers=[entry],
        sessions={"cookie_secure": False, "secrets": [SECRET], **(sessions or {})},
    )
    gw.config.update(extra or {})
    gw.start()
    return gw, client


async def login_state(session: aiohttp.ClientSession, url: str) -> str:
    """Start a login by navigating to a protected ``url``; return the `state` sent to the OP."""
    start = await session.get(url, allow_redirects=False, headers={"Accept": HTML_ACCEPT})
    return parse_qs(urlsplit(start.headers["Location"]).query)["state"][0]
