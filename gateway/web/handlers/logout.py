"""RP-initiated logout: a confirm page (GET), the logout itself (POST with a CSRF token)."""

from __future__ import annotations

import html
import logging

from aiohttp import web

from gateway import metrics
from gateway.crypto import random_token
from gateway.errors import BadRequest
from gateway.web.handlers.login import login_services
from gateway.web.login_services import LoginServices
from gateway.web.logout_notify import NOTIFIER, notify_ended
from gateway.web.responses import html_page

log = logging.getLogger("gateway.logout")


def _csrf_token(services: LoginServices, ticket: str) -> str:
    return services.keyring.sign(b"logout:" + ticket.encode("utf-8", "surrogateescape"))


async def logout_page(request: web.Request) -> web.StreamResponse:
    """Ask the user to confirm; a link or an image must never log anyone out by itself."""
    services = login_services(request)
    ticket = request.cookies.get(services.cookies.session_name, "")
    action = services.config.prefix.rstrip("/") + "/logout"
    token = _csrf_token(services, ticket) if ticket else ""
    rd = html.escape(request.query.get("rd", ""))
    body = (
        "<p>Do you want to sign out?</p>"
        f'<form method="post" action="{html.escape(action)}">'
        f'<input type="hidden" name="csrf" value="{html.escape(token)}">'
        f'<input type="hidden" name="rd" value="{rd}">'
        '<button type="submit" id="confirm-logout">Sign out</button></form>'
    )
    return html_page("Sign out", body)


async def logout(request: web.Request) -> web.StreamResponse:
    """End the session here, then at the provider when it supports RP-initiated logout."""
    services = login_services(request)
    form = await request.post()
    ticket = request.cookies.get(services.cookies.session_name, "")
    origin = request.headers.get("Origin")
    if origin is not None and origin != services.origin(request):
        raise BadRequest(f"cross-site logout refused (Origin {origin})")
    after = services.safe_target(request, str(form.get("rd") or "") or None)
    if after == "/":
        after = services.origin(request) + services.config.prefix.rstrip("/") + "/logged-out"
    if not ticket:
        return web.HTTPFound(after)
    if not services.keyring.verify(
        b"logout:" + ticket.encode("utf-8", "surrogateescape"), str(form.get("csrf", ""))
    ):
        raise BadRequest(
            "logout without a valid CSRF token",
            public="Please confirm sign-out from the sign-out page.",
        )
    loaded = await services.manager.load(ticket)
    target = after
    if loaded is not None:
        await services.manager.destroy(loaded.session_id)
        notify_ended(request.app, loaded, "logout")
        log.info("logout", extra={"kind": "rp", "sub": loaded.record.subject})
        metrics.LOGOUTS.labels("rp").inc()
        provider = services.providers.get(loaded.record.provider)
        if provider is not None:
            # Revoked in the background: a slow or failing provider never holds up a logout.
            request.app[NOTIFIER].spawn(provider.revoke_tokens(loaded.record.tokens))
            post_logout = provider.config.post_logout_redirect_uri or after
            url = await provider.end_session_url(
                loaded.record.tokens.id_token, post_logout, random_token(16)
            )
            target = url or after
    response = web.HTTPFound(target, headers={"Cache-Control": "no-store"})
    services.cookies.clear_session(response)
    return response


async def logged_out(request: web.Request) -> web.StreamResponse:
    services = login_services(request)
    home = html.escape(services.origin(request) + "/")
    return html_page(
        "Signed out",
        f'<p>You are signed out.</p><p><a class="btn" href="{home}">Sign in again</a></p>',
    )
