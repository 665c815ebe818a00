"""id_token validation (OIDC Core 3.1.3.7): signature, iss, aud, azp, exp, iat, nonce."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jwt

from gateway.errors import InvalidToken, LoginError
from gateway.idp.jwks import JwksCache
from gateway.login.jws_header import HeaderRejected, read_signing_header


class IdTokenRejected(LoginError):
    code = "id_token_rejected"


async def validate_id_token(
    token: str,
    *,
    jwks: JwksCache,
    issuer: str | Sequence[str],
    client_id: str,
    nonce: str | None,
    algorithms: Sequence[str],
    leeway: float,
    now: float,
) -> dict[str, Any]:
    """The id_token's claims if every check passes; IdTokenRejected naming the first failure."""
    try:
        header = read_signing_header(token, algorithms)
    except HeaderRejected as exc:
        raise IdTokenRejected(f"id_token {exc}") from None
    alg = header.alg
    try:
        key = await jwks.key_for(header.kid, alg)
    except InvalidToken as exc:
        raise IdTokenRejected(f"id_token key: {exc}") from None
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key=key,
            algorithms=[alg],
            audience=client_id,
            issuer=issuer if isinstance(issuer, str) else list(issuer),
            leeway=leeway,
            options={"require": ["iss", "sub", "aud", "exp", "iat"], "verify_iat": True},
        )
    except jwt.PyJWTError as exc:
        raise IdTokenRejected(f"id_token rejected: {exc}") from None
    _check_times(claims, now, leeway)
    _check_azp(claims, client_id)
    if nonce is not None and claims.get("nonce") != nonce:
        raise IdTokenRejected("id_token nonce does not match the login request")
    return claims


def _check_times(claims: dict[str, Any], now: float, leeway: float) -> None:
    iat = claims.get("iat")
    if not isinstance(iat, int | float) or iat > now + leeway:
        raise IdTokenRejected("id_token iat is missing or in the future")


def _check_azp(claims: dict[str, Any], client_id: str) -> None:
    aud = claims.get("aud")
    several = isinstance(aud, list) and len(aud) > 1
    azp = claims.get("azp")
    if (several or azp is not None) and azp != client_id:
        raise IdTokenRejected("id_token azp does not name this client")


def stored_id_token_claims(token: str) -> dict[str, Any]:
    """The claims of an id_token this gateway validated at login and kept in a sealed
    session record. Its signature is not checked again (and it may have expired): the
    seal vouches for it, and it only serves as the claim base when claims are re-read."""
    try:
        claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        return {}
    return claims
