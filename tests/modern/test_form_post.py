"""response_mode=form_post: the provider POSTs the authorization response to the callback."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import aiohttp
from playwright.async_api import Page
from yarl import URL

from tests.support.forms import ANY_PASSWORD, op_form_data, parse_forms
from tests.support.login import HTML_ACCEPT, _follow
from tests.support.op import OidcProvider
from tests.web.login_setup import start_login_gateway

FORM_POST = {"response_mode": "form_post"}


def jar() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def authorization_response(
    session: aiohttp.ClientSession, start_url: str, callback: str, user: str
) -> dict[str, str]:
    """Sign in at the OP up to its form_post page; return the fields it would POST."""
    resp = await session.get(start_url, allow_redirects=False, headers={"Accept": HTML_ACCEPT})
    for _ in range(8):
        resp = await _follow(session, resp, [])
        page_url = str(resp.url)
        forms = parse_forms(await resp.text())
        for form in forms:
            if form.url(page_url) == callback:
                return dict(form.inputs)
        data = next((d for f in forms if (d := op_form_data(f, user, ANY_PASSWORD))), None)
        form = next(f for f in forms if op_form_data(f, user, ANY_PASSWORD) is not None)
        resp = await session.post(
            URL(form.url(page_url), encoded=True),
            data=data,
            allow_redirects=False,
            headers={"Accept": HTML_ACCEPT},
        )
    raise AssertionError("the OP never showed its form_post page")


async def test_form_post_login(
    gateway_factory: Any, oidc_provider: OidcProvider, upstream: str
) -> None:
    """With form_post the code comes back in a POST to the callback, and the login completes."""
    gw, _ = start_login_gateway(gateway_factory, oidc_provider, upstream, provider=FORM_POST)
    async with jar() as session:
        fields = await authorization_response(
            session, f"{gw.url}/app", f"{gw.url}/_gateway/callback", "gina"
        )
        assert {"code", "state", "iss"} <= set(fields)
        back = await session.post(f"{gw.url}/_gateway/callback", data=fields, allow_redirects=False)
        assert back.status == 302, await back.text()
        landed = await session.get(f"{gw.url}/app")
        assert (await landed.json())["headers"]["X-Auth-Request-User"] == "gina"


async def test_form_post_response_sent_in_url_is_refused(
    gateway_factory: Any, oidc_provider: OidcProvider, upstream: str
) -> None:
    """A form_post provider's code replayed in the callback URL (where it would reach logs
    and Referer) is refused: no session comes of it."""
    gw, _ = start_login_gateway(gateway_factory, oidc_provider, upstream, provider=FORM_POST)
    async with jar() as session:
        fields = await authorization_response(
            session, f"{gw.url}/app", f"{gw.url}/_gateway/callback", "hank"
        )
        back = await session.get(
            f"{gw.url}/_gateway/callback?" + urlencode(fields), allow_redirects=False
        )
        assert back.status == 400
        after = await session.get(f"{gw.url}/app", headers={"Accept": "application/json"})
        assert after.status == 401


async def test_posted_response_refused_for_query_mode_provider(
    gateway_factory: Any, oidc_provider: OidcProvider, upstream: str
) -> None:
    """A provider configured for query responses does not get its responses accepted as a
    POST either: an unasked-for mode is not its answer."""
    gw, _ = start_login_gateway(gateway_factory, oidc_provider, upstream)
    async with jar() as session:
        resp = await session.get(
            f"{gw.url}/app", allow_redirects=False, headers={"Accept": HTML_ACCEPT}
        )
        state = URL(resp.headers["Location"]).query["state"]
        back = await session.post(
            f"{gw.url}/_gateway/callback",
            data={"state": state, "code": "x" * 40, "iss": oidc_provider.issuer},
            allow_redirects=False,
        )
        assert back.status == 400
        assert "refused" in (await back.text())


async def test_form_post_callback_body_is_capped(
    gateway_factory: Any, oidc_provider: OidcProvider, upstream: str
) -> None:
    """A posted authorization response larger than any real one (16 KiB) gets 413 unread."""
    gw, _ = start_login_gateway(gateway_factory, oidc_provider, upstream, provider=FORM_POST)
    async with jar() as session:
        await session.get(f"{gw.url}/app", allow_redirects=False, headers={"Accept": HTML_ACCEPT})
        back = await session.post(
            f"{gw.url}/_gateway/callback",
            data={"state": "s", "code": "c", "padding": "p" * 20_000},
            allow_redirects=False,
        )
        assert back.status == 413


async def test_binding_cookie_samesite_none_only_for_form_post(
    gateway_factory: Any, oidc_provider: OidcProvider, upstream: str
) -> None:
    """Only the form_post login-binding cookie is SameSite=None (Secure, __Host-); the
    same gateway's query-mode binding cookie and its session cookie stay Lax."""
    secure = {"cookie_secure": True}
    posted, _ = start_login_gateway(
        gateway_factory, oidc_provider, upstream, provider=FORM_POST, sessions=secure, name="p"
    )
    plain, _ = start_login_gateway(
        gateway_factory, oidc_provider, upstream, sessions=secure, name="q"
    )
    async with jar() as session:
        a = await session.get(
            f"{posted.url}/app", allow_redirects=False, headers={"Accept": HTML_ACCEPT}
        )
        b = await session.get(
            f"{plain.url}/app", allow_redirects=False, headers={"Accept": HTML_ACCEPT}
        )
    cookie_a = a.headers["Set-Cookie"]
    cookie_b = b.headers["Set-Cookie"]
    assert cookie_a.startswith("__Host-gateway_session_login=")
    assert "SameSite=None" in cookie_a
    assert "Secure" in cookie_a
    assert "Domain" not in cookie_a
    assert "SameSite=Lax" in cookie_b


