"""Google profile against oidc-provider shaped like Google: `hd` only for Workspace
accounts, no end_session_endpoint, refresh tokens only with access_type=offline and
prompt=consent. (The scheme-less issuer `accounts.google.com` cannot be produced by the
test OP, which signs its own issuer: tests/providers/test_profiles.py covers it.)"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp

from tests.providers.conftest import ProfiledOP
from tests.support.login import HTML_ACCEPT, http_login
from tests.web.login_setup import start_login_gateway


def google_gateway(gateway_factory: Any, op: Any, upstream: str) -> Any:
    routes = [{"path": "/", "upstream": upstream, "auth": "login",
               "policy": {"email_domains": ["corp.example"]}}]  # fmt: skip
    gw, _ = start_login_gateway(
        gateway_factory, op, upstream, routes=routes,
        provider={"issuer": op.profile_issuer, "profile": "google",
                  "google": {"hosted_domains": ["corp.example"]},
                  "extra_auth_params": {}},
    )  # fmt: skip
    return gw


async def test_google_hd_requested_then_checked_in_the_claim(
    gateway_factory: Any, profiled_op: ProfiledOP, upstream: str
) -> None:
    """The authorization request asks for hd=corp.example and offline access; a Workspace
    user of corp.example gets in. A user whose token says hd other.example (the request's hd
    removed or changed on the way) and a personal account without hd are refused, with no
    session and nothing from the upstream."""
    op = profiled_op("google", env={"OP_HD": "corp.example"})
    gw = google_gateway(gateway_factory, op, upstream)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        start = await s.get(f"{gw.url}/x", allow_redirects=False, headers={"Accept": HTML_ACCEPT})
        query = parse_qs(urlsplit(start.headers["Location"]).query)
        assert query["hd"] == ["corp.example"]
        assert query["access_type"] == ["offline"]
        assert query["prompt"] == ["consent"]
        landed = await http_login(s, f"{gw.url}/x", user="worker")
        assert landed.status == 200
        assert (await landed.json())["headers"]["X-Auth-Request-Email"] == "worker@corp.example"
    for user in ("outsider", "personal"):
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
            landed = await http_login(s, f"{gw.url}/x", user=user)
            assert landed.status == 400, user
            assert "not in an allowed organisation" in await landed.text()
            assert not any(c.key == "gateway_session" and c.value for c in s.cookie_jar)


async def test_google_logout_is_local_only(
    gateway_factory: Any, profiled_op: ProfiledOP, upstream: str
) -> None:
    """Google has no end_session_endpoint: sign-out ends the gateway session and lands on
    the gateway's own signed-out page, and the old cookie no longer reaches the upstream."""
    op = profiled_op("google", env={"OP_HD": "corp.example"})
    gw = google_gateway(gateway_factory, op, upstream)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        await http_login(s, f"{gw.url}/x", user="worker")
        page = await s.get(f"{gw.url}/_gateway/logout")
        csrf = (await page.text()).split('name="csrf" value="')[1].split('"')[0]
        out = await s.post(f"{gw.url}/_gateway/logout", data={"csrf": csrf}, allow_redirects=False)
        assert out.headers["Location"].startswith(f"{gw.url}/_gateway/logged-out")
        after = await s.get(f"{gw.url}/x", allow_redirects=False, headers={"Accept": HTML_ACCEPT})
        assert after.status == 302
        assert after.headers["Location"].startswith(op.issuer)
