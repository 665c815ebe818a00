"""A real browser's WebSocket through the gateway dies with the session it was opened under.

The page is one the gateway serves from its upstream (the echo app), so the socket is a
same-origin one carrying the session cookie, exactly as an app's own script would open it;
the verdict is the close event the page itself received.
"""

from __future__ import annotations

import asyncio
from typing import Any

from playwright.async_api import Page

from tests.e2e.test_browser_journey import sign_in_at_op
from tests.support.op import OidcProvider
from tests.web.login_setup import start_login_gateway

CHECK_INTERVAL = 3  # sessions.websocket_check_interval for these gateways, seconds
CLOSE_WAIT = 30.0  # generous bound on waiting for the page's close event

OPEN_SOCKET = """async (url) => {
    const ws = new WebSocket(url);
    window.socketClosed = new Promise((resolve) => ws.addEventListener(
        "close", (e) => resolve({code: e.code, reason: e.reason})));
    await new Promise((resolve, reject) => {
        ws.addEventListener("open", resolve);
        ws.addEventListener("error", () => reject(new Error("websocket failed")));
    });
    const echoed = new Promise((resolve) => ws.addEventListener(
        "message", (e) => resolve(e.data), {once: true}));
    ws.send("hello through the gateway");
    return await echoed;
}"""


async def signed_in_socket(page: Page, gw_url: str, user: str) -> None:
    """Sign in through the gateway, then open a WebSocket from a page of the app and echo."""
    await page.goto(f"{gw_url}/dashboard")
    await sign_in_at_op(page, user)
    await page.wait_for_url(f"{gw_url}/dashboard")
    ws_url = gw_url.replace("http://", "ws://") + "/ws"
    assert await page.evaluate(OPEN_SOCKET, ws_url) == "hello through the gateway"


async def close_event(page: Page) -> Any:
    return await asyncio.wait_for(page.evaluate("window.socketClosed"), CLOSE_WAIT)


async def test_logout_in_another_tab_closes_the_socket(
    gateway_factory: Any, oidc_provider: OidcProvider, upstream: str, page: Page
) -> None:
    """Sign in, open a WebSocket in one tab, sign out in another: the first tab's socket
    gets a close event with 1008 "session ended"."""
    gw, _ = start_login_gateway(
        gateway_factory, oidc_provider, upstream,
        sessions={"websocket_check_interval": CHECK_INTERVAL},
    )  # fmt: skip
    await signed_in_socket(page, gw.url, "tabby")
    other_tab = await page.context.new_page()
    await other_tab.goto(f"{gw.url}/_gateway/logout")
    await other_tab.click("#confirm-logout")
    await other_tab.wait_for_url(f"{oidc_provider.issuer}/**")
    assert await close_event(page) == {"code": 1008, "reason": "session ended"}


async def test_signout_at_provider_closes_the_socket(
    gateway_factory: Any, oidc_provider: OidcProvider, upstream: str, page: Page
) -> None:
    """Sign in, open a WebSocket, sign out at the provider in another tab: the provider's
    back-channel logout reaches the gateway and the page's socket is closed with 1008."""
    gw, _ = start_login_gateway(
        gateway_factory, oidc_provider, upstream,
        sessions={"websocket_check_interval": CHECK_INTERVAL},
    )  # fmt: skip
    await signed_in_socket(page, gw.url, "bertha")
    other_tab = await page.context.new_page()
    await other_tab.goto(oidc_provider.endpoint("end_session"))
    await other_tab.click("button[name=logout][value=yes]")
    await other_tab.wait_for_load_state()
    assert await close_event(page) == {"code": 1008, "reason": "session ended"}
