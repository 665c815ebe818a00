"""Claims stay fresh: a refresh re-reads them from the OP; an expired access token is never
forwarded, and a session that cannot renew it ends."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import aiohttp

from tests.support.login import http_login
from tests.support.op import OidcProvider
from tests.web.login_setup import start_login_gateway

JSON = {"Accept": "application/json"}
# The OP's access tokens live 3600 s: refresh as soon as a second has passed.
REFRESH_BEFORE = 3599


async def test_group_removed_at_the_op_is_lost_at_the_next_refresh(
    gateway_factory: Any, oidc_provider: OidcProvider, upstream: str
) -> None:
    """A user removed from `admins` at the OP, between login and refresh, is refused the
    admins-only route after the refresh (no new login); the upstream sees the new groups."""
    user = f"carol-{secrets.token_hex(4)}"
    oidc_provider.set_groups(user, ["users", "admins"])
    routes: list[dict[str, Any]] = [
        {"path": "/admin", "upstream": upstream, "auth": "login",
         "policy": {"groups": ["admins"]}},
        {"path": "/", "upstream": upstream, "auth": "login"},
    ]  # fmt: skip
    gw, _ = start_login_gateway(
        gateway_factory,
        oidc_provider,
        upstream,
        routes=routes,
        sessions={"refresh_before": REFRESH_BEFORE, "cache_ttl": 0},
    )
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        landed = await http_login(session, f"{gw.url}/admin/panel", user=user)
        assert 200 == landed.status
        assert "users,admins" == (await landed.json())["headers"]["X-Auth-Request-Groups"]
        oidc_provider.set_groups(user, ["users"])
        await asyncio.sleep(1.2)
        async with session.get(f"{gw.url}/admin/panel", headers=JSON) as refused:
            assert 403 == refused.status
            assert "X-Auth-Request-Groups" not in await refused.text()
        async with session.get(f"{gw.url}/home", headers=JSON) as home:
            assert 200 == home.status
            assert "users" == (await home.json())["headers"]["X-Auth-Request-Groups"]
    log = gw.log_text()
    assert "session refreshed" in log
    assert "not in any of the route's groups" in log


SHORT_TOKENS = {"grant_types": ["authorization_code"], "test_access_token_ttl": 2}
NO_OFFLINE = {"scopes": ["openid", "email", "profile", "groups"]}


async def test_session_without_refresh_token_ends_when_its_access_token_expires(
    gateway_factory: Any, oidc_provider: OidcProvider, upstream: str
) -> None:
    """No refresh token, access token expired: the session ends (401), and the upstream is
    not reached with it."""
    gw, _ = start_login_gateway(
        gateway_factory, oidc_provider, upstream,
        client_metadata=SHORT_TOKENS, provider=NO_OFFLINE,
        routes=[{"path": "/", "upstream": upstream, "auth": "login", "pass_access_token": True}],
    )  # fmt: skip
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        landed = await http_login(session, f"{gw.url}/", user="dave")
        assert (await landed.json())["headers"]["Authorization"].startswith("Bearer ")
        await asyncio.sleep(2.5)
        async with session.get(f"{gw.url}/", headers=JSON) as after:
            assert 401 == after.status
            assert "raw_path" not in await after.text()
    assert "its access token expired and it cannot be refreshed" in gw.log_text()


async def test_expired_access_token_is_never_forwarded(
    gateway_factory: Any, oidc_provider: OidcProvider, upstream: str
) -> None:
    """With end_with_access_token off the session lives on, but the upstream no longer
    receives the expired access token."""
    gw, _ = start_login_gateway(
        gateway_factory, oidc_provider, upstream,
        client_metadata=SHORT_TOKENS, provider=NO_OFFLINE,
        sessions={"end_with_access_token": False},
        routes=[{"path": "/", "upstream": upstream, "auth": "login", "pass_access_token": True}],
    )  # fmt: skip
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        landed = await http_login(session, f"{gw.url}/", user="erin")
        token = (await landed.json())["headers"]["Authorization"]
        await asyncio.sleep(2.5)
        async with session.get(f"{gw.url}/", headers=JSON) as after:
            assert 200 == after.status
            seen = (await after.json())["headers"]
    assert "Authorization" not in seen
    assert token not in str(seen)
    assert "erin" == seen["X-Auth-Request-User"]


async def test_claims_refresh_interval_rereads_userinfo_without_a_refresh_token(
    gateway_factory: Any, oidc_provider: OidcProvider, upstream: str
) -> None:
    """A session with no refresh token re-reads userinfo every claims_refresh_interval: a
    group removed at the OP is lost (403 on the admins route) without a new login, even
    though the stored id_token still lists it."""
    user = f"lena-{secrets.token_hex(4)}"
    oidc_provider.set_groups(user, ["users", "admins"])
    routes: list[dict[str, Any]] = [
        {"path": "/admin", "upstream": upstream, "auth": "login",
         "policy": {"groups": ["admins"]}},
        {"path": "/", "upstream": upstream, "auth": "login"},
    ]  # fmt: skip
    gw, _ = start_login_gateway(
        gateway_factory, oidc_provider, upstream, routes=routes,
        client_metadata={"grant_types": ["authorization_code"]},
        provider={**NO_OFFLINE, "claims_refresh_interval": 1},
        sessions={"cache_ttl": 0},
    )  # fmt: skip
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        landed = await http_login(session, f"{gw.url}/admin/", user=user)
        assert 200 == landed.status
        oidc_provider.set_groups(user, ["users"])
        await asyncio.sleep(1.2)
        async with session.get(f"{gw.url}/admin/", headers=JSON) as refused:
            assert 403 == refused.status
        async with session.get(f"{gw.url}/home", headers=JSON) as home:
            assert "users" == (await home.json())["headers"]["X-Auth-Request-Groups"]
    log = gw.log_text()
    assert "session claims re-read" in log
    assert "session refreshed" not in log
