"""`/login` (start or choose a provider) and `/callback` (finish the code flow)."""

from __future__ import annotations

import logging
import time
from typing import Any

from aiohttp import web

from gateway import metrics
from gateway.audit import audit
from gateway.config.model import StepUp
from gateway.errors import (
    BadRequest,
    FormTooLarge,
    LoginError,
    NotFound,
    ProviderMisconfigured,
    ProviderUnavailable,
)
from gateway.login.provider import ProviderClient
from gateway.policy.step_up import shortfall
from gateway.types import SessionRecord
from gateway.web.authorization_response import authorization_response, form_too_large
from gateway.web.identity import client_of
from gateway.web.keys import SERVICES
from gateway.web.login_services import LoginServices
from gateway.web.pages.failures import LOGIN_FAILURE, LoginFailure, LoginReason, login_url
from gateway.web.pages.respond import render_page, site_of

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
    # "Use another account" (the 403 page): the provider must ask who signs in.
    switch = request.query.get("switch") == "1"
    if name is None and len(services.providers) == 1:
        name = next(iter(services.providers))
    if name is None:
        return sign_in_page(request, services, return_to, switch=switch)
    provider = services.providers.get(name)
    if provider is None:
        raise BadRequest(f"unknown provider {name!r}", public="Unknown sign-in provider.")
    return await services.start_login(
        request, provider, return_to, prompt="login" if switch else None
    )


def sign_in_page(
    request: web.Request,
    services: LoginServices,
    return_to: str,
    *,
    status: int = 200,
    switch: bool = False,
) -> web.Response:
    site = site_of(request)
    target = services.safe_target(request, return_to)
    extra = {"switch": "1"} if switch else {}
    providers = [
        {
            "name": p.name,
            "label": p.label,
            "url": login_url(site.prefix, target, p.name, **extra),
            "logo_url": site.provider_logo_url(p.name),
        }
        for p in services.providers.values()
    ]
    return render_page(request, "sign_in.html", {"providers": providers}, status=status)


def _failed(
    request: web.Request,
    reason: LoginReason,
    message: str,
    public: str,
    *,
    state: dict[str, Any] | None = None,
    provider: ProviderClient | None = None,
    error: str | None = None,
) -> LoginError:
    """A LoginError, and for its page: why, and where "Try again" starts over."""
    request[LOGIN_FAILURE] = LoginFailure(
        reason=reason,
        provider=provider.name if provider is not None else None,
        provider_label=provider.label if provider is not None else None,
        return_to=state["return_to"] if state is not None else "/",
        error=error,
    )
    return LoginError(message, public=public)


async def callback(request: web.Request) -> web.StreamResponse:
    """The provider sends the browser back here with `code` and `state` (or `error`):
    in the query, or posted as a form (response_mode=form_post)."""
    services = login_services(request)
    try:
        query = await authorization_response(request)
    except FormTooLarge:
        return form_too_large(request)
    if "code" in query and "error" in query:
        raise _failed(request, "refused", "callback carries both code and error", _REFUSED)
    state_id = query.get("state")
    if not state_id:
        raise _failed(request, "refused", "callback without state", _REFUSED)
    # The binding cookie finds this browser's pending login: a state alone (leaked, or
    # replayed by another browser) neither finds nor uses up anyone's login.
    binding = services.cookies.login_binding(request)
    if binding is None:
        raise _failed(request, "expired", "callback without (one) login-binding cookie", _EXPIRED)
    pending = await services.manager.pending_login(binding)
    if pending is None:
        raise _failed(
            request, "expired", "this browser has no pending login (expired or used)", _EXPIRED
        )
    state = await services.manager.take_login_state(binding, state_id)
    if state is None:
        raise _failed(request, "refused", "state is not this browser's pending login", _REFUSED)
    provider = services.providers.get(state["provider"])
    if provider is None:
        message = f"state names unknown provider {state['provider']!r}"
        raise _failed(request, "refused", message, _REFUSED, state=state)
    posted = request.method == "POST"
    if posted != (provider.config.response_mode == "form_post"):
        # The provider was asked for one response mode: the other one is not its answer
        # (a code in a URL where form_post keeps it out of logs and Referer, or a POST
        # nobody asked for).
        how = "posted" if posted else "in the URL"
        message = f"authorization response {how}, but {provider.name} uses " + (
            provider.config.response_mode
        )
        raise _failed(request, "refused", message, _REFUSED, state=state)
    if "error" in query:
        raise _provider_refused(request, provider, state, query)
    try:
        await _check_iss_parameter(provider, query.get("iss"))
    except LoginError:
        request[LOGIN_FAILURE] = LoginFailure(
            "refused", provider.name, provider.label, state["return_to"]
        )
        raise
    code = query.get("code")
    if not code:
        raise _failed(request, "refused", "callback without code", _REFUSED, state=state)
    tokens, claims = await provider.complete(
        code, state["redirect_uri"], state["verifier"], state["nonce"]
    )
    now = time.time()
    _check_step_up(request, provider, state.get("step_up"), claims, now)
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
        client_id=provider.config.client_id,
    )
    ticket = await services.manager.create(record)
    log.info("login completed", extra={"provider": provider.name, "sub": record.subject})
    audit(
        "login_succeeded",
        provider=provider.name,
        iss=record.issuer,
        sub=record.subject,
        acr=claims.get("acr") if isinstance(claims.get("acr"), str) else None,
        client=client_of(request),
    )
    metrics.LOGINS_COMPLETED.labels(provider.name).inc()
    target = services.safe_target(request, state["return_to"])
    response = web.HTTPFound(target, headers={"Cache-Control": "no-store"})
    services.cookies.set_session(response, ticket, settings.absolute_timeout)
    services.cookies.clear_login_binding(response)
    return response


