"""The gateway's pages in real Chromium: each page state says what happened, its buttons
work, it is accessible (axe-core, light and dark) and it follows the browser's language.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from weakref import WeakKeyDictionary

from playwright.async_api import Browser, ConsoleMessage, Page, Request, Response

from tests.support.a11y import assert_accessible, axe_violations
from tests.support.op import OidcProvider
from tests.support.ports import free_port
from tests.support.processes import ManagedProcess
from tests.web.login_setup import start_login_gateway

ADMIN_ROUTES: list[dict[str, Any]] = [
    {"path": "/admin", "auth": "login", "policy": {"groups": ["admins"]}},
    {"path": "/", "auth": "login"},
]
SUPPORT = {"support_contact": "it-help@example.test", "support_url": "https://help.example.test/"}
# A 1x1 PNG and a small SVG: logos the gateway must serve itself.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cf00000301010018dd8db00000000049454e44ae426082"
)
SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="40" height="40">'
    b'<circle cx="20" cy="20" r="18" fill="#1d4ed8"/></svg>'
)


# Per page: the console's Content-Security-Policy reports (see browser_page).
CSP_ERRORS: WeakKeyDictionary[Page, list[str]] = WeakKeyDictionary()


@asynccontextmanager
async def browser_page(browser: Browser, locale: str = "en-US") -> AsyncIterator[Page]:
    """A page in a fresh context whose Accept-Language follows ``locale``; CSP reports kept."""
    context = await browser.new_context(locale=locale)
    context.set_default_timeout(15_000)
    page = await context.new_page()
    reports: list[str] = []
    CSP_ERRORS[page] = reports

    def note_csp(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            reports.append(message.text)

    page.on("console", note_csp)
    try:
        yield page
    finally:
        await context.close()


def routes_to(upstream: str, routes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**r, "upstream": upstream} for r in routes]


async def sign_in_at_op(page: Page, user: str) -> None:
    await page.fill("input[name=login]", user)
    await page.fill("input[name=password]", "any-password")
    await page.click("button[type=submit]")
    await page.click("button[type=submit]")  # consent


async def heading(page: Page) -> str:
    return (await page.inner_text("main h1")).strip()


async def test_cancel_at_provider_says_so_and_try_again_starts_over(
    gateway_factory: Any, oidc_provider: OidcProvider, upstream: str, browser: Browser
) -> None:
    """Cancel at the provider: 'Sign-in cancelled' with Try again (back to the provider for
    the same page) and Go back, in English and German; accessible; no CSP violation."""
    gw, _ = start_login_gateway(gateway_factory, oidc_provider, upstream)
    for locale, title, retry in (
        ("en-US", "Sign-in cancelled", "Try again"),
        ("de-DE", "Anmeldung abgebrochen", "Erneut versuchen"),
    ):
        async with browser_page(browser, locale) as page:
            await page.goto(f"{gw.url}/reports?q=1")
            assert page.url.startswith(oidc_provider.issuer)
            await page.click("text=[ Cancel ]")
            await page.wait_for_url(f"{gw.url}/_gateway/callback*")
            assert await heading(page) == title
            assert title in await page.title()
            assert await page.inner_text("#retry") == retry
            await assert_accessible(page)
            assert CSP_ERRORS[page] == []
            await page.click("#retry")
            await page.wait_for_url(f"{oidc_provider.issuer}/**")
            await sign_in_at_op(page, "carol")
            await page.wait_for_url(f"{gw.url}/reports?q=1")


async def test_expired_login_offers_start_again(
    gateway_factory: Any, oidc_provider: OidcProvider, upstream: str, browser: Browser
) -> None:
    """A callback whose login is gone (cookies cleared, or too late): 'Sign-in expired' and
    a Start again link that leads to the provider's sign-in."""
    gw, _ = start_login_gateway(gateway_factory, oidc_provider, upstream)
    for locale, title in (("en-US", "Sign-in expired"), ("de-DE", "Anmeldung abgelaufen")):
        async with browser_page(browser, locale) as page:
            sent: list[str] = []

            def note_request(request: Request, sent: list[str] = sent) -> None:
                sent.append(request.url)

            page.on("request", note_request)
            await page.goto(f"{gw.url}/")
            to_op = [u for u in sent if u.startswith(oidc_provider.issuer) and "state=" in u]
            state = parse_qs(urlsplit(to_op[0]).query)["state"][0]
            await page.context.clear_cookies()
            await page.goto(f"{gw.url}/_gateway/callback?state={state}&code=stale")
            assert await heading(page) == title
            await assert_accessible(page)
            await page.click("#retry")
            await page.wait_for_url(f"{oidc_provider.issuer}/**")
            assert await page.is_visible("input[name=login]")


