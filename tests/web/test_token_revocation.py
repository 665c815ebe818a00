"""Sign-out that signs out: logout revokes the session's tokens at the provider (RFC 7009)."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import aiohttp
import pytest

from gateway.sessions.codec import SessionMeta
from gateway.types import SessionRecord, TokenSet
from tests.support.login import HTML_ACCEPT, http_login
from tests.support.op import OidcProvider, OPError
from tests.web.login_setup import start_login_gateway


async def _logout(session: aiohttp.ClientSession, base: str) -> aiohttp.ClientResponse:
    """Confirm the gateway's sign-out page, as a user does; returns the POST's answer."""
    async with session.get(f"{base}/_gateway/logout", headers={"Accept": HTML_ACCEPT}) as page:
        csrf = re.search(r'name="csrf" value="([^"]+)"', await page.text())
    assert csrf is not None
    return await session.post(
        f"{base}/_gateway/logout", data={"csrf": csrf.group(1)}, allow_redirects=False
    )


async def _until_inactive(op: OidcProvider, client: dict[str, Any], token: str) -> bool:
    """Poll the OP (revocation runs in the background after the logout answer)."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if not op.is_token_active(client, token):
            return True
        await asyncio.sleep(0.1)
    return False


async def test_logout_revokes_the_refresh_and_access_token_at_the_op(
    gateway_factory: Any, oidc_provider: OidcProvider, upstream: str
) -> None:
    """After a logout the OP no longer honours the session's refresh token (a refresh grant
    fails) nor its access token (introspection: inactive)."""
    routes = [{"path": "/", "upstream": upstream, "auth": "login", "pass_access_token": True}]
    gw, client = start_login_gateway(gateway_factory, oidc_provider, upstream, routes=routes)
    user = "frank-revoked"
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        landed = await http_login(session, f"{gw.url}/", user=user)
        access = (await landed.json())["headers"]["Authorization"].removeprefix("Bearer ")
        refresh = oidc_provider.refresh_tokens_of(user)[-1]
        assert oidc_provider.is_token_active(client, refresh)
        assert oidc_provider.is_token_active(client, access)
        answer = await _logout(session, gw.url)
        assert 302 == answer.status
    # The revocation runs in the background after the answer: wait for its log lines.
    for _ in range(300):
        if "revoked the session's access_token" in gw.log_text() or "revoking" in gw.log_text():
            break
        await asyncio.sleep(0.1)
    assert "revoked the session's refresh_token" in gw.log_text(), gw.log_text()[-3000:]
    assert await _until_inactive(oidc_provider, client, refresh)
    assert await _until_inactive(oidc_provider, client, access)
    with pytest.raises(OPError) as refused:
        oidc_provider.token_request(
            client, {"grant_type": "refresh_token", "refresh_token": refresh}
        )
    assert "invalid_grant" == refused.value.error


async def test_failed_revocation_is_logged_and_never_blocks_the_logout(
    gateway_factory: Any, oidc_provider: OidcProvider, upstream: str
) -> None:
    """A revocation endpoint that refuses (here: a wrong URL) is logged; the user is still
    signed out and the session cookie no longer works."""
    provider = {"endpoints": {"revocation": oidc_provider.url("/no-such-revocation")}}
    gw, _ = start_login_gateway(gateway_factory, oidc_provider, upstream, provider=provider)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        await http_login(session, f"{gw.url}/", user="gina")
        answer = await _logout(session, gw.url)
        assert 302 == answer.status
        async with session.get(
            f"{gw.url}/", headers={"Accept": "application/json"}, allow_redirects=False
        ) as after:
            assert 401 == after.status
    for _ in range(150):  # the revocation runs in the background: wait for its log line
        if "revoking the refresh_token" in gw.log_text():
            break
        await asyncio.sleep(0.1)
    assert re.search(r"revoking the refresh_token at \S+ failed|revoking the refresh_token at "
                     r"\S+: HTTP 404", gw.log_text())  # fmt: skip


async def test_admin_revocation_revokes_tokens_when_enabled(
    gateway_factory: Any, oidc_provider: OidcProvider, upstream: str
) -> None:
    """With sessions.revoke_tokens_on_admin_end, an admin revocation (no browser, no ticket)
    also revokes the session's refresh token at the OP."""
    admin_token = "admin-" + "r" * 40
    gw, client = start_login_gateway(
        gateway_factory, oidc_provider, upstream,
        sessions={"revoke_tokens_on_admin_end": True},
        extra={"admin": {"token": admin_token}},
    )  # fmt: skip
    user = "olaf-revoked"
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        await http_login(session, f"{gw.url}/", user=user)
    refresh = oidc_provider.refresh_tokens_of(user)[-1]
    assert oidc_provider.is_token_active(client, refresh)
    async with aiohttp.ClientSession() as http:
        internal = gw.config["metrics"]["listen"]  # admin lives on the internal listener
        revoked = await http.post(
            f"http://{internal}/_gateway/admin/sessions/revoke",
            json={"sub": user},
            headers={"Authorization": f"Bearer {admin_token}"},
        )
        assert (200, {"revoked": 1}) == (revoked.status, await revoked.json())
    assert await _until_inactive(oidc_provider, client, refresh)


def test_tokens_stay_out_of_the_server_readable_part_by_default() -> None:
    """Without the option, the part of a stored session readable with the server key
    alone holds no token; with it, the refresh and access token."""
    record = SessionRecord(
        provider="op", issuer="https://idp", subject="u", sid=None, claims={},
        tokens=TokenSet("at-1", refresh_token="rt-1"), created_at=0, last_seen=0, expires_at=1,
    )  # fmt: skip
    assert SessionMeta.of(record).tokens is None
    assert {"access_token": "at-1", "refresh_token": "rt-1"} == SessionMeta.of(
        record, with_tokens=True
    ).tokens
