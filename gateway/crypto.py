"""Random ids and authenticated encryption with rotating server keys (AES-256-GCM, HKDF, HMAC).

A sealed value is ``version (1) | key id (4) | nonce (12) | ciphertext + tag``. Its key is
derived by HKDF-SHA256 from a server secret, the caller's key material and a context, so
a value can only be opened by someone holding all three.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from collections.abc import Sequence

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from gateway.secret import Secret

__all__ = ["KeyRing", "SealError", "random_token"]

SEAL_VERSION = 1
KEY_ID_SIZE = 4
NONCE_SIZE = 12
TAG_SIZE = 16
_HEADER_SIZE = 1 + KEY_ID_SIZE
_MIN_SEALED = _HEADER_SIZE + NONCE_SIZE + TAG_SIZE
_SEAL_INFO = b"gateway/seal/v1\x00"
_SIGN_INFO = b"gateway/sign/v1"
_KEY_ID_INFO = b"gateway/key-id/v1"
_DERIVE_INFO = b"gateway/derive/v1\x00"


class SealError(ValueError):
    """A sealed value could not be opened: truncated, tampered, or sealed with an unknown key."""


def digest(text: str) -> str:
    """SHA-256 of ``text`` in hex, for keys that must not carry ids, tokens or states in clear.

    Client-sent text may hold surrogate escapes (undecodable bytes): they hash too.
    """
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


def random_token(nbytes: int = 32) -> str:
    """Return ``nbytes`` of OS randomness as unpadded URL-safe base64."""
    return secrets.token_urlsafe(nbytes)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _hkdf(secret: bytes, *, length: int, info: bytes, salt: bytes | None = None) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(secret)


class _ServerKey:
    """One server secret with the sub-keys derived from it once."""

    __slots__ = ("key_id", "root", "sign_key")

    def __init__(self, root: bytes) -> None:
        self.root = root
        self.key_id = _hkdf(self.root, length=KEY_ID_SIZE, info=_KEY_ID_INFO)
        self.sign_key = _hkdf(self.root, length=32, info=_SIGN_INFO)

    def seal_key(self, key_material: bytes, context: bytes) -> bytes:
        # The key material is the HKDF salt: a secret salt is allowed (RFC 5869 3.1) and
        # makes the derived key depend on both the server secret and the per-value secret.
        return _hkdf(self.root, length=32, salt=key_material, info=_SEAL_INFO + context)


class KeyRing:
    """Server secrets, the first sealing and signing, every one still opening and verifying."""

    def __init__(self, server_secrets: Sequence[Secret]) -> None:
        if not server_secrets:
            raise ValueError("a KeyRing needs at least one secret (or use KeyRing.ephemeral())")
        self._keys = [_ServerKey(s.reveal().encode("utf-8")) for s in server_secrets]
        self.is_ephemeral = False

    @classmethod
    def ephemeral(cls) -> KeyRing:
        """A ring with one random secret: values die with the process (single instance only)."""
        ring = cls([Secret(random_token(32))])
        ring.is_ephemeral = True
        return ring

    def derive(self, purpose: str) -> KeyRing:
        """A ring for one purpose: each secret's key HKDF-derived apart from every other use.

        Rotation carries over (the first derived key seals, all open), and nothing sealed
        or signed by this ring opens or verifies with the parent ring, or vice versa.
        """
        info = _DERIVE_INFO + purpose.encode("utf-8")
        ring = KeyRing.__new__(KeyRing)
        ring._keys = [_ServerKey(_hkdf(k.root, length=32, info=info)) for k in self._keys]
        ring.is_ephemeral = self.is_ephemeral
        return ring

    def seal(self, plaintext: bytes, *, key_material: bytes, context: bytes) -> bytes:
        """Encrypt and authenticate ``plaintext`` with the current server secret."""
        current = self._keys[0]
        header = bytes([SEAL_VERSION]) + current.key_id
        nonce = os.urandom(NONCE_SIZE)
        aead = AESGCM(current.seal_key(key_material, context))
        return header + nonce + aead.encrypt(nonce, plaintext, header)

    def open_(self, sealed: bytes, *, key_material: bytes, context: bytes) -> bytes:
        """Decrypt a value from :meth:`seal`; raise :class:`SealError` if it does not verify."""
        if len(sealed) < _MIN_SEALED:
            raise SealError("sealed value is truncated")
        if sealed[0] != SEAL_VERSION:
            raise SealError(f"unknown seal version {sealed[0]}")
        header, key_id = sealed[:_HEADER_SIZE], sealed[1:_HEADER_SIZE]
        nonce, body = (
            sealed[_HEADER_SIZE : _MIN_SEALED - TAG_SIZE],
            sealed[_MIN_SEALED - TAG_SIZE :],
        )
        candidates = [k for k in self._keys if k.key_id == key_id]
        if not candidates:
            raise SealError("sealed with a key that is not in the ring")
        # Two secrets sharing a 4-byte id is unlikely but harmless: try each.
        for key in candidates:
            try:
                return AESGCM(key.seal_key(key_material, context)).decrypt(nonce, body, header)
            except InvalidTag:
                continue
        raise SealError("sealed value does not verify (tampered, or wrong key material)")

    def sign(self, data: bytes) -> str:
        """HMAC-SHA256 of ``data`` with the current secret, as unpadded URL-safe base64."""
        mac = hmac.HMAC(self._keys[0].sign_key, hashes.SHA256())
        mac.update(data)
        return _b64(mac.finalize())

    def macs(self, data: bytes) -> list[str]:
        """HMAC-SHA256 of ``data`` in hex under each secret, the current one first: names
        (store keys) that only the gateway can compute, still found after a rotation."""
        names = []
        for key in self._keys:
            mac = hmac.HMAC(key.sign_key, hashes.SHA256())
            mac.update(data)
            names.append(mac.finalize().hex())
        return names

    def verify(self, data: bytes, signature: str) -> bool:
        """Whether ``signature`` is a :meth:`sign` of ``data`` by any secret in the ring."""
        try:
            padded = signature + "=" * (-len(signature) % 4)
            raw = base64.b64decode(padded, altchars=b"-_", validate=True)
        except ValueError:
            return False
        for key in self._keys:
            mac = hmac.HMAC(key.sign_key, hashes.SHA256())
            mac.update(data)
            try:
                mac.verify(raw)  # constant-time comparison inside cryptography
            except InvalidSignature:
                continue
            return True
        return False