async def test_forbidden_page_names_the_account_and_offers_sign_out_and_switch(
    gateway_factory: Any, oidc_provider: OidcProvider, upstream: str, browser: Browser
) -> None:
    """403 by policy names who is signed in (a hostile name stays text), and its buttons
    work: Use another account asks the provider for a fresh sign-in, Sign out asks to
    confirm; in English and German."""
    gw, _ = start_login_gateway(
        gateway_factory, oidc_provider, upstream, routes=routes_to(upstream, ADMIN_ROUTES)
    )
    hostile = '<img src=x id=pwned onerror="document.title=1">'
    for locale, title, switch in (
        ("en-US", "Access denied", "Use another account"),
        ("de-DE", "Zugriff verweigert", "Anderes Konto verwenden"),
    ):
        async with browser_page(browser, locale) as page:
            await page.goto(f"{gw.url}/admin/panel")
            await sign_in_at_op(page, hostile)
            await page.wait_for_url(f"{gw.url}/admin/panel")
            assert await heading(page) == title
            account = await page.inner_text("#account")
            assert f"Test User {hostile}" in account
            assert await page.query_selector("#pwned") is None
            assert await page.inner_text("#switch-account") == switch
            await assert_accessible(page)
            assert CSP_ERRORS[page] == []

            await page.click("#switch-account")
            await page.wait_for_url(f"{oidc_provider.issuer}/**")
            assert await page.is_visible("input[name=login]")  # prompt=login: who signs in?
            await sign_in_at_op(page, "alice")
            await page.wait_for_url(f"{gw.url}/admin/panel")
            body = await page.inner_text("body")
            assert '"X-Auth-Request-User": "alice"' in body or "alice" in body

            await page.goto(f"{gw.url}/_gateway/logout?rd=/admin/panel")
            assert "alice@example.test" in await page.inner_text("#account")


async def test_logout_confirmation_names_account_and_cancel_keeps_the_session(
    gateway_factory: Any, oidc_provider: OidcProvider, upstream: str, browser: Browser
) -> None:
    """The sign-out page names the account and the provider; Cancel goes back signed in;
    Sign out ends the session and shows the signed-out page (both accessible)."""
    gw, _ = start_login_gateway(gateway_factory, oidc_provider, upstream)
    async with browser_page(browser) as page:
        await page.goto(f"{gw.url}/reports")
        await sign_in_at_op(page, "dora")
        await page.wait_for_url(f"{gw.url}/reports")
        await page.goto(f"{gw.url}/_gateway/logout?rd=/reports")
        assert await heading(page) == "Sign out"
        account = await page.inner_text("#account")
        assert "Test User dora" in account
        assert "dora@example.test" in account
        assert "Test OP" in await page.inner_text("main")
        await assert_accessible(page)
        await page.click("#cancel-logout")
        await page.wait_for_url(f"{gw.url}/reports")
        assert "dora" in await page.inner_text("body")  # still signed in: the app answered

        await page.goto(f"{gw.url}/_gateway/logout")
        await page.click("#confirm-logout")
        await page.wait_for_url(f"{oidc_provider.issuer}/**")
        await page.click("button[name=logout][value=yes]")
        await page.wait_for_url(f"{gw.url}/_gateway/logged-out*")
        assert await heading(page) == "Signed out"
        await assert_accessible(page)
        assert CSP_ERRORS[page] == []
        await page.click("#sign-in-again")
        await page.wait_for_url(f"{oidc_provider.issuer}/**")


async def test_wrong_client_secret_is_a_misconfiguration_page_without_retry(
    gateway_factory: Any, oidc_provider: OidcProvider, upstream: str, browser: Browser
) -> None:
    """With a wrong client secret the code exchange fails: 502, 'misconfigured', not the
    user's fault, no Try again, a support contact and the request id, logged with the
    reason (invalid_client); in English and German."""
    gw, _ = start_login_gateway(gateway_factory, oidc_provider, upstream, extra={"ui": SUPPORT})
    gw.config["providers"][0]["client_secret"] = "not-the-secret-" + "x" * 32
    gw.restart()
    for locale, title in (
        ("en-US", "Sign-in is misconfigured"),
        ("de-DE", "Die Anmeldung ist falsch eingerichtet"),
    ):
        async with browser_page(browser, locale) as page:
            answers: list[int] = []

            def note_callback(response: Response, answers: list[int] = answers) -> None:
                if response.url.startswith(f"{gw.url}/_gateway/callback"):
                    answers.append(response.status)

            page.on("response", note_callback)
            await page.goto(f"{gw.url}/reports")
            await sign_in_at_op(page, "erin")
            await page.wait_for_url(f"{gw.url}/_gateway/callback*")
            assert answers == [502]
            assert await heading(page) == title
            assert await page.query_selector("#retry") is None
            contact = await page.get_attribute("#contact", "href")
            assert contact is not None
            assert contact.startswith("mailto:it-help@example.test")
            request_id = await page.inner_text("#request-id")
            assert request_id in contact
            await assert_accessible(page)
    log = gw.log_text()
    assert "invalid_client" in log
    assert request_id in log


