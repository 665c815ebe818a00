"""DPoP proof checks that need no network: forged or malformed proofs are refused."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest

from gateway.config.model import Dpop
from gateway.errors import DpopRefused
from gateway.tokens.dpop import DpopVerifier, normalized_url
from tests.support.dpop import DpopKey

URL = "https://api.example/items"
TOKEN = "tok-123"


def verifier() -> DpopVerifier:
    return DpopVerifier(Dpop(), None)


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_valid_proof_names_its_key() -> None:
    """A well-formed proof for this request verifies and yields its key's thumbprint."""
    key = DpopKey()
    proof = verifier().verify(
        key.proof("GET", URL, token=TOKEN), method="GET", url=URL, token=TOKEN
    )
    assert proof.jkt == key.jkt


def test_unsigned_and_symmetric_proofs_are_refused() -> None:
    """alg none and HS256 (a key anyone holding the JWK could forge with) are refused."""
    key = DpopKey()
    claims = {"htm": "GET", "htu": URL, "iat": int(time.time()), "jti": "j"}
    header: dict[str, object] = {"typ": "dpop+jwt", "alg": "none", "jwk": key.public_jwk}
    unsigned = f"{_b64(header)}.{_b64(claims)}."
    hs = jwt.encode(claims, "k" * 32, algorithm="HS256",
                    headers={"typ": "dpop+jwt", "jwk": {"kty": "oct", "k": "a2s"}})  # fmt: skip
    for proof in (unsigned, hs):
        with pytest.raises(DpopRefused) as refused:
            verifier().verify(proof, method="GET", url=URL, token=TOKEN)
        assert refused.value.error == "invalid_dpop_proof"


def test_wrong_type_and_private_key_material_are_refused() -> None:
    """A proof must say typ dpop+jwt, and carry only a public key."""
    key = DpopKey()
    wrong_type = key.proof("GET", URL, token=TOKEN).split(".")
    header = json.loads(base64.urlsafe_b64decode(wrong_type[0] + "=="))
    with pytest.raises(DpopRefused):
        verifier().verify(
            jwt.encode({"htm": "GET", "htu": URL, "iat": int(time.time()), "jti": "x"},
                       key._key, algorithm="ES256", headers={"typ": "JWT", "jwk": header["jwk"]}),
            method="GET", url=URL, token=TOKEN,
        )  # fmt: skip
    with pytest.raises(DpopRefused):
        verifier().verify(
            jwt.encode({"htm": "GET", "htu": URL, "iat": int(time.time()), "jti": "x"},
                       key._key, algorithm="ES256",
                       headers={"typ": "dpop+jwt", "jwk": {**header["jwk"], "d": "AAAA"}}),
            method="GET", url=URL, token=TOKEN,
        )  # fmt: skip


def test_url_normalisation() -> None:
    """htu is compared without query or fragment, with default ports and case folded, and
    with the path read as the gateway reads request paths."""
    assert normalized_url("HTTPS://API.example:443/a%7Eb?x=1#f") == "https://api.example/a~b"
    assert normalized_url("http://h:8080/") == "http://h:8080/"
    assert normalized_url("https://h/a/../b") is None
    assert normalized_url("ftp://h/") is None
    assert normalized_url("https://user@h/") is None