def _check_step_up(
    request: web.Request,
    provider: ProviderClient,
    wanted: dict[str, Any] | None,
    claims: dict[str, Any],
    now: float,
) -> None:
    """The id_token's acr / auth_time meet what this login asked for (a user can strip
    acr_values or max_age from the authorization URL; the provider may ignore them)."""
    if not wanted:
        return
    step_up = StepUp.model_validate(wanted)
    reason = shortfall(step_up, claims, provider.config.acr_levels, now, provider.config.leeway)
    who = {"provider": provider.name, "sub": str(claims.get("sub")), "client": client_of(request)}
    if reason is not None:
        audit("step_up_refused", reason=reason, **who)
        raise LoginError(f"step-up not met by the provider's answer: {reason}", public=_WEAK)
    audit("step_up_satisfied", acr=str(claims.get("acr")), **who)


async def _check_iss_parameter(provider: ProviderClient, iss: str | None) -> None:
    """RFC 9207: the authorization response names its issuer; a mismatch is a mix-up attack."""
    meta = await provider.metadata.get()
    if iss is not None and iss not in provider.accepted_issuers(meta):
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


# Authorization errors (RFC 6749 4.1.2.1, OIDC Core 3.1.2.6) that say the gateway's own
# request or client is wrong: the person cannot fix them, an operator must.
_MISCONFIGURED = frozenset(
    {
        "invalid_request",
        "unauthorized_client",
        "unsupported_response_type",
        "invalid_scope",
        "invalid_client",
        "invalid_request_uri",
        "invalid_request_object",
        "request_not_supported",
        "request_uri_not_supported",
        "registration_not_supported",
    }
)
_INTERACTION = frozenset(
    {"login_required", "interaction_required", "consent_required", "account_selection_required"}
)


def _provider_refused(
    request: web.Request, provider: ProviderClient, state: dict[str, Any], query: Any
) -> Exception:
    """The error the provider's `error` parameter stands for, logged with the reason."""
    error = query["error"][:64]
    reason = f"provider {provider.name} refused the login: {_printable(error)} " + _printable(
        query.get("error_description", "")[:200]
    )
    log.warning("%s", reason)
    if error in _MISCONFIGURED:
        return ProviderMisconfigured(reason)
    if error in ("server_error", "temporarily_unavailable"):
        return ProviderUnavailable(reason)
    if error == "access_denied":
        text = "Sign-in was cancelled or access was denied by the provider."
        return _failed(request, "cancelled", reason, text, state=state, provider=provider)
    if error in _INTERACTION:
        text = "The provider needs you to sign in interactively. Please start again."
        return _failed(
            request, "interaction_required", reason, text, state=state, provider=provider
        )
    text = f"The sign-in provider reported an error ({error})."
    return _failed(
        request, "provider_error", reason, text, state=state, provider=provider, error=error
    )


def _printable(text: str) -> str:
    """Provider-sent text made safe for a log line (no newlines or control characters)."""
    return "".join(ch if ch.isprintable() else "?" for ch in text)
