"""`POST {prefix}/backchannel-logout[/{provider}]` (OpenID Connect Back-Channel Logout 1.0).

The provider POSTs a form-encoded ``logout_token``; a valid one ends the sessions it
names on every instance (the store is shared, caches are invalidated by pub/sub).
Answers: 200 on success, 400 with a JSON error when the token is invalid; both no-store.
"""

from __future__ import annotations

import contextlib
import logging
import time
from urllib.parse import parse_qs

import jwt
from aiohttp import web

from gateway import metrics
from gateway.audit import audit
from gateway.errors import NotFound, StoreUnavailable
from gateway.login.logout_token import (
    LogoutRequest,
    LogoutTokenRejected,
    LogoutTokenRules,
    claim_jti,
    rejected,
    release_jti,
    validate_logout_token,
)
from gateway.login.provider import DEFAULT_ID_TOKEN_ALGS, ProviderClient
from gateway.web.handlers.login import login_services
from gateway.web.identity import client_of
from gateway.web.login_services import LoginServices
from gateway.web.logout_notify import end_sessions
from gateway.web.responses import json_response

log = logging.getLogger("gateway.logout")

MAX_BODY = 64 * 1024  # a logout token is a few hundred bytes
FORM = "application/x-www-form-urlencoded"


async def backchannel_logout(request: web.Request) -> web.StreamResponse:
    """Validate the logout token, claim its jti, end the sessions it names."""
    services = login_services(request)
    try:
        token = await _logout_token(request)
        provider = _provider(services, request.match_info.get("provider"), token)
        rules = await logout_rules(provider)
        logout = await validate_logout_token(
            token, jwks=provider.jwks, rules=rules, now=time.time()
        )
        log.debug(
            "back-channel logout token valid",
            extra={"provider": provider.name, "sub": logout.sub, "sid": logout.sid},
        )
        await claim_jti(services.shared, logout, rules.replay_ttl)
    except LogoutTokenRejected as exc:
        log.warning("back-channel logout refused: %s", exc.public_message)
        audit(
            "backchannel_logout_refused",
            reason=exc.code,
            detail=exc.public_message,
            client=client_of(request),
        )
        return json_response(
            {"error": exc.code, "error_description": exc.public_message}, status=400
        )
    ended = await _end(request, services, logout)
    log.info(
        "logout",
        extra={
            "kind": "backchannel",
            "provider": provider.name,
            "sub": logout.sub,
            "sessions": ended,
        },
    )
    audit(
        "backchannel_logout",
        provider=provider.name,
        iss=provider.config.issuer,
        sub=logout.sub,
        sid=logout.sid,
        sessions=ended,
        client=client_of(request),
    )
    metrics.LOGOUTS.labels("backchannel").inc()
    return web.Response(status=200, headers={"Cache-Control": "no-store"})


async def logout_rules(provider: ProviderClient) -> LogoutTokenRules:
    """The checks for this provider's logout tokens: its issuer, our client id, its algs."""
    meta = await provider.metadata.get()
    config = provider.config
    algorithms = config.id_token_algorithms or list(
        meta.id_token_signing_alg_values_supported or DEFAULT_ID_TOKEN_ALGS
    )
    return LogoutTokenRules(
        issuer=meta.issuer,
        client_id=config.client_id,
        algorithms=algorithms,
        max_age=config.logout_token_max_age,
        leeway=config.leeway,
    )


async def _end(request: web.Request, services: LoginServices, logout: LogoutRequest) -> int:
    try:
        return await end_sessions(
            request.app, logout.issuer, sid=logout.sid, sub=logout.sub, reason="backchannel"
        )
    except StoreUnavailable:
        # Give the jti back so the provider's retry is not refused as a replay.
        with contextlib.suppress(StoreUnavailable):
            await release_jti(services.shared, logout)
        raise


async def _logout_token(request: web.Request) -> str:
    if request.content_type != FORM:
        raise rejected(f"expected {FORM} with a logout_token")
    body = await read_body(request, MAX_BODY)
    if body is None:
        raise rejected("the request body is too large")
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True)
    except (UnicodeDecodeError, ValueError):
        raise rejected("the request body is not a valid form") from None
    values = fields.get("logout_token", [])
    if len(values) != 1 or not values[0]:
        raise rejected("exactly one logout_token is required")
    return values[0]


async def read_body(request: web.Request, limit: int) -> bytes | None:
    """The whole request body, or None once it exceeds ``limit`` bytes."""
    if (request.content_length or 0) > limit:
        return None
    body = bytearray()
    async for chunk in request.content.iter_chunked(8192):
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


def _provider(services: LoginServices, name: str | None, token: str) -> ProviderClient:
    """The named provider; without a name the only one, or the one the token's iss names."""
    if name is not None or len(services.providers) == 1:
        found = services.providers.get(name) if name else next(iter(services.providers.values()))
        if found is None or not found.config.backchannel_logout:
            raise NotFound("no provider accepts back-channel logout here")
        return found
    iss = _unverified_iss(token)
    candidates = [
        p
        for p in services.providers.values()
        if p.config.issuer == iss and p.config.backchannel_logout
    ]
    if len(candidates) != 1:
        raise rejected(
            "no single provider matches the token's issuer: use /backchannel-logout/NAME"
        )
    return candidates[0]


def _unverified_iss(token: str) -> str | None:
    """Only picks which provider's keys check the token; everything is verified after."""
    try:
        iss = jwt.decode(token, options={"verify_signature": False}).get("iss")
    except jwt.PyJWTError:
        raise rejected("logout token is not a JWT") from None
    return iss if isinstance(iss, str) else None
