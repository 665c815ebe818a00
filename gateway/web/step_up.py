"""Step-up: a caller whose authentication falls short of a route's `step_up` is sent back
to its provider (a browser navigation) or answered 401 insufficient_user_authentication
(RFC 9470). The decision itself is gateway.policy.step_up."""

from __future__ import annotations

import time

from aiohttp import web

from gateway.audit import audit
from gateway.errors import InsufficientUserAuthentication
from gateway.login.provider import ProviderClient
from gateway.policy.routes import CompiledRoute
from gateway.policy.step_up import shortfall
from gateway.types import Principal
from gateway.web.identity import canonical_path_qs, client_of, is_navigation
from gateway.web.services import Services


async def check_step_up(
    request: web.Request,
    services: Services,
    route: CompiledRoute,
    principal: Principal,
    *,
    allow_redirect: bool = True,
) -> web.StreamResponse | None:
    """None when the caller's authentication meets the route's step_up; a browser
    navigation is sent back to its provider; anything else gets 401 (RFC 9470)."""
    step_up = route.config.step_up
    if step_up is None:
        return None
    provider = _provider_of(services, principal.issuer)
    levels = provider.config.acr_levels if provider is not None else []
    # No leeway here (the callback allows the provider's): a 60 s leeway would swallow a
    # short max_age. Clocks must agree to well within max_age (docs/policy.md).
    reason = shortfall(step_up, principal.claims, levels, time.time(), 0.0)
    if reason is None:
        return None
    login = services.login
    navigation = allow_redirect and is_navigation(request)
    redirect = principal.kind == "session" and navigation and provider is not None
    audit(
        "step_up_required",
        route=route.name,
        reason=reason,
        answer="redirect" if redirect and login else "challenge",
        iss=principal.issuer,
        sub=principal.subject,
        client=client_of(request),
    )
    if redirect and provider is not None and login:
        return_to = login.origin(request) + canonical_path_qs(request)
        return await login.start_login(
            request, provider, return_to, step_up=step_up, claims=principal.claims
        )
    raise InsufficientUserAuthentication(
        f"step-up needed on route {route.name}: {reason}",
        acr_values=step_up.acr_values,
        max_age=step_up.max_age,
    )


def _provider_of(services: Services, issuer: str) -> ProviderClient | None:
    if services.login is None:
        return None
    return next((p for p in services.login.providers.values() if p.config.issuer == issuer), None)
