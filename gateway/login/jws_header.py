"""The unverified JOSE header of a provider-signed token: which algorithm and key to use."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jwt

# A provider signs with its private key: "none" and shared-secret HMAC are never accepted.
NEVER = frozenset({"none", "HS256", "HS384", "HS512"})


class HeaderRejected(ValueError):
    """The header is unreadable or names an algorithm we do not accept."""


@dataclass(frozen=True, slots=True)
class SigningHeader:
    alg: str
    kid: str | None
    typ: str | None


def read_signing_header(token: str, algorithms: Sequence[str]) -> SigningHeader:
    """The header's alg (checked against ``algorithms`` minus NEVER), kid and typ."""
    try:
        header: dict[str, Any] = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise HeaderRejected("is not a signed JWT") from None
    alg = header.get("alg")
    allowed = [a for a in algorithms if a not in NEVER]
    if not isinstance(alg, str) or alg not in allowed:
        raise HeaderRejected(f"algorithm {str(alg)[:20]!r} is not accepted (allowed: {allowed})")
    kid, typ = header.get("kid"), header.get("typ")
    return SigningHeader(
        alg, kid if isinstance(kid, str) else None, typ if isinstance(typ, str) else None
    )
