"""The gateway's own signing keys (PEM files) and their public JWK Set (RFC 7517, RFC 7638).

Every configured key is published; for each algorithm the *last* key of its type signs, so
rotation is: append the new key, wait for relying parties to refetch the JWKS, drop the old.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from gateway.config.model import SigningKey as SigningKeyConfig
from gateway.errors import ConfigError

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
_SUPPORTED = (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey, ed25519.Ed25519PrivateKey)
MIN_RSA_BITS = 2048
# RFC 7638 3.2: the members of each key type that enter the thumbprint.
_THUMBPRINT_MEMBERS = {
    "RSA": ("e", "kty", "n"),
    "EC": ("crv", "kty", "x", "y"),
    "OKP": ("crv", "kty", "x"),
}
KEY_TYPES = {"RS256": "RSA (2048 bits or more)", "ES256": "EC P-256", "EdDSA": "Ed25519"}


@dataclass(frozen=True, slots=True)
class LoadedKey:
    """A private key, the one algorithm it signs with, and its public JWK (with kid)."""

    kid: str
    algorithm: str
    private_key: PrivateKey
    public_jwk: dict[str, Any]


def thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 JWK thumbprint (SHA-256, base64url without padding)."""
    members = {name: jwk[name] for name in _THUMBPRINT_MEMBERS[jwk["kty"]]}
    digest = hashlib.sha256(json.dumps(members, separators=(",", ":"), sort_keys=True).encode())
    return base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode("ascii")


def _algorithm_and_jwk(key: PrivateKey) -> tuple[str, dict[str, Any]]:
    """The signing algorithm and public JWK of a private key; ValueError if unsupported."""
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < MIN_RSA_BITS:
            raise ValueError(f"RSA key of {key.key_size} bits; at least {MIN_RSA_BITS} needed")
        return "RS256", dict(RSAAlgorithm.to_jwk(key.public_key(), as_dict=True))
    if isinstance(key, ec.EllipticCurvePrivateKey):
        if not isinstance(key.curve, ec.SECP256R1):
            raise ValueError(f"EC key on curve {key.curve.name}; only P-256 (ES256) is supported")
        return "ES256", dict(ECAlgorithm.to_jwk(key.public_key(), as_dict=True))
    return "EdDSA", dict(OKPAlgorithm.to_jwk(key.public_key(), as_dict=True))


def load_key(config: SigningKeyConfig) -> LoadedKey:
    """Read one unencrypted PEM private key; ValueError (plain reason) if it cannot be used."""
    try:
        with open(config.file, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise ValueError(f"cannot read {config.file}: {exc.strerror or exc}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ValueError(f"{config.file} is not an unencrypted PEM private key") from None
    if not isinstance(key, _SUPPORTED):
        kind = type(key).__name__
        raise ValueError(f"unsupported key type {kind} (use RSA, EC P-256 or Ed25519)")
    algorithm, jwk = _algorithm_and_jwk(key)
    kid = config.kid or thumbprint(jwk)
    jwk.update(kid=kid, use="sig", alg=algorithm)
    return LoadedKey(kid, algorithm, key, jwk)


class SigningKeys:
    """The loaded keys: the signer for each algorithm and the JWK Set to publish."""

    def __init__(self, keys: Sequence[LoadedKey]) -> None:
        self.keys = tuple(keys)
        self._jwks = {"keys": [dict(k.public_jwk) for k in self.keys]}

    @classmethod
    def load(cls, configs: Sequence[SigningKeyConfig]) -> SigningKeys:
        """Load every configured key; a ConfigError lists every unusable one."""
        keys: list[LoadedKey] = []
        problems: list[str] = []
        for i, config in enumerate(configs):
            try:
                keys.append(load_key(config))
            except ValueError as exc:
                problems.append(f"signing_keys[{i}].file: {exc}")
        kids = [k.kid for k in keys]
        problems += [f"signing_keys: kid {kid!r} is used twice" for kid in _duplicates(kids)]
        if problems:
            raise ConfigError(problems)
        return cls(keys)

    def signer(self, algorithm: str) -> LoadedKey | None:
        """The newest (last configured) key that signs with ``algorithm``."""
        matching = [k for k in self.keys if k.algorithm == algorithm]
        return matching[-1] if matching else None

    def jwks(self) -> dict[str, Any]:
        """The public JWK Set: every key, so tokens signed before a rotation still verify."""
        return {"keys": [dict(k) for k in self._jwks["keys"]]}


def _duplicates(values: Sequence[str]) -> list[str]:
    return [value for value, count in Counter(values).items() if count > 1]
