"""Certificate-bound tokens (RFC 8705) without a gateway: the thumbprint of the certificate a
request came with must be the token's `cnf.x5t#S256`, and a proxy's header is read strictly."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding

from gateway.errors import InvalidToken
from gateway.tokens.certificate_binding import (
    MAX_CERTIFICATE_HEADER,
    bound_certificate,
    certificate_from_header,
    certificate_thumbprint,
    check_certificate_binding,
)
from tests.support.client_certs import ThrowawayCa, escaped


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """The PEM texts of two client certificates from one CA."""
    ca = ThrowawayCa(Path(tmp_path_factory.mktemp("ca")))
    return ca.issue("client-a")[2], ca.issue("client-b")[2]


def der(pem: str) -> bytes:
    return x509.load_pem_x509_certificate(pem.encode()).public_bytes(Encoding.DER)


def x5t(pem: str) -> str:
    """x5t#S256 as RFC 8705 3.1 defines it, from the certificate's own SHA-256 fingerprint."""
    fingerprint = x509.load_pem_x509_certificate(pem.encode()).fingerprint(hashes.SHA256())
    return base64.urlsafe_b64encode(fingerprint).decode().rstrip("=")


def refusal(claims: dict[str, object], thumbprint: str | None) -> str:
    with pytest.raises(InvalidToken) as refused:
        check_certificate_binding(claims, thumbprint)
    assert str(refused.value) == refused.value.public_message
    return refused.value.public_message


def test_thumbprint_is_rfc_8705s_x5t_s256(certificates: tuple[str, str]) -> None:
    """The thumbprint is base64url(SHA-256(DER)) without padding, as the OP puts in cnf."""
    mine, other = certificates
    assert certificate_thumbprint(der(mine)) == x5t(mine)
    assert len(certificate_thumbprint(der(mine))) == 43
    assert certificate_thumbprint(der(mine)) != certificate_thumbprint(der(other))


def test_a_proxys_header_yields_the_certificate(certificates: tuple[str, str]) -> None:
    """The header holds the certificate URL-encoded (nginx's $ssl_client_escaped_cert) or
    as plain PEM; either gives the DER certificate the proxy saw."""
    mine, _ = certificates
    assert certificate_from_header(escaped(mine)) == der(mine)
    assert certificate_from_header(mine) == der(mine)


def test_header_size_cap(certificates: tuple[str, str]) -> None:
    """A header of MAX_CERTIFICATE_HEADER characters is read; one more is not."""
    mine, _ = certificates
    value = escaped(mine)
    filled = value + " " * (MAX_CERTIFICATE_HEADER - len(value))
    assert certificate_from_header(filled) == der(mine)
    assert certificate_from_header(filled + " ") is None


@pytest.mark.parametrize(
    "value",
    ["", "not a certificate", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----",
     "%C3%A9", "é"],
)  # fmt: skip
def test_a_header_without_a_certificate_yields_none(value: str) -> None:
    """Garbage, a broken PEM or non-ASCII text is no certificate (never an exception)."""
    assert certificate_from_header(value) is None


def test_bound_certificate_is_a_non_empty_string_in_cnf() -> None:
    """Only a non-empty string `cnf.x5t#S256` binds a token to a certificate."""
    assert bound_certificate({"cnf": {"x5t#S256": "abc"}}) == "abc"
    for claims in ({}, {"cnf": "x5t#S256"}, {"cnf": {"x5t#S256": ""}}, {"cnf": {"x5t#S256": 1}},
                   {"cnf": {"jkt": "abc"}}):  # fmt: skip
        assert bound_certificate(claims) is None


def test_a_bound_token_needs_its_own_certificate(certificates: tuple[str, str]) -> None:
    """A certificate-bound token passes with its certificate only: with another client's
    certificate, or none, it is refused (invalid_token) saying which."""
    mine, other = certificates
    claims: dict[str, object] = {"sub": "svc", "cnf": {"x5t#S256": x5t(mine)}}
    check_certificate_binding(claims, certificate_thumbprint(der(mine)))
    assert refusal(claims, certificate_thumbprint(der(other))) == (
        "The access token is bound to another client certificate."
    )
    assert refusal(claims, x5t(mine)[:-1]) == (
        "The access token is bound to another client certificate."
    )
    assert refusal(claims, None) == (
        "The access token is bound to a client certificate; none was sent."
    )


def test_an_unbound_token_needs_no_certificate(certificates: tuple[str, str]) -> None:
    """A plain bearer token passes with or without a client certificate."""
    mine, _ = certificates
    check_certificate_binding({"sub": "svc"}, None)
    check_certificate_binding({"sub": "svc", "cnf": {"jkt": "k"}}, x5t(mine))
