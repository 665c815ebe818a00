"""A page on another origin calls a protected API from real Chromium: the preflight passes
unauthenticated on a route with cors_preflight; the call itself still needs a token."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlencode

from playwright.async_api import Page

from tests.support.op import OidcProvider
from tests.web.test_bearer_routes import API, trusted_issuer

CALL = """async ([url, token]) => {
  try {
    const response = await fetch(url, {headers: {Authorization: 'Bearer ' + token}});
    return String(response.status);
  } catch (error) {
    return 'blocked';  // a CORS failure: a TypeError without details, by design
  }
}"""


async def test_cross_origin_call_preflight_passes_but_the_call_needs_a_token(
    gateway_factory: Any, oidc_provider: OidcProvider, upstream: str, page: Page
) -> None:
    """From a page on another origin: with a valid token the call succeeds (the
    upstream answered the preflight); with a bad token the call is refused (401) and the
    upstream never serves it; a route without cors_preflight refuses the preflight."""
    rs = oidc_provider.register_client()
    gw = gateway_factory({
        "routes": [
            {"path": "/", "upstream": upstream, "auth": "bearer", "cors_preflight": True},
            {"path": "/strict", "upstream": upstream, "auth": "bearer"},
        ],
        "bearer": {"issuers": [trusted_issuer(oidc_provider, rs)]},
    })  # fmt: skip
    # The app's page: served for real from another origin (the echo app's port), so the
    # browser applies its loopback rules as it would to a local app.
    origin = upstream
    await page.goto(f"{upstream}/set-headers?Content-Type=text%2Fhtml")
    cors = urlencode({
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Headers": "authorization",
        "Access-Control-Allow-Methods": "GET",
    })  # fmt: skip
    token = oidc_provider.client_credentials_token(rs, resource=API)
    assert "200" == await page.evaluate(CALL, [f"{gw.url}/set-headers?{cors}", token])
    assert "blocked" == await page.evaluate(CALL, [f"{gw.url}/set-headers?{cors}", "bad"])
    assert "blocked" == await page.evaluate(CALL, [f"{gw.url}/strict/set-headers?{cors}", token])
    # Access lines are written once each response is sent: give the last one a moment.
    for _ in range(50):
        log = gw.log_text()
        if '"message":"OPTIONS /strict/set-headers 401"' in log:
            break
        await asyncio.sleep(0.1)
    assert '"message":"OPTIONS /set-headers 200"' in log
    assert '"message":"GET /set-headers 401"' in log  # the call with a bad token
    assert '"message":"OPTIONS /strict/set-headers 401"' in log
    assert "/strict/set-headers 200" not in log
