"""`/login` (start or choose a provider) and `/callback` (finish the code flow)."""

from __future__ import annotations

import html
import logging
import time
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from gateway import metrics
from gateway.config.model import StepUp
from gateway.errors import BadRequest, LoginError, NotFound
from gateway.login.provider import ProviderClient
from gateway.policy.step_up import shortfall
from gateway.types import SessionRecord
from gateway.web.keys import SERVICES
from gateway.web.login_services import LoginServices
from gateway.web.responses import html_page

log = logging.getLogger("gateway.login")


def login_services(request: web.Request) -> LoginServices:
    login = request.app[SERVICES].login
    if login is None:
        raise NotFound("no login provider is configured")
    return login


async def login(request: web.Request) -> web.StreamResponse:
    """Start a login with ?provider=NAME, or show the sign-in page listing the providers."""
    services = login_services(request)
    return_to = request.query.get("rd", "/")
    name = request.query.get("provider")
    if name is None and len(services.providers) == 1:
        name = next(iter(services.providers))
    if name is None:
        return sign_in_page(request, services, return_to)
    provider = services.providers.get(name)
    if provider is None:
        raise BadRequest(f"unknown provider {name!r}", public="Unknown sign-in provider.")
    return await services.start_login(request, provider, return_to)


def sign_in_page(
    request: web.Request, services: LoginServices, return_to: str, *, status: int = 200
) -> web.Response:
    base = services.config.prefix.rstrip("/") + "/login?"
    target = services.safe_target(request, return_to)
    links = [
        (base + urlencode({"provider": p.name, "rd": target}), p.label)
        for p in services.providers.values()
    ]
    buttons = "".join(
        f'<p><a class="btn" href="{html.escape(href)}">{html.escape(label)}</a></p>'
        for href, label in links
    )
    return html_page("Sign in", f"<p>Choose how to sign in:</p>{buttons}", status=status)


async def callback(request: web.Request) -> web.StreamResponse:
    """The provider sends the browser back here with `code` and `state` (or `error`)."""
    services = login_services(request)
    query = request.query
    if "code" in query and "error" in query:
        raise LoginError("callback carries both code and error", public=_REFUSED)
    state_id = query.get("state")
    if not state_id:
        raise LoginError("callback without state", public=_REFUSED)
    # The binding cookie finds this browser's pending login: a state alone (leaked, or
    # replayed by another browser) neither finds nor uses up anyone's login.
    binding = services.cookies.login_binding(request)
    if binding is None:
        raise LoginError("callback without (one) login-binding cookie", public=_EXPIRED)
    pending = await services.manager.pending_login(binding)
    if pending is None:
        raise LoginError("this browser has no pending login (expired or used)", public=_EXPIRED)
    state = await services.manager.take_login_state(binding, state_id)
    if state is None:
        raise LoginError("state is not this browser's pending login", public=_REFUSED)
    provider = services.providers.get(state["provider"])
    if provider is None:
        raise LoginError(f"state names unknown provider {state['provider']!r}", public=_REFUSED)
    if "error" in query:
        error = query["error"][:64]
        log.warning(
            "provider %s refused the login: %s %s",
            provider.name,
            _printable(error),
            _printable(query.get("error_description", "")[:200]),
        )
        raise LoginError(f"provider error {error}", public=_provider_error_text(error))
    await _check_iss_parameter(provider, query.get("iss"))
    code = query.get("code")
    if not code:
        raise LoginError("callback without code", public=_REFUSED)
    tokens, claims = await provider.complete(
        code, state["redirect_uri"], state["verifier"], state["nonce"]
    )
    now = time.time()
    _check_step_up(provider, state.get("step_up"), claims, now)
    settings = services.config.sessions
    record = SessionRecord(
        provider=provider.name,
        issuer=str(claims["iss"]),
        subject=str(claims["sub"]),
        sid=claims.get("sid") if isinstance(claims.get("sid"), str) else None,
        claims=claims,
        tokens=tokens,
        created_at=now,
        last_seen=now,
        expires_at=now + settings.absolute_timeout,
    )
    ticket = await services.manager.create(record)
    log.info("login completed", extra={"provider": provider.name, "sub": record.subject})
    metrics.LOGINS_COMPLETED.labels(provider.name).inc()
    target = services.safe_target(request, state["return_to"])
    response = web.HTTPFound(target, headers={"Cache-Control": "no-store"})
    services.cookies.set_session(response, ticket, settings.absolute_timeout)
    services.cookies.clear_login_binding(response)
    return response


def _check_step_up(
    provider: ProviderClient, wanted: dict[str, Any] | None, claims: dict[str, Any], now: float
) -> None:
    """The id_token's acr / auth_time meet what this login asked for (a user can strip
    acr_values or max_age from the authorization URL; the provider may ignore them)."""
    if not wanted:
        return
    step_up = StepUp.model_validate(wanted)
    reason = shortfall(step_up, claims, provider.config.acr_levels, now, provider.config.leeway)
    if reason is not None:
        raise LoginError(f"step-up not met by the provider's answer: {reason}", public=_WEAK)


async def _check_iss_parameter(provider: ProviderClient, iss: str | None) -> None:
    """RFC 9207: the authorization response names its issuer; a mismatch is a mix-up attack."""
    meta = await provider.metadata.get()
    if iss is not None and iss != meta.issuer:
        raise LoginError(
            f"iss {iss!r} in the callback is not {meta.issuer!r} (mix-up)", public=_REFUSED
        )
    if iss is None and meta.authorization_response_iss_parameter_supported:
        raise LoginError(
            "the provider promises an iss parameter but the callback has none", public=_REFUSED
        )


_WEAK = (
    "The sign-in did not reach the level this page needs (for example a second factor). "
    "Please start again and complete every step the sign-in asks for."
)
_REFUSED = "This sign-in response was refused. Please start again from the application."
_EXPIRED = "This sign-in link has expired or was already used. Please start again."


def _provider_error_text(error: str) -> str:
    if error == "access_denied":
        return "Sign-in was cancelled or access was denied by the provider."
    if error in ("login_required", "interaction_required", "consent_required"):
        return "The provider needs you to sign in interactively. Please start again."
    return f"The sign-in provider reported an error ({error})."


def _printable(text: str) -> str:
    """Provider-sent text made safe for a log line (no newlines or control characters)."""
    return "".join(ch if ch.isprintable() else "?" for ch in text)
