"""Which requests count as a credential-less CORS preflight (and so skip sign-in)."""

from __future__ import annotations

import pytest

from gateway.policy.cors import is_cors_preflight

PREFLIGHT = {"Origin": "https://app.example", "Access-Control-Request-Method": "DELETE"}
COOKIES = frozenset({"gateway_session", "gateway_login"})


@pytest.mark.parametrize(
    ("method", "headers", "query", "expected"),
    [
        ("OPTIONS", PREFLIGHT, "", True),
        ("options", PREFLIGHT, "", True),
        ("OPTIONS", {**PREFLIGHT, "Cookie": "theme=dark"}, "", True),
        ("GET", PREFLIGHT, "", False),
        ("OPTIONS", {"Origin": "https://app.example"}, "", False),
        ("OPTIONS", {"Access-Control-Request-Method": "GET"}, "", False),
        ("OPTIONS", {**PREFLIGHT, "Authorization": "Bearer x"}, "", False),
        ("OPTIONS", {**PREFLIGHT, "Proxy-Authorization": "Basic x"}, "", False),
        ("OPTIONS", {**PREFLIGHT, "Cookie": "a=1; gateway_session=t"}, "", False),
        ("OPTIONS", PREFLIGHT, "_method=DELETE", False),
        ("OPTIONS", {**PREFLIGHT, "Cookie": "gateway_login=YWJj=="}, "", False),
        ("OPTIONS", {**PREFLIGHT, "Cookie": "a=1;gateway_session=t"}, "", False),
        ("OPTIONS", {**PREFLIGHT, "Cookie": " ; gateway_session"}, "", False),
    ],
    ids=["preflight", "lower-case method", "foreign cookie", "not OPTIONS", "no request method",
         "no origin", "authorization", "proxy authorization", "session cookie", "_method",
         "cookie value with '='", "cookies without spaces", "cookie without value"],
)  # fmt: skip
def test_is_cors_preflight(
    method: str, headers: dict[str, str], query: str, expected: bool
) -> None:
    """Only OPTIONS with Origin and Access-Control-Request-Method and no credentials (no
    Authorization, no gateway cookie, no method override) is a preflight."""
    assert expected == is_cors_preflight(method, headers, query, COOKIES)


@pytest.mark.parametrize("names", [{"gateway_session"}, {"XXXX", "session"}, set()])
def test_no_cookie_header_sends_no_cookie(names: set[str]) -> None:
    """Without a Cookie header no cookie is sent, whatever the gateway's cookies are
    named (sessions.cookie_name is configurable)."""
    assert is_cors_preflight("OPTIONS", PREFLIGHT, "", frozenset(names))
