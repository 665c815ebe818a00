"""Reading a bearer token from a request, strictly as RFC 6750 section 2.1 allows."""

from __future__ import annotations

import re
from collections.abc import Sequence

from gateway.errors import BadRequest, InvalidToken
from gateway.policy.query import query_pairs

MAX_TOKEN_HEADER_BYTES = 8 * 1024
# credentials = "Bearer" 1*SP b64token; b64token = 1*(ALPHA / DIGIT / "-._~+/") *"="
BEARER_CREDENTIALS = re.compile(r"[Bb][Ee][Aa][Rr][Ee][Rr] +([A-Za-z0-9\-._~+/]+=*)", re.ASCII)
# RFC 9449 7.1: the same token68 after the DPoP scheme.
DPOP_CREDENTIALS = re.compile(r"[Dd][Pp][Oo][Pp] +([A-Za-z0-9\-._~+/]+=*)", re.ASCII)
_CREDENTIALS = {"bearer": BEARER_CREDENTIALS, "dpop": DPOP_CREDENTIALS}


class MissingToken(InvalidToken):
    """No bearer credentials at all: the challenge then carries no error code (RFC 6750 3.1)."""

    public_message = "An access token is required."


def malformed(reason: str) -> InvalidToken:
    return InvalidToken(reason, public=reason)


def one_authorization_header(values: Sequence[str]) -> str | None:
    """The single Authorization header of a request; several are refused."""
    if len(values) > 1:
        raise malformed("The request carries more than one Authorization header.")
    return values[0] if values else None


def authorization_scheme(header: str | None) -> str:
    """The header's scheme, lower-cased ('' for none)."""
    return re.split(r"[ \t]", header.strip(), maxsplit=1)[0].lower() if header else ""


def parse_bearer(header: str | None, *, dpop: bool = False) -> str:
    """The token of an `Authorization: Bearer <token>` header value (or `DPoP <token>`
    when ``dpop``: whether its proof is good is for tokens/dpop.py to say)."""
    if header is None or not header.strip():
        raise MissingToken("no Authorization header")
    if len(header) > MAX_TOKEN_HEADER_BYTES:
        raise malformed("The access token is too large.")
    scheme = authorization_scheme(header)
    if scheme != "bearer" and not (dpop and scheme == "dpop"):
        raise MissingToken("the Authorization header is not of the Bearer scheme")
    match = _CREDENTIALS[scheme].fullmatch(header)
    if match is None:
        name = "DPoP" if scheme == "dpop" else "Bearer"
        raise malformed(f"The Authorization header is not '{name}' followed by a token.")
    return match.group(1)


def refuse_token_in_query(query_string: str) -> None:
    """Raise BadRequest when the URL carries `access_token` (RFC 6750 2.3 is not supported)."""
    if "access" not in query_string.lower() and "%" not in query_string:
        return
    for name, _ in query_pairs(query_string):
        if name.strip().lower() == "access_token":
            raise BadRequest(
                "access_token in the query string",
                public="Send the access token in the Authorization header, not in the URL.",
            )
