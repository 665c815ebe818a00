"""Positive controls: with real credentials each upstream IS served its protected resource
and reads the gateway's identity, so a gateway that refused everything could not pass."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from tests.differential.attacks import ADMIN, Attack, send
from tests.differential.conftest import API
from tests.support.gateway import GatewayProcess
from tests.support.login import http_login
from tests.support.op import OidcProvider
from tests.support.real_upstreams import PROBE_KINDS


async def session_cookie(gw: GatewayProcess, user: str) -> str:
    """A real login at the real OP through this gateway; the session cookie as a header."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        landed = await http_login(session, f"{gw.url}/admin/secret", user=user)
        assert landed.status == 200
        return "; ".join(
            f"{c.key}={c.value}" for c in session.cookie_jar if c.key.endswith("gateway_session")
        )


@pytest.mark.parametrize("upstream", list(PROBE_KINDS))
async def test_signed_in_user_reaches_admin_with_identity(
    upstream: str, proxy_gateways: dict[str, GatewayProcess]
) -> None:
    """After a real login, /admin/secret and the admin vhost are served by the upstream,
    which reads the signed-in user (and nothing the client forged) as the identity."""
    gw = proxy_gateways[upstream]
    cookie = f"Cookie: {await session_cookie(gw, 'carol')}"
    forged = "X-Auth-Request-User: mallory"
    others = ("X-Api-User: mallory", "X-Forwarded-User: mallory", "Remote-User: mallory")
    for attack, resource in (
        (Attack("admin-path", "/admin/secret", headers=(cookie, forged, *others)), "admin"),
        (Attack("admin-vhost", "/dashboard", host=ADMIN, headers=(cookie, forged)), "admin-host"),
    ):
        reply = await send(gw.port, attack.request())
        assert reply.probe is not None, (attack.id, reply.status, reply.body[:300])
        assert (resource, "GET") == (reply.probe["resource"], reply.probe["method"]), attack.id
        assert "carol" == reply.probe["read"].get("X-Auth-Request-User"), reply.probe
        assert not [v for v in reply.probe["read"].values() if "mallory" in v], reply.probe
    public = await send(gw.port, Attack("read-only", "/ro/x", headers=(cookie,)).request())
    assert public.probe is not None
    assert ("public", "GET") == (
        public.probe["resource"],
        public.probe["method"],
    )


@pytest.mark.parametrize("upstream", list(PROBE_KINDS))
async def test_bearer_caller_reaches_api_with_its_identity(
    upstream: str,
    proxy_gateways: dict[str, GatewayProcess],
    oidc_provider: OidcProvider,
    resource_server: dict[str, Any],
) -> None:
    """A real client_credentials token opens /api/ and the upstream reads the route's own
    identity header (X-Api-User) as the token's subject, not the client's forged one."""
    token = oidc_provider.client_credentials_token(resource_server, resource=API)
    forged = ("X-Api-User: mallory", "X-Auth-Request-User: mallory", "X-Forwarded-User: mallory")
    authorization = f"Authorization: Bearer {token}"
    attack = Attack("api", "/api/x", method="POST", headers=(authorization, *forged))
    reply = await send(proxy_gateways[upstream].port, attack.request())
    assert reply.probe is not None, (reply.status, reply.body[:300])
    assert ("POST", resource_server["client_id"]) == (
        reply.probe["method"],
        reply.probe["read"].get("X-Api-User"),
    )
    assert not [v for v in reply.probe["read"].values() if "mallory" in v], reply.probe


@pytest.mark.parametrize("upstream", list(PROBE_KINDS))
async def test_user_named_with_edge_spaces_is_not_read_as_another_user(
    upstream: str, proxy_gateways: dict[str, GatewayProcess]
) -> None:
    """A user who signs up as " admin " is signed in as such, but the upstream's header
    parser (which trims) must not read the identity as "admin"."""
    gw = proxy_gateways[upstream]
    cookie = f"Cookie: {await session_cookie(gw, ' admin ')}"
    reply = await send(gw.port, Attack("admin-path", "/admin/secret", headers=(cookie,)).request())
    assert reply.probe is not None, (reply.status, reply.body[:300])
    assert "admin" == reply.probe["resource"]
    read = reply.probe["read"].get("X-Auth-Request-User")
    assert read is not None
    assert "admin" != read.strip()
