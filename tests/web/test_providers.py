"""Several providers: the sign-in page, pinned routes, and mix-up defence (RFC 9207)."""

from __future__ import annotations

from typing import Any

import aiohttp

from tests.support.login import HTML_ACCEPT, http_login
from tests.support.logout_tokens import logout_claims, sign
from tests.support.op import OidcProvider
from tests.web.login_setup import login_state, start_login_gateway


def two_providers(gw_url: str, op: OidcProvider, other: OidcProvider) -> list[dict[str, Any]]:
    entries = []
    for name, provider in (("first", op), ("second", other)):
        client = provider.register_client(
            redirect_uris=[f"{gw_url}/_gateway/callback"],
            grant_types=["authorization_code"],
        )
        entries.append(
            {
                "name": name,
                "label": f"Sign in with {name.title()}",
                "issuer": provider.issuer,
                "client_id": client["client_id"],
                "client_secret": client["client_secret"],
                "allow_insecure_http": True,
                "allow_private_network": True,
            }
        )
    return entries


async def test_sign_in_page_lists_providers_and_pinned_route_goes_straight(
    gateway_factory: Any,
    oidc_provider: OidcProvider,
    fresh_oidc_provider: OidcProvider,
    upstream: str,
) -> None:
    """Unpinned routes show a page of labels; a pinned route goes to its provider; both log in."""
    gw = gateway_factory({"routes": []}, start=False)
    gw.config.update(
        routes=[
            {"path": "/", "upstream": upstream, "auth": "login"},
            {"path": "/pinned", "upstream": upstream, "auth": "login", "provider": "second"},
        ],
        providers=two_providers(gw.url, oidc_provider, fresh_oidc_provider),
        sessions={"cookie_secure": False, "secrets": ["k" * 40]},
    )
    gw.start()
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        nav = await session.get(f"{gw.url}/app", headers={"Accept": HTML_ACCEPT})
        page = await nav.text()
        assert "Sign in with First" in page
        assert "Sign in with Second" in page
        pinned = await session.get(
            f"{gw.url}/pinned/x", allow_redirects=False, headers={"Accept": HTML_ACCEPT}
        )
        assert pinned.headers["Location"].startswith(fresh_oidc_provider.issuer)
        landed = await http_login(session, f"{gw.url}/pinned/x", user="kim")
        assert (await landed.json())["headers"]["X-Auth-Request-User"] == "kim"


async def test_callback_naming_another_issuer_is_refused(
    gateway_factory: Any,
    oidc_provider: OidcProvider,
    fresh_oidc_provider: OidcProvider,
    upstream: str,
) -> None:
    """A response whose `iss` is another provider's (mix-up) is refused, as is code+error."""
    gw, _ = start_login_gateway(gateway_factory, oidc_provider, upstream)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        state = await login_state(session, f"{gw.url}/")
        both = await session.get(
            f"{gw.url}/_gateway/callback",
            params={"state": state, "code": "c", "error": "access_denied"},
            allow_redirects=False,
        )
        assert both.status == 400
        state = await login_state(session, f"{gw.url}/")
        mixed = await session.get(
            f"{gw.url}/_gateway/callback",
            params={"state": state, "code": "c", "iss": fresh_oidc_provider.issuer},
            allow_redirects=False,
        )
        assert mixed.status == 400
        assert not any(c.key.endswith("gateway_session") and c.value for c in session.cookie_jar)
    assert "mix-up" in gw.log_text()


async def test_provider_error_is_a_clear_page(
    gateway_factory: Any, oidc_provider: OidcProvider, upstream: str
) -> None:
    """error=access_denied from the provider ends in a page that says so, and a log line."""
    gw, _ = start_login_gateway(gateway_factory, oidc_provider, upstream)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        state = await login_state(session, f"{gw.url}/")
        denied = await session.get(
            f"{gw.url}/_gateway/callback",
            params={"state": state, "error": "access_denied", "iss": oidc_provider.issuer},
            headers={"Accept": HTML_ACCEPT},
        )
        assert denied.status == 400
        assert "did not allow it" in await denied.text()
    assert "refused the login: access_denied" in gw.log_text()


async def test_backchannel_logout_per_provider_path(
    gateway_factory: Any,
    oidc_provider: OidcProvider,
    fresh_oidc_provider: OidcProvider,
    upstream: str,
) -> None:
    """With two providers, /backchannel-logout/<name> takes only that provider's tokens."""
    gw = gateway_factory({"routes": []}, start=False)
    providers = two_providers(gw.url, oidc_provider, fresh_oidc_provider)
    gw.config.update(
        routes=[{"path": "/", "upstream": upstream, "auth": "login", "provider": "second"}],
        providers=providers,
        sessions={"cookie_secure": False, "secrets": ["k" * 40]},
    )
    gw.start()
    second_client = providers[1]["client_id"]
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        await http_login(session, f"{gw.url}/", user="sam")
        # These clients do not ask for sid in tokens: the logout names the user (sub).
        claims = logout_claims(fresh_oidc_provider, second_client, sub="sam", sid=None)
        token = sign(fresh_oidc_provider, claims)
        base = f"{gw.url}/_gateway/backchannel-logout"
        wrong = await session.post(f"{base}/first", data={"logout_token": token})
        assert 400 == wrong.status  # the first provider's endpoint refuses the second's token
        still = await session.get(f"{gw.url}/", headers={"Accept": "application/json"})
        assert 200 == still.status
        right = await session.post(f"{base}/second", data={"logout_token": token})
        assert 200 == right.status
        gone = await session.get(f"{gw.url}/", headers={"Accept": "application/json"})
        assert 401 == gone.status
