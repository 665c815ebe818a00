"""Login-flow attacks with real codes from the real provider: injection, logout redirects."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import aiohttp
from yarl import URL

from tests.support.login import HTML_ACCEPT, REDIRECTS, _submit, http_login
from tests.support.op import OidcProvider
from tests.web.login_setup import login_state, start_login_gateway


def jar() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def code_at_redirect(
    session: aiohttp.ClientSession, auth_url: str, stop: str, user: str = "mallory"
) -> str:
    """Sign in at the OP as `user` and return the redirect URL to `stop...` (not followed)."""
    trail: list[str] = []
    response = await session.get(auth_url, allow_redirects=False)
    for _ in range(10):
        while response.status in REDIRECTS:
            location = urljoin(str(response.url), response.headers["Location"])
            if location.startswith(stop):
                return location
            response = await session.get(
                URL(location, encoded=True),
                allow_redirects=False,
                headers={"Accept": HTML_ACCEPT},
            )
        submitted = await _submit(session, response, user, "pw", trail)
        assert submitted is not None, trail
        response = submitted
    raise AssertionError(f"no redirect to {stop}: {trail}")


async def test_code_issued_to_another_client_is_refused(
    gateway_factory: Any, oidc_provider: OidcProvider, upstream: str
) -> None:
    """A code the OP issued to another client, injected into our callback, makes no session."""
    gw, _ = start_login_gateway(gateway_factory, oidc_provider, upstream)
    callback = f"{gw.url}/_gateway/callback"
    other = oidc_provider.register_client(redirect_uris=[callback])
    async with jar() as attacker:
        query = urlencode(
            {
                "client_id": other["client_id"],
                "response_type": "code",
                "redirect_uri": callback,
                "scope": "openid",
                "state": "s",
                "nonce": "n",
            }
        )
        stolen = await code_at_redirect(
            attacker, f"{oidc_provider.discovery['authorization_endpoint']}?{query}", callback
        )
    code = parse_qs(urlsplit(stolen).query)["code"][0]
    async with jar() as victim:
        state = await login_state(victim, f"{gw.url}/")
        response = await victim.get(
            callback,
            params={"state": state, "code": code, "iss": oidc_provider.issuer},
            allow_redirects=False,
            headers={"Accept": HTML_ACCEPT},
        )
        assert 400 == response.status
        assert not any(c.key.endswith("gateway_session") and c.value for c in victim.cookie_jar)
    assert "code exchange failed" in gw.log_text()


async def test_logout_never_redirects_to_another_host(
    gateway_factory: Any, oidc_provider: OidcProvider, upstream: str
) -> None:
    """A logout asked to return to another site sends the provider our own logged-out page."""
    gw, _ = start_login_gateway(gateway_factory, oidc_provider, upstream)
    async with jar() as session:
        await http_login(session, f"{gw.url}/", user="rita")
        page = await (await session.get(f"{gw.url}/_gateway/logout")).text()
        csrf = page.split('name="csrf" value="')[1].split('"')[0]
        response = await session.post(
            f"{gw.url}/_gateway/logout",
            data={"csrf": csrf, "rd": "https://evil.test/"},
            allow_redirects=False,
        )
        target = response.headers["Location"]
    assert "evil.test" not in target
    post_logout = parse_qs(urlsplit(target).query)["post_logout_redirect_uri"][0]
    assert f"{gw.url}/_gateway/logged-out" == post_logout


async def test_a_stolen_state_does_not_burn_the_victims_login(
    gateway_factory: Any, oidc_provider: OidcProvider, upstream: str
) -> None:
    """An attacker who learns a victim's state and calls the callback with it (no binding cookie,
    or the binding of an own pending login) is refused, and the victim's own callback with
    that state still signs the victim in."""
    gw, _ = start_login_gateway(gateway_factory, oidc_provider, upstream)
    callback = f"{gw.url}/_gateway/callback"
    async with jar() as victim:
        start = await victim.get(
            f"{gw.url}/inbox", allow_redirects=False, headers={"Accept": HTML_ACCEPT}
        )
        auth_url = start.headers["Location"]
        state = parse_qs(urlsplit(auth_url).query)["state"][0]
        async with jar() as attacker:
            for _ in range(2):  # first without cookies, then with a pending login of its own
                burn = await attacker.get(
                    callback,
                    params={"state": state, "code": "guessed", "iss": oidc_provider.issuer},
                    allow_redirects=False,
                    headers={"Accept": HTML_ACCEPT},
                )
                assert burn.status == 400
                assert await login_state(attacker, f"{gw.url}/") != state
        back = await code_at_redirect(victim, auth_url, callback, user="victor")
        assert parse_qs(urlsplit(back).query)["state"] == [state]
        done = await victim.get(
            URL(back, encoded=True), allow_redirects=False, headers={"Accept": HTML_ACCEPT}
        )
        assert done.status == 302, await done.text()
        assert done.headers["Location"] == f"{gw.url}/inbox"
        async with victim.get(f"{gw.url}/inbox", headers={"Accept": "application/json"}) as page:
            assert page.status == 200
            assert (await page.json())["headers"]["X-Auth-Request-User"] == "victor"
