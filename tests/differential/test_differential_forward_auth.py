"""Forward-auth mode: every attack, raw, to real nginx and real Caddy running the snippets of
docs/forward-auth.md in front of real upstreams, each asking the gateway's /_gateway/auth.

One site per virtual host (127.0.0.1 and www.example.test: the main app; admin.example.test:
a separate admin app). Judged by what the app behind the proxy served and read.
"""

from __future__ import annotations

import aiohttp
import pytest

from tests.differential.attacks import (
    ADMIN,
    ATTACKS,
    Attack,
    problems,
    send,
    verdict,
)
from tests.differential.conftest import FORWARD_AUTH_KINDS, ForwardAuthSetup
from tests.support.gateway import GatewayProcess
from tests.support.login import http_login

PROXIES = ("nginx", "caddy")


@pytest.mark.parametrize("proxy", PROXIES)
@pytest.mark.parametrize("upstream", FORWARD_AUTH_KINDS)
@pytest.mark.parametrize("attack", ATTACKS, ids=lambda a: a.id)
async def test_attack_through_forward_auth_reaches_nothing_protected(
    attack: Attack,
    upstream: str,
    proxy: str,
    forward_auth: tuple[ForwardAuthSetup, GatewayProcess],
) -> None:
    """Without credentials, the proxy (on the gateway's word) refuses, or the app behind it
    serves only a public resource with the request's method and no client-chosen identity."""
    setup, _ = forward_auth
    reply = await send(setup.ports[(proxy, upstream)], attack.request())
    assert not problems(attack, reply), verdict(attack, reply, f"{proxy} -> {upstream}")


@pytest.mark.parametrize("proxy", PROXIES)
@pytest.mark.parametrize("upstream", FORWARD_AUTH_KINDS)
async def test_signed_in_user_reaches_admin_through_forward_auth(
    upstream: str, proxy: str, forward_auth: tuple[ForwardAuthSetup, GatewayProcess]
) -> None:
    """Positive control: after a real login through the proxy, the admin path and the admin
    vhost are served, and the app reads the signed-in user, not the forged one."""
    setup, _ = forward_auth
    base = setup.url(proxy, upstream)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        landed = await http_login(session, f"{base}/admin/secret", user="dave")
        assert landed.status == 200
        cookie = "; ".join(
            f"{c.key}={c.value}" for c in session.cookie_jar if c.key.endswith("gateway_session")
        )
    headers = (f"Cookie: {cookie}", "X-Auth-Request-User: mallory", "X-Forwarded-User: mallory",
               "Remote-User: mallory", "X-Api-User: mallory")  # fmt: skip
    for attack, resource in (
        (Attack("admin-path", "/admin/secret", headers=headers), "admin"),
        (Attack("admin-vhost", "/dashboard", host=ADMIN, headers=headers), "admin-host"),
    ):
        reply = await send(setup.ports[(proxy, upstream)], attack.request())
        assert reply.probe is not None, (attack.id, reply.status, reply.body[:300])
        assert resource == reply.probe["resource"], attack.id
        assert "dave" == reply.probe["read"].get("X-Auth-Request-User"), reply.probe
        assert not [v for v in reply.probe["read"].values() if "mallory" in v], reply.probe
