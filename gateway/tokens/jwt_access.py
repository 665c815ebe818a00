"""Local validation of JWT access tokens (RFC 9068 profile, RFC 8725 best practices)."""

from __future__ import annotations

import binascii
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import jwt
from jwt.utils import base64url_decode

from gateway.config.model import TrustedIssuer
from gateway.crypto import digest
from gateway.errors import InvalidToken
from gateway.idp.jwks import SIGNATURE_ALGORITHMS, JwksCache, invalid_token
from gateway.tokens.expiring_cache import ExpiringCache

ACCESS_TOKEN_TYPES = frozenset({"jwt", "at+jwt", "application/at+jwt"})
JWT_ERRORS: tuple[tuple[type[jwt.PyJWTError], str], ...] = (
    (jwt.InvalidAudienceError, "The token is not meant for this service (audience)."),
    (jwt.InvalidIssuerError, "The token's issuer is not trusted."),
    (jwt.InvalidSignatureError, "The token's signature is invalid."),
    (jwt.InvalidAlgorithmError, "The token's signing algorithm is not accepted."),
    (jwt.InvalidKeyError, "The provider's key for this token is unusable."),
    (jwt.DecodeError, "The access token is malformed."),
)


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    """A JWT whose signature, issuer, audience and times were checked."""

    issuer: TrustedIssuer
    claims: dict[str, Any]
    usable_until: float  # exp + leeway: from then on the token is refused as expired


def looks_like_jwt(token: str) -> bool:
    """Three dot-separated parts whose first decodes to a JSON object (a JWS compact token)."""
    if token.count(".") != 2:
        return False
    try:
        header = json.loads(base64url_decode(token.split(".", 1)[0]))
    except (ValueError, TypeError, RecursionError, binascii.Error):
        return False
    return isinstance(header, dict)


def unverified_parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and payload of a JWT-shaped token, before any check; InvalidToken if unreadable."""
    try:
        header = jwt.get_unverified_header(token)
        payload = jwt.decode(token, options={"verify_signature": False})
    except (jwt.PyJWTError, ValueError, TypeError):
        raise invalid_token("The access token is malformed.") from None
    return header, payload


def check_header(header: dict[str, Any], algorithms: Sequence[str]) -> str:
    """The header's `alg` when the header is acceptable; raises InvalidToken otherwise."""
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in algorithms or alg not in SIGNATURE_ALGORITHMS:
        raise invalid_token("The token's signing algorithm is not accepted.")
    typ = header.get("typ")
    if typ is not None and (not isinstance(typ, str) or typ.lower() not in ACCESS_TOKEN_TYPES):
        raise invalid_token("The token is not an access token (typ).")
    if "crit" in header:
        raise invalid_token("The token requires extensions this service does not support.")
    if "kid" in header and not isinstance(header["kid"], str):
        raise invalid_token("The access token is malformed.")
    return alg


def _number(claims: dict[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise invalid_token(f"The token's {name} claim is not a number.")
    return float(value)


def check_times(claims: dict[str, Any], now: float, leeway: float) -> float:
    """The token's `exp`, when exp, nbf and iat allow use at `now`; raises InvalidToken."""
    exp = _number(claims, "exp")
    if exp is None:
        raise invalid_token("The token has no expiry time (exp).")
    if now >= exp + leeway:
        raise invalid_token("The access token has expired.")
    nbf = _number(claims, "nbf")
    if nbf is not None and nbf > now + leeway:
        raise invalid_token("The access token is not valid yet.")
    iat = _number(claims, "iat")
    if iat is not None and iat > now + leeway:
        raise invalid_token("The access token was issued in the future.")
    return exp


class JwtAccessTokenValidator:
    """Checks JWT access tokens of the configured issuers; a token is verified only once."""

    def __init__(
        self,
        issuers: Sequence[tuple[TrustedIssuer, JwksCache]],
        *,
        clock: Callable[[], float] = time.time,
        max_entries: int = 100_000,
    ) -> None:
        self._issuers = {config.issuer: (config, keys) for config, keys in issuers}
        self._clock = clock
        self._verified: ExpiringCache[str, VerifiedToken] = ExpiringCache(max_entries)

    def trusts(self, issuer: str) -> bool:
        return issuer in self._issuers

    async def validate(self, token: str) -> VerifiedToken:
        """The verified token; raises InvalidToken, or ProviderUnavailable when no keys load."""
        cache_key = digest(token)
        cached = self._verified.get(cache_key, self._clock())
        if cached is not None:
            return cached
        header, payload = unverified_parts(token)
        iss = payload.get("iss")
        if not isinstance(iss, str) or iss not in self._issuers:
            raise invalid_token("The token's issuer is not trusted.")
        config, keys = self._issuers[iss]
        alg = check_header(header, config.algorithms)
        key = await keys.key_for(header.get("kid"), alg)
        claims = self._verify(token, key, alg, config)
        exp = check_times(claims, self._clock(), config.leeway)
        verified = VerifiedToken(config, claims, exp + config.leeway)
        self._verified.put(cache_key, verified, verified.usable_until)
        return verified

    @staticmethod
    def _verify(token: str, key: jwt.PyJWK, alg: str, config: TrustedIssuer) -> dict[str, Any]:
        try:
            return jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=config.audiences,
                issuer=config.issuer,
                options={
                    "verify_exp": False,  # times are checked by check_times with our clock
                    "verify_nbf": False,
                    "verify_iat": False,
                    "require": ["iss", "aud", "exp"],
                    "enforce_minimum_key_length": True,
                },
            )
        except jwt.MissingRequiredClaimError as exc:
            raise invalid_token(f"The token has no {exc.claim} claim.") from None
        except jwt.PyJWTError as exc:
            raise _mapped(exc) from None


def _mapped(exc: jwt.PyJWTError) -> InvalidToken:
    for kind, reason in JWT_ERRORS:
        if isinstance(exc, kind):
            return invalid_token(reason)
    return invalid_token("The access token is invalid.")
