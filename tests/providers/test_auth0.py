"""Auth0 profile against oidc-provider shaped like Auth0: issuer with a trailing slash,
custom claims under a namespace URL, `audience` on the authorization request, RP-initiated
logout at /oidc/logout."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp

from tests.providers.conftest import ProfiledOP
from tests.support.login import HTML_ACCEPT, http_login, op_logout
from tests.web.login_setup import start_login_gateway

ROLES = "https://example.com/roles"


async def test_auth0_namespaced_roles_audience_and_oidc_logout(
    gateway_factory: Any, profiled_op: ProfiledOP, upstream: str
) -> None:
    """With issuer `.../` and `claims.roles` naming the namespaced claim, an admin reaches
    /admin and a viewer gets 403 there but passes a rule written on the namespaced claim
    itself; the authorization request carries `audience`; sign-out goes to /oidc/logout
    with id_token_hint and the OP ends its session."""
    op = profiled_op("auth0", issuer_path="/")
    assert op.profile_issuer.endswith("/")
    routes = [
        {"path": "/admin", "upstream": upstream, "auth": "login",
         "policy": {"claims": [{"claim": "roles", "contains": "admin"}]}},
        {"path": "/", "upstream": upstream, "auth": "login",
         "policy": {"claims": [{"claim": ROLES, "one_of": ["viewer", "admin"]}]}},
    ]  # fmt: skip
    gw, _ = start_login_gateway(
        gateway_factory, op, upstream, routes=routes,
        provider={"issuer": op.profile_issuer, "profile": "auth0",
                  "claims": {"roles": ROLES},
                  "auth0": {"audience": "https://api.example.com"}},
    )  # fmt: skip
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        start = await s.get(f"{gw.url}/", allow_redirects=False, headers={"Accept": HTML_ACCEPT})
        assert parse_qs(urlsplit(start.headers["Location"]).query)["audience"] == [
            "https://api.example.com"
        ]
        landed = await http_login(s, f"{gw.url}/admin/", user="auth0-admin")
        assert landed.status == 200
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        landed = await http_login(s, f"{gw.url}/admin/", user="viewer")
        assert landed.status == 403
        assert (await s.get(f"{gw.url}/home")).status == 200
        page = await s.get(f"{gw.url}/_gateway/logout")
        csrf = (await page.text()).split('name="csrf" value="')[1].split('"')[0]
        out = await s.post(f"{gw.url}/_gateway/logout", data={"csrf": csrf}, allow_redirects=False)
        location = out.headers["Location"]
        assert location.startswith(op.profile_issuer + "oidc/logout?")
        assert parse_qs(urlsplit(location).query)["id_token_hint"]
        done = await op_logout(s, location)
        assert done.status == 200
        after = await s.get(
            f"{gw.url}/home", allow_redirects=False, headers={"Accept": HTML_ACCEPT}
        )
        assert after.status == 302
