"""Okta profile against oidc-provider shaped like Okta: groups only with the `groups` scope;
the org authorization server (issuer https://<org>.okta.com, here the OP's root issuer)
versus a custom one (issuer .../oauth2/<id>) for bearer routes."""

from __future__ import annotations

from typing import Any

import aiohttp

from tests.providers.conftest import ProfiledOP
from tests.support.login import HTML_ACCEPT, http_login
from tests.web.login_setup import start_login_gateway

API = "urn:test:api"


async def test_okta_groups_need_the_groups_scope(
    gateway_factory: Any, profiled_op: ProfiledOP, upstream: str
) -> None:
    """With the `groups` scope, alice (admins) passes a groups policy and bob gets 403;
    without it Okta sends no groups and the same policy refuses alice too."""
    op = profiled_op("okta")
    routes = [{"path": "/", "upstream": upstream, "auth": "login",
               "policy": {"groups": ["admins"]}}]  # fmt: skip
    with_groups, _ = start_login_gateway(
        gateway_factory, op, upstream, routes=routes, name="groups",
        provider={"issuer": op.profile_issuer, "profile": "okta"},
    )  # fmt: skip
    without, _ = start_login_gateway(
        gateway_factory, op, upstream, routes=routes, name="nogroups",
        provider={"issuer": op.profile_issuer, "profile": "okta",
                  "scopes": ["openid", "email", "profile"]},
    )  # fmt: skip
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        landed = await http_login(s, f"{with_groups.url}/x", user="alice")
        assert landed.status == 200
        assert "admins" in (await landed.json())["headers"]["X-Auth-Request-Groups"]
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        assert (await http_login(s, f"{with_groups.url}/x", user="bob")).status == 403
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        assert (await http_login(s, f"{without.url}/x", user="alice")).status == 403


def bearer_gateway(factory: Any, op: Any, upstream: str, name: str, **issuer: Any) -> Any:
    routes = [{"path": "/", "upstream": upstream, "auth": "bearer"}]
    trusted = {"issuer": op.profile_issuer, "audiences": [API], "allow_insecure_http": True,
               "allow_private_network": True, **issuer}  # fmt: skip
    return factory({"routes": routes, "bearer": {"issuers": [trusted]}}, name=name)


async def test_okta_org_server_tokens_are_only_ever_introspected(
    gateway_factory: Any, profiled_op: ProfiledOP, upstream: str
) -> None:
    """Org server: an opaque token is introspected and passes; a JWT the server will not
    introspect is refused (401) under profile okta, where the generic profile would fall
    back to checking it locally and let it through; a revoked token is refused."""
    op = profiled_op("okta")
    resource_server = op.register_client()
    machine = op.register_client()
    introspection = {"client_id": resource_server["client_id"],
                     "client_secret": resource_server["client_secret"], "mode": "all"}  # fmt: skip
    okta = bearer_gateway(gateway_factory, op, upstream, "okta", profile="okta",
                          introspection=introspection)  # fmt: skip
    generic = bearer_gateway(gateway_factory, op, upstream, "generic",
                             introspection=introspection)  # fmt: skip
    opaque = op.client_credentials_token(machine, resource="urn:test:api-opaque")
    jwt_token = op.client_credentials_token(machine, resource=API)
    async with aiohttp.ClientSession() as s:
        passed = await s.get(f"{okta.url}/a", headers={"Authorization": f"Bearer {opaque}"})
        assert passed.status == 200
        assert (await passed.json())["path"] == "/a"
        refused = await s.get(f"{okta.url}/a", headers={"Authorization": f"Bearer {jwt_token}"})
        assert refused.status == 401
        local = await s.get(f"{generic.url}/a", headers={"Authorization": f"Bearer {jwt_token}"})
        assert local.status == 200
        op.revoke(machine, opaque)
        other = op.client_credentials_token(machine, resource="urn:test:api-opaque")
        op.revoke(machine, other)
        gone = await s.get(f"{okta.url}/b", headers={"Authorization": f"Bearer {other}"})
        assert gone.status == 401


async def test_okta_custom_server_tokens_are_validated_locally(
    gateway_factory: Any, profiled_op: ProfiledOP, upstream: str
) -> None:
    """A custom authorization server (issuer .../oauth2/default) signs access tokens for
    resource servers: profile okta validates them locally, no introspection configured."""
    op = profiled_op("okta", issuer_path="/oauth2/default")
    machine = op.register_client()
    gw = bearer_gateway(gateway_factory, op, upstream, "custom", profile="okta")
    token = op.client_credentials_token(machine, resource=API)
    async with aiohttp.ClientSession() as s:
        ok = await s.get(f"{gw.url}/a", headers={"Authorization": f"Bearer {token}"})
        assert ok.status == 200
        bad = await s.get(f"{gw.url}/a", headers={"Authorization": f"Bearer {token}x"})
        assert bad.status == 401
        page = await s.get(f"{gw.url}/a", headers={"Accept": HTML_ACCEPT})
        assert page.status == 401
