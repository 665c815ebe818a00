"""A real browser signs in through the gateway, sees the legacy app, and signs out."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page

from tests.support.op import OidcProvider
from tests.support.ports import free_port
from tests.support.processes import ManagedProcess
from tests.web.login_setup import start_login_gateway

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def legacy_app(tmp_path: Path) -> Iterator[str]:
    """The demo's legacy app: an HTML page listing the identity headers it receives."""
    port = free_port()
    app = ManagedProcess(
        "legacy-app",
        [sys.executable, "-m", "demo.upstream", "--port", str(port)],
        log_path=tmp_path / "legacy-app.log",
        cwd=ROOT,
        ready_url=f"http://127.0.0.1:{port}/",
    )
    app.start()
    yield f"http://127.0.0.1:{port}"
    app.stop()


async def sign_in_at_op(page: Page, user: str) -> None:
    await page.fill("input[name=login]", user)
    await page.fill("input[name=password]", "any-password")
    await page.click("button[type=submit]")
    await page.click("button[type=submit]")  # consent


async def test_sign_in_see_identity_sign_out(
    gateway_factory: Any, oidc_provider: OidcProvider, legacy_app: str, page: Page
) -> None:
    """Open a protected page, sign in at the provider, see the e-mail, sign out, be asked again."""
    gw, _ = start_login_gateway(gateway_factory, oidc_provider, legacy_app)
    await page.goto(f"{gw.url}/reports")
    assert page.url.startswith(oidc_provider.issuer)
    await sign_in_at_op(page, "alice")
    await page.wait_for_url(f"{gw.url}/reports")
    assert await page.inner_text("#email") == "alice@example.test"

    await page.click("#logout")
    await page.click("#confirm-logout")
    await page.wait_for_url(f"{oidc_provider.issuer}/**")
    await page.click("button[name=logout][value=yes]")
    await page.wait_for_url(f"{gw.url}/_gateway/logged-out*")
    assert "You are signed out" in await page.inner_text("body")

    await page.goto(f"{gw.url}/reports")
    assert page.url.startswith(oidc_provider.issuer)
    assert await page.is_visible("input[name=login]")
