"""`GET {prefix}/frontchannel-logout?iss=&sid=` (OpenID Connect Front-Channel Logout 1.0).

The provider renders this URL in an iframe of its logout page. Session cookies are
SameSite=Lax and do not reach a cross-site iframe, so the provider session id is what
names the sessions to end: ``iss`` and ``sid`` are required, a bare ``sub`` never is
accepted (it is no secret), and a request without them ends nothing.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from aiohttp import web

from gateway import metrics
from gateway.audit import audit
from gateway.errors import BadRequest
from gateway.web.handlers.login import login_services
from gateway.web.identity import client_of
from gateway.web.logout_notify import end_sessions
from gateway.web.pages.respond import render_page

log = logging.getLogger("gateway.logout")


async def frontchannel_logout(request: web.Request) -> web.StreamResponse:
    """End the sessions of (iss, sid) and answer a tiny page the provider may frame."""
    services = login_services(request)
    iss, sid = request.query.get("iss", ""), request.query.get("sid", "")
    if not iss or not sid or len(sid) > 1024:
        raise BadRequest(
            "front-channel logout without iss and sid",
            public="Front-channel logout needs the iss and sid parameters.",
        )
    accepting = [
        p
        for p in services.providers.values()
        if p.config.issuer == iss and p.config.frontchannel_logout
    ]
    if not accepting:
        raise BadRequest(
            "front-channel logout for an unknown issuer",
            public="This issuer is not configured for front-channel logout.",
        )
    ended = await end_sessions(request.app, iss, sid=sid, sub=None, reason="frontchannel")
    log.info(
        "logout", extra={"kind": "frontchannel", "provider": accepting[0].name, "sessions": ended}
    )
    audit(
        "frontchannel_logout",
        provider=accepting[0].name,
        iss=iss,
        sid=sid,
        sessions=ended,
        client=client_of(request),
    )
    metrics.LOGOUTS.labels("frontchannel").inc()
    # The provider's logout page frames this one: only its origin may.
    return render_page(
        request,
        "logged_out.html",
        {"sign_in_url": "/", "scope": "application"},
        frame_ancestors=_origin(iss),
    )


def _origin(issuer: str) -> str:
    """The provider's origin: the only page allowed to frame this one."""
    parts = urlsplit(issuer)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
