"""A sample context for every page: the reference of what each template receives.

docs/pages.md documents these; the tests render every template with them in every
language (StrictUndefined: a template using anything else fails), and
scripts/page_screenshots.py renders them for docs/pages/.
"""

from __future__ import annotations

from typing import Any

PREFIX = "/_gateway"
_ACCOUNT = {
    "name": "Ada Lovelace",
    "email": "ada@example.com",
    "subject": "248289761001",
    "display": "Ada Lovelace",
}

# Template file -> list of (state name, page context, HTTP status).
PAGE_SAMPLES: dict[str, list[tuple[str, dict[str, Any], int]]] = {
    "sign_in.html": [
        (
            "sign-in",
            {
                "providers": [
                    {
                        "name": "corp",
                        "label": "Corporate SSO",
                        "url": f"{PREFIX}/login?provider=corp&rd=%2F",
                        "logo_url": f"{PREFIX}/ui/providers/corp/logo",
                    },
                    {
                        "name": "github",
                        "label": "GitHub",
                        "url": f"{PREFIX}/login?provider=github&rd=%2F",
                        "logo_url": None,
                    },
                ]
            },
            200,
        )
    ],
    "forbidden.html": [
        (
            "forbidden",
            {
                "account": _ACCOUNT,
                "sign_out_url": f"{PREFIX}/logout?rd=%2F",
                "switch_url": f"{PREFIX}/login?rd=%2Fadmin&switch=1",
                "home_url": "/",
            },
            403,
        )
    ],
    "login_failed.html": [
        (
            f"login-{reason}",
            {
                "reason": reason,
                "retry_url": f"{PREFIX}/login?provider=corp&rd=%2Freports",
                "back_url": "/",
                "provider_label": "Corporate SSO",
                "error": "invalid_request_object" if reason == "provider_error" else None,
            },
            400,
        )
        for reason in ("cancelled", "expired", "refused", "interaction_required", "provider_error")
    ],
    "unavailable.html": [
        (f"unavailable-{reason}", {"reason": reason}, status)
        for reason, status in (
            ("misconfigured", 502),
            ("unreachable", 503),
            ("store", 503),
            ("no_authenticator", 503),
        )
    ],
    "rate_limited.html": [("rate-limited", {"retry_url": f"{PREFIX}/login?rd=%2F"}, 429)],
    "logout.html": [
        (
            "logout",
            {
                "account": _ACCOUNT,
                "provider_label": "Corporate SSO",
                "provider_signs_out": True,
                "action": f"{PREFIX}/logout",
                "csrf": "csrf-token",
                "rd": "/reports",
                "cancel_url": "/reports",
            },
            200,
        ),
        (
            "logout-not-signed-in",
            {
                "account": None,
                "provider_label": None,
                "provider_signs_out": False,
                "action": f"{PREFIX}/logout",
                "csrf": "",
                "rd": "",
                "cancel_url": "/",
            },
            200,
        ),
    ],
    "logged_out.html": [
        ("logged-out", {"sign_in_url": "/", "scope": "gateway"}, 200),
        ("logged-out-frontchannel", {"sign_in_url": "/", "scope": "application"}, 200),
    ],
    "error.html": [
        (
            f"error-{status}",
            {"code": code, "message": message, "home_url": "/"},
            status,
        )
        for status, code, message in (
            (404, "not_found", "No application is configured at this address."),
            (400, "conflicting_cookies", ""),
            (502, "bad_gateway", "The application behind the gateway could not be reached."),
        )
    ],
}


def shared_sample() -> dict[str, Any]:
    """What every page gets besides its own context (see Site.shared_context)."""
    return {
        "lang": "en",
        "nonce": "sample-nonce",
        "request_id": "5f2c0a1e9b7d4c3a0000000000000042",
        "status": 200,
    }
