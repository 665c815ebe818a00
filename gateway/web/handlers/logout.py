"""RP-initiated logout: a confirm page (GET), the logout itself (POST with a CSRF token)."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from aiohttp import web

from gateway import metrics
from gateway.audit import audit
from gateway.crypto import random_token
from gateway.errors import BadRequest, ProviderUnavailable
from gateway.idp.http import display_url
from gateway.login.provider import ProviderClient
from gateway.sessions.manager import LoadedSession
from gateway.web.handlers.login import login_services
from gateway.web.identity import client_of
from gateway.web.login_services import LoginServices
from gateway.web.logout_notify import NOTIFIER, notify_ended
from gateway.web.pages.respond import account_of, render_page

log = logging.getLogger("gateway.logout")


def _csrf_token(services: LoginServices, ticket: str) -> str:
    return services.keyring.sign(b"logout:" + ticket.encode("utf-8", "surrogateescape"))


async def logout_page(request: web.Request) -> web.StreamResponse:
    """Ask the user to confirm; a link or an image must never log anyone out by itself."""
    services = login_services(request)
    ticket = request.cookies.get(services.cookies.session_name, "")
    loaded = await services.manager.load(ticket) if ticket else None
    provider = services.providers.get(loaded.record.provider) if loaded is not None else None
    end_session = await _end_session_endpoint(provider)
    rd = request.query.get("rd", "")
    if loaded is not None and end_session is not None and _provider_confirms(request, services):
        after = _after_logout(request, services, rd)
        return await _end_session(request, services, loaded, after)
    context = {
        "account": account_of(loaded.record.claims) if loaded is not None else None,
        "provider_label": provider.label if provider is not None else None,
        "provider_signs_out": end_session is not None,
        "action": services.config.prefix.rstrip("/") + "/logout",
        "csrf": _csrf_token(services, ticket) if ticket else "",
        "rd": rd,
        "cancel_url": services.safe_target(request, rd or None),
    }
    # The form posts here; the answer redirects to the provider's logout or back to a page
    # a login may return to, and CSP form-action also governs those redirects.
    sources = ["'self'", *_origins(end_session), *_redirect_hosts(services)]
    return render_page(request, "logout.html", context, form_action=sources)


async def _end_session_endpoint(provider: ProviderClient | None) -> str | None:
    if provider is None:
        return None
    try:
        meta = await provider.metadata.get()
    except ProviderUnavailable:
        return None
    return meta.end_session_endpoint


def _origins(url: str | None) -> list[str]:
    if not url:
        return []
    parts = urlsplit(url)
    return [f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"]


def _redirect_hosts(services: LoginServices) -> list[str]:
    """allowed_redirect_hosts as CSP host sources (https only, as safe_return_url allows)."""
    post_logout = [
        _origins(p.config.post_logout_redirect_uri)
        for p in services.providers.values()
        if p.config.post_logout_redirect_uri
    ]
    hosts = [f"https://{host}" for host in services.config.allowed_redirect_hosts]
    return hosts + [origin for group in post_logout for origin in group]


async def logout(request: web.Request) -> web.StreamResponse:
    """End the session here, then at the provider when it supports RP-initiated logout."""
    services = login_services(request)
    form = await request.post()
    ticket = request.cookies.get(services.cookies.session_name, "")
    origin = request.headers.get("Origin")
    if origin is not None and origin != services.origin(request):
        raise BadRequest(f"cross-site logout refused (Origin {origin})")
    after = _after_logout(request, services, str(form.get("rd") or ""))
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
    if loaded is None:
        response = web.HTTPFound(after, headers={"Cache-Control": "no-store"})
        services.cookies.clear_session(response)
        return response
    return await _end_session(request, services, loaded, after)


def _after_logout(request: web.Request, services: LoginServices, rd: str) -> str:
    after = services.safe_target(request, rd or None)
    if after == "/":
        after = services.origin(request) + services.config.prefix.rstrip("/") + "/logged-out"
    return after


def _provider_confirms(request: web.Request, services: LoginServices) -> bool:
    """With ``ui.logout_confirmation: provider``, a click on a sign-out link of this very
    site is the confirmation, and the provider asks its own question: no second page.

    Fetch metadata tells a click from anything else: only a user-activated (Sec-Fetch-User)
    top-level navigation from the same origin qualifies; a cross-site link, an image, a
    typed URL or a browser without these headers gets the gateway's page.
    """
    if services.config.ui.logout_confirmation != "provider":
        return False
    headers = request.headers
    return (
        headers.get("Sec-Fetch-Site") == "same-origin"
        and headers.get("Sec-Fetch-Mode") == "navigate"
        and headers.get("Sec-Fetch-Dest") == "document"
        and headers.get("Sec-Fetch-User") == "?1"
    )


async def _end_session(
    request: web.Request, services: LoginServices, loaded: LoadedSession, after: str
) -> web.StreamResponse:
    """End the session here, then send the browser to the provider's logout if it has one."""
    await services.manager.destroy(loaded.session_id)
    notify_ended(request.app, loaded, "logout")
    log.info("logout", extra={"kind": "rp", "sub": loaded.record.subject})
    audit(
        "logout",
        provider=loaded.record.provider,
        iss=loaded.record.issuer,
        sub=loaded.record.subject,
        sessions=1,
        client=client_of(request),
    )
    metrics.LOGOUTS.labels("rp").inc()
    target = after
    provider = services.providers.get(loaded.record.provider)
    if provider is not None:
        # Revoked in the background: a slow or failing provider never holds up a logout.
        request.app[NOTIFIER].spawn(provider.revoke_tokens(loaded.record.tokens))
        post_logout = provider.config.post_logout_redirect_uri or after
        url = await provider.end_session_url(
            loaded.record.tokens.id_token, post_logout, random_token(16)
        )
        target = url or after
        log.debug(
            "logout redirect",
            extra={"provider": provider.name, "to": display_url(target),
                   "provider_logout": url is not None},
        )  # fmt: skip
    response = web.HTTPFound(target, headers={"Cache-Control": "no-store"})
    services.cookies.clear_session(response)
    return response


async def logged_out(request: web.Request) -> web.StreamResponse:
    services = login_services(request)
    context = {"sign_in_url": services.origin(request) + "/", "scope": "gateway"}
    return render_page(request, "logged_out.html", context)
