"""PEM private keys for the gateway's own signing_keys (identity tokens)."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


def new_key(kind: str) -> PrivateKey:
    """A fresh key: "rsa" (2048 bits), "ec" (P-256) or "ed25519"."""
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if kind == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(kind)


def write_key(directory: Path, name: str, kind: str) -> Path:
    """Write a new unencrypted PKCS#8 PEM key to directory/name.pem (mode 0600)."""
    pem = new_key(kind).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path = directory / f"{name}.pem"
    path.write_bytes(pem)
    path.chmod(0o600)
    return path
