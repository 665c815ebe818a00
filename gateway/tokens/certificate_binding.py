"""Certificate-bound access tokens (RFC 8705 3): `cnf.x5t#S256` must be the SHA-256 of the
client certificate the request came with."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any
from urllib.parse import unquote

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from gateway.idp.jwks import invalid_token

MAX_CERTIFICATE_HEADER = 16 * 1024


def certificate_thumbprint(der: bytes) -> str:
    """x5t#S256: base64url(SHA-256(DER certificate)) without padding."""
    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode("ascii")


def certificate_from_header(value: str) -> bytes | None:
    """The DER certificate in a proxy's header (URL-encoded PEM), or None if it holds none."""
    if len(value) > MAX_CERTIFICATE_HEADER:
        return None
    try:
        certificate = x509.load_pem_x509_certificate(unquote(value).encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        return None
    return certificate.public_bytes(Encoding.DER)


def bound_certificate(claims: dict[str, Any]) -> str | None:
    cnf = claims.get("cnf")
    value = cnf.get("x5t#S256") if isinstance(cnf, dict) else None
    return value if isinstance(value, str) and value else None


def check_certificate_binding(claims: dict[str, Any], thumbprint: str | None) -> None:
    """Refuse (401 invalid_token, RFC 8705 6.1) a bound token without its certificate."""
    bound = bound_certificate(claims)
    if bound is None:
        return
    if thumbprint is None:
        raise invalid_token("The access token is bound to a client certificate; none was sent.")
    if not hmac.compare_digest(bound.encode(), thumbprint.encode()):
        raise invalid_token("The access token is bound to another client certificate.")
