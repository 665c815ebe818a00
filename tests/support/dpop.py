"""A DPoP client key (RFC 9449): proofs for the OP's token endpoint and for the gateway."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from tests.support.op import OidcProvider, OPError, _http


class DpopKey:
    """An EC P-256 key that signs DPoP proofs (ES256)."""

    def __init__(self) -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())
        self.public_jwk: dict[str, Any] = dict(
            ECAlgorithm.to_jwk(self._key.public_key(), as_dict=True)
        )

    @property
    def jkt(self) -> str:
        """RFC 7638 thumbprint of the public key."""
        members = {k: self.public_jwk[k] for k in ("crv", "kty", "x", "y")}
        digest = hashlib.sha256(json.dumps(members, separators=(",", ":"), sort_keys=True).encode())
        return base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()

    def proof(
        self,
        method: str,
        url: str,
        *,
        token: str | None = None,
        iat: float | None = None,
        jti: str | None = None,
        **extra: Any,
    ) -> str:
        claims: dict[str, Any] = {
            "htm": method,
            "htu": url,
            "iat": int(time.time() if iat is None else iat),
            "jti": jti or secrets.token_urlsafe(16),
            **extra,
        }
        if token is not None:
            hashed = hashlib.sha256(token.encode()).digest()
            claims["ath"] = base64.urlsafe_b64encode(hashed).rstrip(b"=").decode()
        headers = {"typ": "dpop+jwt", "jwk": self.public_jwk}
        return jwt.encode(claims, self._key, algorithm="ES256", headers=headers)


def dpop_token(
    op: OidcProvider,
    client: dict[str, Any],
    key: DpopKey,
    *,
    resource: str = "urn:test:api",
    scope: str = "api:read",
) -> dict[str, Any]:
    """A DPoP-bound token response from the client_credentials grant (token_type DPoP)."""
    form = {"grant_type": "client_credentials", "resource": resource, "scope": scope}
    headers = op.client_auth(client, form)
    headers["Accept"] = "application/json"
    headers["DPoP"] = key.proof("POST", op.endpoint("token"))
    status, _, body = _http("POST", op.endpoint("token"), form=form, headers=headers)
    if status != 200:
        raise OPError("DPoP token request", status, body)
    result: dict[str, Any] = json.loads(body)
    return result


__all__ = ["DpopKey", "dpop_token"]
