"""Logout tokens signed with the test OP's own key (read from its private keys file).

The OP sends genuine tokens only when a user signs out there; negative and replay cases
need tokens shaped on demand, so these are signed with the very key the OP publishes.
"""

from __future__ import annotations

import base64
import functools
import json
import secrets
import time
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.op import OidcProvider

EVENT = "http://schemas.openid.net/event/backchannel-logout"


def op_private_key(op: OidcProvider) -> tuple[Any, str]:
    """The OP's RS256 signing key and its kid."""
    return _load_key(op.keys_file.read_text())


@functools.cache
def _load_key(keys_json: str) -> tuple[Any, str]:
    # Loading an RSA private key checks it (slow): once per keys file content.
    jwk = json.loads(keys_json)["keys"][0]
    return jwt.PyJWK(jwk).key, str(jwk["kid"])


def logout_claims(op: OidcProvider, client_id: str, **overrides: Any) -> dict[str, Any]:
    """Valid claims for ``client_id``; an override of None drops that claim."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": op.issuer,
        "aud": client_id,
        "iat": now,
        "exp": now + 120,
        "jti": secrets.token_urlsafe(16),
        "events": {EVENT: {}},
        "sub": "alice",
        "sid": "sid-" + secrets.token_hex(8),
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def sign(
    op: OidcProvider,
    claims: dict[str, Any],
    *,
    alg: str = "RS256",
    key: Any = None,
    header: dict[str, Any] | None = None,
) -> str:
    """Sign ``claims`` with the OP's key (or ``key``), typ logout+jwt and the OP's kid."""
    op_key, kid = op_private_key(op)
    headers = {"kid": kid, "typ": "logout+jwt", **(header or {})}
    return jwt.encode(claims, key if key is not None else op_key, alg, headers=headers)


@functools.cache
def foreign_rsa_key() -> rsa.RSAPrivateKey:
    """A key the OP never published: its signatures must not verify (made once)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def unsigned(claims: dict[str, Any]) -> str:
    """An alg=none token (PyJWT refuses to make one, so it is assembled by hand)."""

    def part(data: dict[str, Any]) -> str:
        raw = json.dumps(data, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'logout+jwt'})}.{part(claims)}."
