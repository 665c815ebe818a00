"""A real browser signs in through a gateway with profile keycloak, against oidc-provider
shaped like a Keycloak realm (issuer /realms/test, roles in realm_access), and signs out
at the realm."""

from __future__ import annotations

from typing import Any

from playwright.async_api import Page

from tests.e2e.test_browser_journey import legacy_app, sign_in_at_op  # noqa: F401 - fixture
from tests.providers.conftest import ProfiledOP, profiled_op  # noqa: F401 - fixture
from tests.web.login_setup import start_login_gateway


async def test_keycloak_realm_role_journey_in_chromium(
    gateway_factory: Any,
    profiled_op: ProfiledOP,  # noqa: F811 - fixture
    legacy_app: str,  # noqa: F811 - fixture
    page: Page,
) -> None:
    """A realm admin opens /admin, signs in at the realm, sees the app with her e-mail;
    signs out through the realm's end_session page and lands on the gateway's signed-out
    page; a user without the admin realm role then gets the 403 page on /admin."""
    op = profiled_op("keycloak", issuer_path="/realms/test")
    routes: list[dict[str, Any]] = [
        {"path": "/admin", "upstream": legacy_app, "auth": "login",
         "policy": {"claims": [{"claim": "roles", "contains": "admin"}]}},
        {"path": "/", "upstream": legacy_app, "auth": "login"},
    ]  # fmt: skip
    gw, _ = start_login_gateway(
        gateway_factory, op, legacy_app, routes=routes,
        provider={"issuer": op.profile_issuer, "profile": "keycloak"},
    )  # fmt: skip
    await page.goto(f"{gw.url}/admin")
    assert page.url.startswith(op.issuer)
    await sign_in_at_op(page, "kc-admin")
    await page.wait_for_url(f"{gw.url}/admin")
    assert await page.inner_text("#email") == "kc-admin@example.test"

    await page.click("#logout")
    await page.click("#confirm-logout")
    await page.wait_for_url(f"{op.issuer}/**")
    await page.click("button[name=logout][value=yes]")
    await page.wait_for_url(f"{gw.url}/_gateway/logged-out*")
    assert "You are signed out" in await page.inner_text("body")

    await page.goto(f"{gw.url}/admin")
    assert page.url.startswith(op.issuer)
    await sign_in_at_op(page, "kc-user")
    await page.wait_for_url(f"{gw.url}/admin")
    assert await page.locator("#email").count() == 0  # the refusal page, not the app
    response = await page.goto(f"{gw.url}/admin")
    assert response is not None
    assert response.status == 403
