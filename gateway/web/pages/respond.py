"""Turn a template and its page context into the response: language, nonce, CSP."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from aiohttp import web

from gateway.log import request_id_var
from gateway.web.keys import COMPILED, SERVICES
from gateway.web.pages.csp import new_nonce, page_policy
from gateway.web.pages.language import choose_language
from gateway.web.pages.site import Site


def site_of(request: web.Request) -> Site:
    """The request's config snapshot's pages (the current one before the snapshot is taken)."""
    compiled = request.get(COMPILED) or request.app[SERVICES].compiled
    return compiled.site


def page_language(request: web.Request, site: Site) -> str:
    ui = site.ui
    return choose_language(
        request.headers.get("Accept-Language", ""),
        site.renderer.languages,
        forced=ui.language,
        default=ui.default_language,
    )


def render_page(
    request: web.Request,
    template: str,
    context: Mapping[str, Any],
    *,
    status: int = 200,
    form_action: Iterable[str] = (),
    frame_ancestors: str = "'none'",
) -> web.Response:
    """``template`` rendered with the shared context plus ``context``, as a no-store page."""
    site = site_of(request)
    language = page_language(request, site)
    nonce = new_nonce()
    full = {
        **site.shared_context(),
        "lang": language,
        "nonce": nonce,
        "request_id": request_id_var.get(),
        "status": status,
        **context,
    }
    text = site.renderer.render(template, full, language)
    return web.Response(
        status=status,
        text=text,
        content_type="text/html",
        headers={
            "Cache-Control": "no-store",
            "Content-Language": language,
            "Vary": "Accept-Language",
            "Content-Security-Policy": page_policy(
                nonce, form_action=form_action, frame_ancestors=frame_ancestors
            ),
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin",
        },
    )


def account_of(claims: Mapping[str, Any]) -> dict[str, str | None]:
    """How a page names the signed-in person: name and e-mail when the claims have them."""

    def text(name: str) -> str | None:
        value = claims.get(name)
        return value[:200] if isinstance(value, str) and value else None

    name = text("name") or text("preferred_username")
    email = text("email")
    return {
        "name": name,
        "email": email,
        "subject": text("sub"),
        "display": name or email or text("sub") or "",
    }
