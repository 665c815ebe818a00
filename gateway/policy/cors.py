"""CORS preflights that a route lets through to its upstream without authentication.

A browser sends a preflight (Fetch standard, "CORS-preflight request") before a
cross-origin call with credentials or custom headers: `OPTIONS` with `Origin` and
`Access-Control-Request-Method`, and never with credentials. Only such a request, on a
route with `cors_preflight: true`, skips sign-in; the upstream answers it (the gateway
does not invent CORS headers), and the actual call needs authentication as always.
"""

from __future__ import annotations

from collections.abc import Container, Mapping


def is_cors_preflight(
    method: str, headers: Mapping[str, str], query_string: str, cookie_names: Container[str]
) -> bool:
    """Whether a request is a credential-less CORS preflight (nothing else qualifies)."""
    if method.upper() != "OPTIONS" or "_method" in query_string:
        return False
    if not headers.get("Origin") or not headers.get("Access-Control-Request-Method"):
        return False
    if "Authorization" in headers or "Proxy-Authorization" in headers:
        return False  # a preflight never carries credentials: this is an API call
    cookies = headers.get("Cookie", "")
    sent = {part.split("=", 1)[0].strip() for part in cookies.split(";") if part.strip()}
    return not any(name in cookie_names for name in sent)