async def test_provider_down_is_a_503_page_without_retry(
    gateway_factory: Any, fresh_oidc_provider: OidcProvider, upstream: str, browser: Browser
) -> None:
    """The provider cannot be reached: 503 'Sign-in is unavailable', not the user's fault,
    no Try again; accessible; in English and German."""
    gw, _ = start_login_gateway(gateway_factory, fresh_oidc_provider, upstream)
    fresh_oidc_provider.stop()
    for locale, title in (
        ("en-US", "Sign-in is unavailable"),
        ("de-DE", "Die Anmeldung ist nicht verfügbar"),
    ):
        async with browser_page(browser, locale) as page:
            response = await page.goto(f"{gw.url}/reports")
            assert response is not None
            assert response.status == 503
            assert await heading(page) == title
            assert await page.query_selector("#retry") is None
            await assert_accessible(page)


def _logo_server(directory: Path) -> tuple[ManagedProcess, str]:
    port = free_port()
    server = ManagedProcess(
        "logo-server",
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        log_path=directory / "logo-server.log",
        cwd=directory,
        ready_url=f"http://127.0.0.1:{port}/",
    )
    server.start()
    return server, f"http://127.0.0.1:{port}"


async def test_branded_sign_in_chooser_shows_logos_from_the_gateway(
    gateway_factory: Any, oidc_provider: OidcProvider, tmp_path: Path, browser: Browser
) -> None:
    """A branded chooser (name, colours, footer, logo file, provider logo by URL): every
    image loads from the gateway itself under the strict CSP, each button starts its
    provider, and a hostile product name and footer stay text."""
    assets = tmp_path / "assets"
    assets.mkdir()
    (assets / "logo.svg").write_bytes(SVG)
    (assets / "partner.png").write_bytes(PNG)
    server, base = _logo_server(assets)
    try:
        provider = {
            "issuer": oidc_provider.issuer,
            "client_id": "unused",
            "client_secret": "unused-secret",
            "allow_insecure_http": True,
            "allow_private_network": True,
        }
        gw = gateway_factory(
            {
                "routes": [{"path": "/", "upstream": "http://127.0.0.1:9", "auth": "login"}],
                "providers": [
                    {"name": "corp", "label": "Corp SSO", **provider},
                    {"name": "partner", "label": "Partner", **provider},
                ],
                "sessions": {"cookie_secure": False, "secrets": ["s" * 48]},
                "ui": {
                    "product_name": "Acme <script>alert(1)</script>",
                    "logo": str(assets / "logo.svg"),
                    "logo_alt": "Acme",
                    "footer": "© Acme <b>Corp</b>",
                    "colours": {"primary": "#7c2d12"},
                    "provider_logos": {"partner": f"{base}/partner.png"},
                },
            }
        )
        async with browser_page(browser) as page:
            await page.goto(f"{gw.url}/_gateway/login?rd=/reports")
            assert await heading(page) == "Sign in"
            assert "Acme <script>alert(1)</script>" in await page.inner_text("header")
            assert await page.inner_text(".footer-text") == "© Acme <b>Corp</b>"
            assert await page.query_selector("footer b") is None
            sources = await page.eval_on_selector_all("img", "els => els.map(e => e.src)")
            assert sorted(sources) == [
                f"{gw.url}/_gateway/ui/logo",
                f"{gw.url}/_gateway/ui/providers/partner/logo",
            ]
            widths = await page.eval_on_selector_all("img", "els => els.map(e => e.naturalWidth)")
            assert all(w > 0 for w in widths), widths
            colour = await page.eval_on_selector(
                "#providers a", "a => getComputedStyle(a).backgroundColor"
            )
            assert colour == "rgb(124, 45, 18)"
            await assert_accessible(page)
            assert CSP_ERRORS[page] == []
            await page.click("text=Sign in with Partner")
            await page.wait_for_url(f"{oidc_provider.issuer}/**")
            assert "client_id=unused" in page.url
    finally:
        server.stop()


async def test_too_many_login_starts_get_the_429_page(
    gateway_factory: Any, oidc_provider: OidcProvider, upstream: str, browser: Browser
) -> None:
    """Over the login-start limit a browser gets the templated 'Too many attempts' page
    (accessible, German too) with a Try again link."""
    gw, _ = start_login_gateway(
        gateway_factory, oidc_provider, upstream, extra={"rate_limit": {"per_minute": 2}}
    )
    async with browser_page(browser, "de-DE") as page:
        for _ in range(2):
            await page.goto(f"{gw.url}/_gateway/login?rd=/x")
        response = await page.goto(f"{gw.url}/_gateway/login?rd=/x")
        assert response is not None
        assert response.status == 429
        assert await heading(page) == "Zu viele Versuche"
        assert await page.get_attribute("#retry", "href") == "/_gateway/login?rd=/x"
        await assert_accessible(page)