async def test_form_post_login_in_chromium_across_sites(
    gateway_factory: Any, oidc_provider: OidcProvider, upstream: str, page: Page
) -> None:
    """Real Chromium: the provider (127.0.0.1) POSTs the response cross-site to the gateway
    (localhost); the binding cookie joins that POST, the login completes, and the session
    cookie the browser keeps is still SameSite=Lax."""
    gw = gateway_factory({"routes": []}, start=False, name="xsite")
    port = URL(gw.url).port
    site = f"http://localhost:{port}"
    client = oidc_provider.register_client(
        redirect_uris=[f"{site}/_gateway/callback"],
        grant_types=["authorization_code"],
        token_endpoint_auth_method="client_secret_basic",
    )
    entry = {
        "name": "op",
        "issuer": oidc_provider.issuer,
        "client_id": client["client_id"],
        "client_secret": client["client_secret"],
        "scopes": ["openid", "email", "profile"],
        "extra_auth_params": {"prompt": "consent"},
        "allow_insecure_http": True,
        "allow_private_network": True,
        "response_mode": "form_post",
    }
    gw.config.update(
        routes=[{"path": "/", "upstream": upstream, "auth": "login"}],
        providers=[entry],
        sessions={"cookie_secure": True, "secrets": ["s" * 48]},
    )
    gw.start()
    methods: list[str] = []
    callback = f"{site}/_gateway/callback"
    page.on(
        "request",
        lambda r: methods.append(r.method) if r.url.startswith(callback) else None,
    )
    await page.goto(f"{site}/reports")
    assert page.url.startswith(oidc_provider.issuer)
    await page.fill("input[name=login]", "ivy")
    await page.fill("input[name=password]", "any-password")
    await page.click("button[type=submit]")
    await page.click("button[type=submit]")  # consent
    await page.wait_for_url(f"{site}/reports")
    echoed = await page.inner_text("body")
    assert '"X-Auth-Request-User": "ivy"' in echoed or '"X-Auth-Request-User":"ivy"' in echoed
    assert methods == ["POST"]
    cookies = {c["name"]: c for c in await page.context.cookies(site)}
    assert cookies["__Host-gateway_session"]["sameSite"] == "Lax"
    assert "__Host-gateway_session_login" not in cookies


async def test_form_post_checks_iss(
    gateway_factory: Any, oidc_provider: OidcProvider, upstream: str
) -> None:
    """RFC 9207 holds for posted responses too: another issuer's `iss` (a mix-up) is refused
    and no session is made, even with a genuine code and state."""
    gw, _ = start_login_gateway(gateway_factory, oidc_provider, upstream, provider=FORM_POST)
    async with jar() as session:
        fields = await authorization_response(
            session, f"{gw.url}/app", f"{gw.url}/_gateway/callback", "jack"
        )
        fields["iss"] = "https://attacker.example"
        back = await session.post(f"{gw.url}/_gateway/callback", data=fields, allow_redirects=False)
        assert back.status == 400
        after = await session.get(f"{gw.url}/app", headers={"Accept": "application/json"})
        assert after.status == 401
