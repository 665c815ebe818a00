"""What the callback answers for each provider error: the right page and status for a
browser, the same JSON shape for anything else, and a log line with the reason."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest

from tests.support.login import HTML_ACCEPT
from tests.support.op import OidcProvider
from tests.web.login_setup import login_state, start_login_gateway

CASES = [
    ("access_denied", 400, "Sign-in cancelled", True),
    ("login_required", 400, "Sign-in not completed", True),
    ("some_new_error", 400, "reported a problem (some_new_error)", True),
    ("invalid_scope", 502, "Sign-in is misconfigured", False),
    ("unauthorized_client", 502, "Sign-in is misconfigured", False),
    ("temporarily_unavailable", 503, "Sign-in is unavailable", False),
]


@pytest.mark.parametrize(("error", "status", "text", "retry"), CASES)
async def test_provider_error_gets_its_page_and_status(
    gateway_factory: Any,
    oidc_provider: OidcProvider,
    upstream: str,
    error: str,
    status: int,
    text: str,
    retry: bool,
) -> None:
    """A refusal the user can act on is a 400 with Try again back to the page they wanted;
    one only an operator can fix (the gateway's own request or client) is a 502, a provider
    outage a 503, neither with Try again; all logged with the provider's reason."""
    gw, _ = start_login_gateway(gateway_factory, oidc_provider, upstream)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        state = await login_state(session, f"{gw.url}/reports?x=1")
        answer = await session.get(
            f"{gw.url}/_gateway/callback",
            params={"state": state, "error": error, "iss": oidc_provider.issuer},
            headers={"Accept": HTML_ACCEPT, "Accept-Language": "en"},
            allow_redirects=False,
        )
        page = await answer.text()
    assert answer.status == status
    assert text in page
    retry_link = re.search(r'id="retry" href="([^"]+)"', page)
    if retry:
        assert retry_link is not None
        wanted = quote(f"{gw.url}/reports?x=1", safe="")
        assert retry_link.group(1) == f"/_gateway/login?provider=op&amp;rd={wanted}"
    else:
        assert retry_link is None
        assert "not a problem with your account" in page
    assert f"refused the login: {error}" in gw.log_text()


async def test_misconfiguration_stays_json_for_api_clients(
    gateway_factory: Any, oidc_provider: OidcProvider, upstream: str
) -> None:
    """A client that asks for JSON gets {error, message, request_id}, now with the
    misconfiguration's own code and a 502."""
    gw, _ = start_login_gateway(gateway_factory, oidc_provider, upstream)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        state = await login_state(session, f"{gw.url}/")
        answer = await session.get(
            f"{gw.url}/_gateway/callback",
            params={"state": state, "error": "invalid_scope", "iss": oidc_provider.issuer},
            headers={"Accept": "application/json"},
        )
        body = await answer.json()
    assert answer.status == 502
    assert body["error"] == "provider_misconfigured"
    assert body["request_id"] == answer.headers["X-Request-ID"]
    assert set(body) == {"error", "message", "request_id"}
