"""Which page an error gets: what happened, and what the person can do next.

Handlers that know more than the error's status and code leave it on the request:
the login callback says why a sign-in failed (``LOGIN_FAILURE``), the proxy says who
is signed in (``SIGNED_IN``) so that a 403 can name the account.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlencode

from aiohttp import web

from gateway.types import Principal
from gateway.web.pages.respond import account_of, render_page, site_of

LoginReason = Literal["cancelled", "expired", "refused", "interaction_required", "provider_error"]


@dataclass(frozen=True, slots=True)
class LoginFailure:
    reason: LoginReason
    provider: str | None = None  # to start the retry with the same provider
    provider_label: str | None = None
    return_to: str = "/"
    error: str | None = None  # the provider's error code, shown for provider_error


LOGIN_FAILURE: web.RequestKey[LoginFailure] = web.RequestKey("login_failure", LoginFailure)
SIGNED_IN: web.RequestKey[Principal] = web.RequestKey("signed_in", Principal)

# Error codes whose page says "not your fault, retrying will not help, tell support".
_UNAVAILABLE = {
    "provider_misconfigured": "misconfigured",
    "provider_unavailable": "unreachable",
    "store_unavailable": "store",
    "no_authenticator": "no_authenticator",
}


def login_url(prefix: str, return_to: str, provider: str | None = None, **extra: str) -> str:
    params = {"provider": provider} if provider else {}
    return f"{prefix}/login?" + urlencode({**params, "rd": return_to, **extra})


def error_page(request: web.Request, status: int, code: str, message: str) -> web.Response:
    """The HTML page for an error the middleware (or a handler) answers."""
    prefix = site_of(request).prefix
    failure = request.get(LOGIN_FAILURE)
    if failure is not None and status < 500:
        return render_page(
            request,
            "login_failed.html",
            {
                "reason": failure.reason,
                "retry_url": login_url(prefix, failure.return_to, failure.provider),
                "back_url": "/",
                "provider_label": failure.provider_label,
                "error": failure.error,
            },
            status=status,
        )
    if code in _UNAVAILABLE:
        return render_page(
            request, "unavailable.html", {"reason": _UNAVAILABLE[code]}, status=status
        )
    principal = request.get(SIGNED_IN)
    if status == 403 and principal is not None and principal.kind == "session":
        here = request.path_qs
        return render_page(
            request,
            "forbidden.html",
            {
                "account": account_of(principal.claims),
                "sign_out_url": f"{prefix}/logout?" + urlencode({"rd": "/"}),
                "switch_url": login_url(prefix, here, switch="1"),
                "home_url": "/",
            },
            status=status,
        )
    if status == 429:
        return render_page(
            request, "rate_limited.html", {"retry_url": _retry_target(request)}, status=status
        )
    return render_page(
        request,
        "error.html",
        {"code": code, "message": message, "home_url": "/"},
        status=status,
    )


def _retry_target(request: web.Request) -> str:
    """The same page again for a GET; the home page after anything else."""
    return request.path_qs if request.method == "GET" else "/"
