"""The JOSE header check on its own: which algorithms a provider-signed token may name."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from gateway.login.jws_header import HeaderRejected, SigningHeader, read_signing_header
from tests.idp.fake_provider import rsa_key

KEY = rsa_key("k1")
EVERYTHING = ["RS256", "ES256", "HS256", "HS384", "HS512", "none"]


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256_with_public_key(header: dict[str, Any]) -> str:
    """The classic key-confusion forgery: HMAC keyed with the provider's public key PEM."""
    secret = KEY.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    payload = b64(json.dumps({"sub": "alice"}).encode())
    signing_input = f"{b64(json.dumps(header).encode())}.{payload}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def test_a_provider_signed_header_is_read() -> None:
    """An RS256 header yields its alg, kid and typ."""
    token = KEY.sign({"sub": "alice"}, typ="logout+jwt")
    assert SigningHeader("RS256", "k1", "logout+jwt") == read_signing_header(token, ["RS256"])


def test_hs256_signed_with_the_public_key_is_refused_even_when_configured() -> None:
    """A token HMAC-signed with the provider's public key is refused by the header check
    alone, even if the configuration (wrongly) lists HS256 as accepted."""
    token = hs256_with_public_key({"alg": "HS256", "kid": "k1", "typ": "JWT"})
    with pytest.raises(HeaderRejected, match=r"algorithm 'HS256' is not accepted"):
        read_signing_header(token, EVERYTHING)


@pytest.mark.parametrize("alg", ["none", "HS256", "HS384", "HS512"])
def test_never_accepted_algorithms_are_refused_whatever_the_list(alg: str) -> None:
    """'none' and the shared-secret HMAC algorithms are refused although listed, and are
    left out of the allowed list the error names."""
    token = hs256_with_public_key({"alg": alg})
    with pytest.raises(HeaderRejected, match=rf"algorithm '{alg}' is not accepted") as info:
        read_signing_header(token, EVERYTHING)
    assert "(allowed: ['RS256', 'ES256'])" in str(info.value)


def test_an_algorithm_outside_the_configured_list_is_refused() -> None:
    """An RS256 token is refused where only ES256 is configured."""
    with pytest.raises(HeaderRejected, match=r"algorithm 'RS256' is not accepted"):
        read_signing_header(KEY.sign({"sub": "alice"}), ["ES256"])


@pytest.mark.parametrize(
    ("header", "shown"),
    [({"typ": "JWT"}, "'None'"), ({"alg": 256}, "'256'"), ({"alg": ["RS256"]}, "\"['RS256']\"")],
)
def test_a_missing_or_non_text_alg_is_refused(header: dict[str, Any], shown: str) -> None:
    """A header without a text alg is refused (never treated as a default algorithm)."""
    token = f"{b64(json.dumps(header).encode())}.{b64(b'{}')}.c2ln"
    with pytest.raises(HeaderRejected, match="is not accepted") as info:
        read_signing_header(token, ["RS256"])
    assert f"algorithm {shown} is not accepted" in str(info.value)


@pytest.mark.parametrize("token", ["not.a.jwt", "", "a.b", "####"])
def test_unreadable_tokens_are_refused(token: str) -> None:
    """Anything that is not a JWS compact serialisation is refused as such."""
    with pytest.raises(HeaderRejected, match=r"^is not a signed JWT$"):
        read_signing_header(token, ["RS256"])


def test_a_long_algorithm_name_is_cut_in_the_message() -> None:
    """The refused alg is quoted at most 20 characters long (no log flooding)."""
    token = hs256_with_public_key({"alg": "X" * 500})
    with pytest.raises(HeaderRejected, match="is not accepted") as info:
        read_signing_header(token, ["RS256"])
    assert f"algorithm '{'X' * 20}' is not accepted" in str(info.value)


def test_a_non_text_typ_is_ignored() -> None:
    """A typ that is not text is read as absent, never passed on as an object."""
    token = hs256_with_public_key({"alg": "RS256", "kid": "k1", "typ": {"a": 1}})
    assert SigningHeader("RS256", "k1", None) == read_signing_header(token, ["RS256"])


def test_a_non_text_kid_is_refused() -> None:
    """A kid that is not text makes the header unreadable."""
    token = hs256_with_public_key({"alg": "RS256", "kid": 7})
    with pytest.raises(HeaderRejected, match=r"^is not a signed JWT$"):
        read_signing_header(token, ["RS256"])
