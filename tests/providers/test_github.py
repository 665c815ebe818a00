"""GitHub profile: plain OAuth 2.0 (no id_token), identity from GitHub's REST API.

The test OP is the OAuth 2.0 authorization server (authorize and token endpoints; the
gateway sends no `openid` scope and no nonce). GitHub's API cannot run here:
tests/support/fake_apis.FakeGitHub serves /user, /user/emails, /user/orgs and /user/teams
locally with the response shapes recorded from GitHub's REST documentation, answering for
the OP's live access tokens only."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp

from tests.providers.conftest import ProfiledOP
from tests.support.fake_apis import FakeGitHub
from tests.support.login import HTML_ACCEPT, http_login
from tests.web.login_setup import start_login_gateway

ORGS = {"alice": ["acme"], "bob": ["acme", "friends"], "mallory": ["evil-corp"]}
TEAMS = {"alice": [("acme", "platform")], "mallory": [("evil-corp", "platform")]}


def github_gateway(gateway_factory: Any, op: Any, upstream: str) -> tuple[Any, dict[str, Any]]:
    routes = [
        {"path": "/platform", "upstream": upstream, "auth": "login",
         "policy": {"groups": ["acme/platform"]}},
        {"path": "/", "upstream": upstream, "auth": "login", "policy": {"groups": ["acme"]}},
    ]  # fmt: skip
    meta = op.discovery
    return start_login_gateway(
        gateway_factory, op, upstream, routes=routes,
        # issuer: the OP's, since it names itself in the callback (RFC 9207); GitHub does not
        provider={"issuer": op.issuer, "profile": "github", "discovery": False,
                  "scopes": ["read:user", "user:email", "read:org"],
                  "endpoints": {"authorization": meta["authorization_endpoint"],
                                "token": meta["token_endpoint"]},
                  "github": {"identity_from_api": True, "api_url": "http://placeholder.invalid",
                             "allowed_orgs": ["acme"]}},
        extra={"identity": {"headers": {"X-Auth-Request-User": "sub",
                                        "X-Auth-Request-Login": "preferred_username",
                                        "X-Auth-Request-Email": "email",
                                        "X-Auth-Request-Groups": "groups"}}},
    )  # fmt: skip


async def test_github_identity_orgs_and_teams_from_the_api(
    gateway_factory: Any, profiled_op: ProfiledOP, upstream: str
) -> None:
    """The authorization request has no openid and no nonce; alice (acme, team platform)
    signs in with her numeric id as subject and her primary verified e-mail, reaches /
    (org rule) and /platform (team rule); bob (acme, no team) reaches / but gets 403 on
    /platform; mallory (evil-corp only, even with a team named platform) is refused at sign-in."""
    op = profiled_op("github")
    gw, client = github_gateway(gateway_factory, op, upstream)
    async with FakeGitHub(op, client, ORGS, TEAMS) as api:
        gw.stop()
        gw.config["providers"][0]["github"]["api_url"] = api.url
        gw.start()
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
            start = await s.get(
                f"{gw.url}/", allow_redirects=False, headers={"Accept": HTML_ACCEPT}
            )
            query = parse_qs(urlsplit(start.headers["Location"]).query)
            assert "nonce" not in query
            assert "openid" not in query["scope"][0].split()
            landed = await http_login(s, f"{gw.url}/platform/x", user="alice")
            assert landed.status == 200
            headers = (await landed.json())["headers"]
            assert headers["X-Auth-Request-User"] == str(api.ids["alice"])
            assert headers["X-Auth-Request-Login"] == "alice"
            assert headers["X-Auth-Request-Email"] == "alice@users.example"
            assert "acme/platform" in headers["X-Auth-Request-Groups"]
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
            landed = await http_login(s, f"{gw.url}/home", user="bob")
            assert landed.status == 200
            team = await s.get(f"{gw.url}/platform/x", headers={"Accept": HTML_ACCEPT})
            assert team.status == 403
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
            landed = await http_login(s, f"{gw.url}/platform/x", user="mallory")
            assert landed.status == 400
            assert "not a member of an allowed organisation" in await landed.text()
            assert not any(c.key == "gateway_session" and c.value for c in s.cookie_jar)
        assert ("/user", "mallory") in api.calls


async def test_github_rotating_refresh_tokens_keep_the_session(
    gateway_factory: Any, profiled_op: ProfiledOP, upstream: str
) -> None:
    """GitHub rotates refresh tokens (each works once, reuse revokes the grant): with every
    request refreshing, three requests in a row still reach the upstream as alice, so each
    refresh used the newest token; the identity (no id_token) is kept across refreshes."""
    op = profiled_op("github")
    gw, client = github_gateway(gateway_factory, op, upstream)
    async with FakeGitHub(op, client, ORGS, TEAMS) as api:
        gw.stop()
        gw.config["providers"][0]["github"]["api_url"] = api.url
        # tokens live 3600 s: refresh as soon as a second has passed (as tests/web/test_refresh)
        gw.config["sessions"].update(refresh_before=3599, cache_ttl=0)
        gw.start()
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
            assert (await http_login(s, f"{gw.url}/home", user="alice")).status == 200
            for i in range(3):
                await asyncio.sleep(1.2)
                again = await s.get(f"{gw.url}/home/{i}", allow_redirects=False)
                assert again.status == 200, i
                assert (await again.json())["headers"]["X-Auth-Request-Login"] == "alice"
    assert gw.log_text().count('"message":"session refreshed"') == 3
