"""Key material for clients that authenticate with private_key_jwt."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm


@dataclass(frozen=True)
class ClientKey:
    """An RSA key pair: the private PEM stays with the client, `public_jwks` goes to the OP."""

    kid: str
    private_pem: str
    public_jwk: dict[str, Any]

    @property
    def public_jwks(self) -> dict[str, Any]:
        return {"keys": [self.public_jwk]}

    def write_pem(self, path: Path) -> Path:
        path.write_text(self.private_pem)
        path.chmod(0o600)
        return path


def rsa_client_key(kid: str | None = None) -> ClientKey:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    jwk: dict[str, Any] = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    kid = kid or f"client-{secrets.token_hex(4)}"
    jwk.update(kid=kid, use="sig", alg="RS256")
    return ClientKey(kid=kid, private_pem=pem, public_jwk=jwk)
