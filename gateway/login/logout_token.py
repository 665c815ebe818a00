"""Logout token validation (OpenID Connect Back-Channel Logout 1.0, section 2.6).

Signature (provider JWKS, asymmetric algorithms only), ``iss``, ``aud``, ``iat`` within a
window, ``exp`` when present, ``events``, ``sid``/``sub``, no ``nonce``, and a ``jti`` seen
only once: the replay cache lives in the session store, so with Redis a token replayed to
another instance is refused too. Its marks are sealed (gateway.sessions.shared): a mark
planted in Redis cannot make the gateway refuse a genuine logout.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jwt

from gateway.crypto import digest
from gateway.errors import BadRequest, InvalidToken
from gateway.idp.jwks import JwksCache
from gateway.login.jws_header import HeaderRejected, read_signing_header
from gateway.sessions.shared import SharedState

BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"
LOGOUT_TYPE = "logout+jwt"
REPLAY_CACHE = "logout_jti"  # the shared store's cache name (keys, metrics)


class LogoutTokenRejected(BadRequest):
    """The logout token is invalid; the reason is safe to show to the provider."""

    code = "invalid_request"


@dataclass(frozen=True, slots=True)
class LogoutRequest:
    """What a valid logout token asks for: end the sessions of ``sid`` and/or ``sub``."""

    issuer: str
    sid: str | None
    sub: str | None
    jti: str


@dataclass(frozen=True, slots=True)
class LogoutTokenRules:
    """Everything a check needs besides the token; ``now`` in epoch seconds."""

    issuer: str
    client_id: str
    algorithms: Sequence[str]
    max_age: float
    leeway: float

    @property
    def replay_ttl(self) -> float:
        """As long as any token accepted now stays acceptable by its ``iat``."""
        return self.max_age + 2 * self.leeway


def rejected(reason: str) -> LogoutTokenRejected:
    return LogoutTokenRejected(reason, public=reason)


async def validate_logout_token(
    token: str, *, jwks: JwksCache, rules: LogoutTokenRules, now: float
) -> LogoutRequest:
    """The logout request if the token passes every check (no replay check here)."""
    alg, kid = _header(token, rules.algorithms)
    try:
        key = await jwks.key_for(kid, alg)
    except InvalidToken as exc:
        raise rejected(f"logout token key: {exc.public_message}") from None
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key=key,
            algorithms=[alg],
            audience=rules.client_id,
            issuer=rules.issuer,
            leeway=rules.leeway,
            options={"require": ["iss", "aud", "iat", "jti"], "verify_iat": True},
        )
    except jwt.PyJWTError as exc:
        raise rejected(f"logout token rejected: {exc}") from None
    return check_claims(claims, rules, now)


def _header(token: str, algorithms: Sequence[str]) -> tuple[str, str | None]:
    try:
        header = read_signing_header(token, algorithms)
    except HeaderRejected as exc:
        raise rejected(f"logout token {exc}") from None
    typ = (header.typ or "").lower()
    # Explicitly typed for something else (at+jwt, ...): cross-JWT confusion, refuse.
    if typ.endswith("+jwt") and typ != LOGOUT_TYPE:
        raise rejected(f"logout token has type {typ[:30]!r}")
    return header.alg, header.kid


def check_claims(claims: dict[str, Any], rules: LogoutTokenRules, now: float) -> LogoutRequest:
    """The claim checks after the signature: pure, the clock is passed in."""
    iat = claims.get("iat")
    if not isinstance(iat, int | float) or isinstance(iat, bool):
        raise rejected("logout token iat is not a number")
    if iat > now + rules.leeway or iat < now - rules.max_age - rules.leeway:
        raise rejected("logout token iat is outside the accepted window")
    events = claims.get("events")
    if not isinstance(events, dict) or not isinstance(events.get(BACKCHANNEL_EVENT), dict):
        raise rejected("logout token events lack the back-channel logout event")
    if "nonce" in claims:
        raise rejected("logout token must not contain a nonce")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti:
        raise rejected("logout token jti is missing")
    sid, sub = _text(claims, "sid"), _text(claims, "sub")
    if sid is None and sub is None:
        raise rejected("logout token names neither sid nor sub")
    return LogoutRequest(issuer=rules.issuer, sid=sid, sub=sub, jti=jti)


def _text(claims: dict[str, Any], name: str) -> str | None:
    value = claims.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise rejected(f"logout token {name} is not a non-empty string")
    return value


def replay_name(issuer: str, jti: str) -> str:
    """The name of a jti's mark; hashed so no token part appears in the store."""
    return digest(f"{issuer}\x00{jti}")


async def claim_jti(shared: SharedState, request: LogoutRequest, ttl: float) -> None:
    """Mark the token's jti as used; LogoutTokenRejected if some instance already saw it.

    Only a mark sealed by this deployment counts: a forged one would refuse a genuine
    logout and keep its sessions alive, so it is replaced instead.
    """
    if not await shared.claim(REPLAY_CACHE, replay_name(request.issuer, request.jti), ttl):
        raise rejected("logout token was already used (jti replay)")


async def release_jti(shared: SharedState, request: LogoutRequest) -> None:
    """Give the jti back (its sessions could not be ended), so a retry is not a replay."""
    await shared.release(REPLAY_CACHE, replay_name(request.issuer, request.jti))
