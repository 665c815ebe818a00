"""Client authentication at the token endpoint (RFC 6749 2.3, OIDC Core 9, RFC 7523)."""

from __future__ import annotations

import base64
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from gateway.config.model import Provider
from gateway.secret import Secret

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


class ClientAuthenticator:
    """Adds the provider's chosen client authentication to a token-endpoint request."""

    def __init__(
        self,
        method: str,
        client_id: str,
        secret: Secret | None,
        private_key_file: str | None = None,
        key_id: str | None = None,
    ) -> None:
        self.method = method
        self.client_id = client_id
        self._secret = secret
        self._key_id = key_id
        self._private_key = Path(private_key_file).read_bytes() if private_key_file else None

    @classmethod
    def for_provider(cls, provider: Provider) -> ClientAuthenticator:
        return cls(
            provider.token_endpoint_auth_method,
            provider.client_id,
            provider.client_secret,
            provider.private_key_file,
            provider.private_key_id,
        )

    def apply(self, form: dict[str, str], headers: dict[str, str], audience: str) -> None:
        """Put credentials into ``form``/``headers`` for a POST to ``audience``."""
        if self.method == "client_secret_basic":
            # RFC 6749 2.3.1: id and secret are form-urlencoded before base64.
            pair = f"{quote(self.client_id, safe='')}:{quote(self._reveal(), safe='')}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        elif self.method == "client_secret_post":
            form["client_id"] = self.client_id
            form["client_secret"] = self._reveal()
        elif self.method == "private_key_jwt":
            form["client_id"] = self.client_id
            form["client_assertion_type"] = ASSERTION_TYPE
            form["client_assertion"] = self._assertion(audience)
        else:  # none: a public client identifies itself only
            form["client_id"] = self.client_id

    def _reveal(self) -> str:
        return self._secret.reveal() if self._secret else ""

    def _assertion(self, audience: str) -> str:
        if self._private_key is None:
            raise ValueError("private_key_jwt without a private key")
        now = int(time.time())
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": audience,
            "jti": uuid.uuid4().hex,
            "iat": now,
            "exp": now + 60,
        }
        algorithm = _algorithm_for(self._private_key)
        headers = {"kid": self._key_id} if self._key_id else None
        return jwt.encode(claims, self._private_key, algorithm=algorithm, headers=headers)


def _algorithm_for(pem: bytes) -> str:
    key = load_pem_private_key(pem, password=None)
    if isinstance(key, rsa.RSAPrivateKey):
        return "RS256"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return "ES256"
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "EdDSA"
    raise ValueError("private_key_file must hold an RSA, EC P-256 or Ed25519 key")