async def test_axe_finds_poor_contrast_in_a_badly_branded_page(
    gateway_factory: Any, browser: Browser
) -> None:
    """The accessibility check can fail: grey text on white (2.3:1) is reported."""
    gw = gateway_factory(
        {
            "routes": [{"path": "/", "upstream": "http://127.0.0.1:9", "auth": "public"}],
            "ui": {"colours": {"text": "#aaaaaa"}},
        }
    )
    async with browser_page(browser) as page:
        await page.goto(f"{gw.url}/_gateway/nothing-here")
        assert await heading(page) == "Not found"
        violations = await axe_violations(page)
        assert [v["id"] for v in violations] == ["color-contrast"]


def _legacy_app(directory: Path) -> tuple[ManagedProcess, str]:
    """The demo's legacy app: an HTML page with a same-origin "Sign out" link (#logout)."""
    port = free_port()
    app = ManagedProcess(
        "legacy-app",
        [sys.executable, "-m", "demo.upstream", "--port", str(port)],
        log_path=directory / "legacy-app.log",
        cwd=Path(__file__).resolve().parents[2],
        ready_url=f"http://127.0.0.1:{port}/",
    )
    app.start()
    return app, f"http://127.0.0.1:{port}"


async def test_provider_confirmation_mode_asks_only_once(
    gateway_factory: Any, oidc_provider: OidcProvider, tmp_path: Path, browser: Browser
) -> None:
    """ui.logout_confirmation: provider: a click on the app's Sign out link goes straight to
    the provider's question (no gateway page before it) and ends the session; a URL typed
    or opened without a click still gets the gateway's confirmation page."""
    app, app_url = _legacy_app(tmp_path)
    try:
        gw, _ = start_login_gateway(
            gateway_factory,
            oidc_provider,
            app_url,
            extra={"ui": {"logout_confirmation": "provider"}},
        )
        async with browser_page(browser) as page:
            await page.goto(f"{gw.url}/reports")
            await sign_in_at_op(page, "fred")
            await page.wait_for_url(f"{gw.url}/reports")
            await page.goto(f"{gw.url}/_gateway/logout")  # typed: no user activation
            assert await heading(page) == "Sign out"
            await page.click("#cancel-logout")
            await page.wait_for_url(f"{gw.url}/")

            pages: list[str] = []

            def note_page(response: Response) -> None:
                if response.status == 200 and response.url.startswith(gw.url):
                    pages.append(response.url)

            page.on("response", note_page)
            await page.click("#logout")
            await page.wait_for_url(f"{oidc_provider.issuer}/**")
            assert not any("/_gateway/logout" in url for url in pages)
            await page.click("button[name=logout][value=yes]")
            await page.wait_for_url(f"{gw.url}/_gateway/logged-out*")
            await page.goto(f"{gw.url}/reports")
            assert page.url.startswith(oidc_provider.issuer)
            assert await page.is_visible("input[name=login]")
    finally:
        app.stop()


async def test_keyboard_alone_reaches_every_control_in_order(
    gateway_factory: Any, oidc_provider: OidcProvider, browser: Browser
) -> None:
    """Tab goes skip link, each provider button in page order, the help link, each with a
    visible focus ring; Shift+Tab goes back; Enter on a button starts that provider."""
    provider = {
        "issuer": oidc_provider.issuer,
        "client_id": "kbd",
        "client_secret": "kbd-secret",
        "allow_insecure_http": True,
        "allow_private_network": True,
    }
    gw = gateway_factory(
        {
            "routes": [{"path": "/", "upstream": "http://127.0.0.1:9", "auth": "login"}],
            "providers": [
                {"name": "one", "label": "First", **provider},
                {"name": "two", "label": "Second", **provider},
            ],
            "sessions": {"cookie_secure": False, "secrets": ["s" * 48]},
            "ui": {"support_url": "https://help.example.test/"},
        }
    )
    async with browser_page(browser) as page:
        await page.goto(f"{gw.url}/_gateway/login?rd=/x")
        order = []
        for _ in range(4):
            await page.keyboard.press("Tab")
            order.append(await page.evaluate("document.activeElement.textContent.trim()"))
            outline = await page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
            assert outline == "solid", order[-1]
        assert order == [
            "Skip to content",
            "Sign in with First",
            "Sign in with Second",
            "Help and support",
        ]
        await page.keyboard.press("Shift+Tab")
        await page.keyboard.press("Enter")
        await page.wait_for_url(f"{oidc_provider.issuer}/**")
        assert "client_id=kbd" in page.url
