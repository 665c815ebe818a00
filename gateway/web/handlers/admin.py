"""Session administration: `GET {prefix}/admin/sessions`, `POST {prefix}/admin/sessions/revoke`.

Both require ``Authorization: Bearer <admin.token>`` (compared in constant time); without
a configured ``admin.token`` the endpoints do not exist (404). They are served on the
internal listener, and on the main one only with ``admin.public``. A client that sends
``admin.max_failures`` wrong tokens in a minute gets 429 until its budget refills.
Sessions are found through the (issuer, sub) and (issuer, sid) indexes.
"""

from __future__ import annotations

import hmac
import json
import logging
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from gateway import metrics
from gateway.audit import audit
from gateway.crypto import digest
from gateway.errors import BadRequest, NotFound, RateLimited, Unauthorized
from gateway.sessions.manager import SessionSummary
from gateway.web.handlers.admin_openapi import admin_openapi
from gateway.web.handlers.backchannel import read_body
from gateway.web.keys import SERVICES, VIEW
from gateway.web.login_services import LoginServices
from gateway.web.logout_notify import end_sessions
from gateway.web.rate_limit import RateLimiter
from gateway.web.responses import json_response

log = logging.getLogger("gateway.admin")

MAX_BODY = 16 * 1024
DEFAULT_PAGE = 100
MAX_PAGE = 1000
ADMIN_FAILURES = web.AppKey("admin_failures", RateLimiter)
_BUCKET = "admin"


def add_admin_routes(app: web.Application, prefix: str) -> None:
    """The admin endpoints under ``prefix`` (the app must hold ADMIN_FAILURES)."""
    app.router.add_get(f"{prefix}/admin/sessions", list_sessions)
    app.router.add_post(f"{prefix}/admin/sessions/revoke", revoke_sessions)
    app.router.add_get(f"{prefix}/admin/openapi.json", openapi_document)


def failure_budget(max_failures: int) -> RateLimiter:
    """Wrong tokens allowed per client: ``max_failures`` at once, refilled over a minute."""
    return RateLimiter(max_failures)


def _admin(request: web.Request) -> LoginServices:
    """The login services, once the caller has proved it holds the admin token."""
    services = request.app[SERVICES]
    token = services.config.admin.token
    if token is None or services.login is None:
        raise NotFound("the admin endpoints are not configured")
    failures = request.app[ADMIN_FAILURES]
    client = request[VIEW].client_ip
    if failures.exhausted(client, _BUCKET):
        raise RateLimited(f"admin failure budget spent by {client}")
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    # Digests have one length whatever was sent: the comparison tells nothing about it.
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        digest(given.strip()), digest(token.reveal())
    ):
        failures.spend(client, _BUCKET)
        audit("admin_refused", path=request.path, client=client)
        raise Unauthorized("admin credential missing or wrong")
    return services.login


def _client(request: web.Request) -> str | None:
    """Who acted, for the audit log: the caller's address (never its credential)."""
    return request[VIEW].client_ip


def _issuers(services: LoginServices, provider: str | None) -> list[str]:
    chosen = [p for p in services.providers.values() if provider in (None, p.name)]
    if not chosen:
        raise BadRequest(f"no provider {provider!r}", public="Unknown provider.")
    return sorted({p.config.issuer for p in chosen})


def _who(fields: dict[str, Any]) -> tuple[str | None, str | None]:
    """Exactly one of sub and sid, as a non-empty string."""
    sub, sid = fields.get("sub") or None, fields.get("sid") or None
    if (sub is None) == (sid is None) or not isinstance(sub or sid, str):
        raise BadRequest("give sub or sid", public="Give exactly one of sub and sid.")
    return sub, sid


async def openapi_document(request: web.Request) -> web.StreamResponse:
    """The OpenAPI 3.1 description of these endpoints (public: it holds no data)."""
    services = request.app[SERVICES]
    if services.config.admin.token is None or services.login is None:
        raise NotFound("the admin endpoints are not configured")
    return json_response(admin_openapi(services.config.prefix))


async def list_sessions(request: web.Request) -> web.StreamResponse:
    """The live sessions of a user (?sub=) or provider session (?sid=), optional ?provider=;
    or every session, a page at a time (?all=true&limit=&cursor=)."""
    services = _admin(request)
    if request.query.get("all") in ("1", "true"):
        limit = _limit(request.query.get("limit", str(DEFAULT_PAGE)))
        page, cursor = await services.manager.list_all(request.query.get("cursor", ""), limit)
        audit("admin_sessions_listed", scope="all", sessions=len(page), client=_client(request))
        return json_response(
            {"sessions": [_summary(s) for s in page], "next_cursor": cursor or None}
        )
    sub, sid = _who(dict(request.query))
    manager = services.manager
    found: list[SessionSummary] = []
    for issuer in _issuers(services, request.query.get("provider")):
        if sub is not None:
            found += await manager.list_by_sub(issuer, sub)
        elif sid is not None:
            found += await manager.list_by_sid(issuer, sid)
    audit(
        "admin_sessions_listed",
        provider=request.query.get("provider"),
        sub=sub,
        sid=sid,
        sessions=len(found),
        client=_client(request),
    )
    return json_response({"sessions": [_summary(s) for s in found]})


async def revoke_sessions(request: web.Request) -> web.StreamResponse:
    """End every session of a user or provider session; body JSON or form: sub | sid."""
    services = _admin(request)
    fields = await _fields(request)
    sub, sid = _who(fields)
    provider = fields.get("provider")
    if provider is not None and not isinstance(provider, str):
        raise BadRequest("provider is not a string", public="provider must be a string.")
    revoked = 0
    for issuer in _issuers(services, provider):
        revoked += await end_sessions(request.app, issuer, sid=sid, sub=sub, reason="admin")
    log.info("sessions revoked by admin", extra={"sub": sub, "sessions": revoked})
    audit(
        "admin_sessions_revoked",
        provider=provider,
        sub=sub,
        sid=sid,
        sessions=revoked,
        client=_client(request),
    )
    metrics.LOGOUTS.labels("admin").inc()
    return json_response({"revoked": revoked})


async def _fields(request: web.Request) -> dict[str, Any]:
    body = await read_body(request, MAX_BODY)
    if body is None:
        raise BadRequest("admin request body too large")
    if request.content_type == "application/json":
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            raise BadRequest("invalid JSON", public="The body is not valid JSON.") from None
        if not isinstance(data, dict):
            raise BadRequest("JSON body is not an object", public="Send a JSON object.")
        return data
    try:
        return dict(parse_qsl(body.decode("utf-8")))
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("invalid form body", public="The body is not a valid form.") from None


def _limit(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= MAX_PAGE:
        raise BadRequest("bad limit", public=f"limit is a number from 1 to {MAX_PAGE}.")
    return int(text)


def _summary(s: SessionSummary) -> dict[str, Any]:
    return {
        "id": s.short_id,
        "provider": s.provider,
        "issuer": s.issuer,
        "sub": s.subject,
        "sid": s.sid,
        "created_at": s.created_at,
        "expires_at": s.expires_at,
    }
