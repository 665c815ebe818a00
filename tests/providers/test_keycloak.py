"""Keycloak profile against oidc-provider shaped like Keycloak: realm issuer under
/realms/<realm>, roles nested in realm_access / resource_access, RP-initiated logout."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp

from tests.providers.conftest import ProfiledOP
from tests.support.login import HTML_ACCEPT, http_login
from tests.web.login_setup import start_login_gateway


def keycloak_gateway(gateway_factory: Any, op: Any, upstream: str, **provider: Any) -> Any:
    routes = [
        {"path": "/admin", "upstream": upstream, "auth": "login",
         "policy": {"claims": [{"claim": "roles", "contains": "admin"}]}},
        {"path": "/app", "upstream": upstream, "auth": "login",
         "policy": {"claims": [
             {"claim": "resource_access.gateway.roles", "contains": "app-user"}]}},
    ]  # fmt: skip
    gw, _ = start_login_gateway(
        gateway_factory, op, upstream, routes=routes,
        provider={"issuer": op.profile_issuer, "profile": "keycloak", **provider},
        extra={"identity": {"headers": {"X-Auth-Request-User": "sub",
                                        "X-Auth-Request-Roles": "roles"}}},
    )  # fmt: skip
    return gw


async def test_keycloak_realm_roles_decide_and_client_roles_by_path(
    gateway_factory: Any, profiled_op: ProfiledOP, upstream: str
) -> None:
    """Realm roles (realm_access.roles) are `roles` by default: a realm admin reaches /admin
    and the upstream sees the role; a user without it gets 403 there, and a client-role rule
    read by dotted path lets only the holder of resource_access.gateway.roles app-user in."""
    op = profiled_op("keycloak", issuer_path="/realms/test")
    gw = keycloak_gateway(gateway_factory, op, upstream)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as admin:
        landed = await http_login(admin, f"{gw.url}/admin/x", user="kc-admin")
        assert landed.status == 200
        echo = await landed.json()
        assert echo["path"] == "/admin/x"
        assert "admin" in echo["headers"]["X-Auth-Request-Roles"]
        app = await admin.get(f"{gw.url}/app/", headers={"Accept": HTML_ACCEPT})
        assert app.status == 403  # kc-admin holds app-admin, not app-user
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as user:
        refused = await http_login(user, f"{gw.url}/admin/x", user="kc-user")
        assert refused.status == 403
        app = await user.get(f"{gw.url}/app/", headers={"Accept": HTML_ACCEPT})
        assert app.status == 200
        assert (await app.json())["headers"]["X-Auth-Request-User"] == "kc-user"


async def test_keycloak_client_roles_configured_as_roles_path(
    gateway_factory: Any, profiled_op: ProfiledOP, upstream: str
) -> None:
    """`claims.roles: /resource_access/gateway/roles` (JSON Pointer) makes the client roles
    the `roles` policies see, instead of the realm roles: the realm admin (client role
    app-admin) no longer passes the realm-role rule on /admin, nor the app-user rule."""
    op = profiled_op("keycloak", issuer_path="/realms/test")
    gw = keycloak_gateway(gateway_factory, op, upstream,
                          claims={"roles": "/resource_access/gateway/roles"})  # fmt: skip
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as user:
        landed = await http_login(user, f"{gw.url}/admin/x", user="kc-user")
        assert landed.status == 403
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as admin:
        landed = await http_login(admin, f"{gw.url}/app/", user="kc-admin")
        assert landed.status == 403  # app-user is not among kc-admin's client roles
        realm_admin = await admin.get(f"{gw.url}/admin/x")
        assert realm_admin.status == 403  # roles are now [app-admin], not the realm's admin


async def test_keycloak_logout_goes_to_the_realm_with_id_token_hint(
    gateway_factory: Any, profiled_op: ProfiledOP, upstream: str
) -> None:
    """Sign-out sends the browser to the realm's end_session endpoint with id_token_hint and
    client_id (Keycloak needs one of them), and the session no longer reaches the upstream."""
    op = profiled_op("keycloak", issuer_path="/realms/test")
    gw = keycloak_gateway(gateway_factory, op, upstream)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        await http_login(s, f"{gw.url}/app/", user="kc-user")
        page = await s.get(f"{gw.url}/_gateway/logout")
        csrf = (await page.text()).split('name="csrf" value="')[1].split('"')[0]
        out = await s.post(f"{gw.url}/_gateway/logout", data={"csrf": csrf}, allow_redirects=False)
        location = out.headers["Location"]
        assert location.startswith(op.endpoint("end_session"))
        query = parse_qs(urlsplit(location).query)
        assert query["id_token_hint"]
        assert query["client_id"]
        after = await s.get(
            f"{gw.url}/app/", allow_redirects=False, headers={"Accept": HTML_ACCEPT}
        )
        assert after.status == 302  # back to sign-in, not the upstream


async def test_keycloak_bearer_tokens_read_roles_from_the_same_path(
    gateway_factory: Any, profiled_op: ProfiledOP, upstream: str
) -> None:
    """A Keycloak access token (JWT, realm_access.roles ['service']) passes a bearer route's
    `roles` rule when the trusted issuer has profile keycloak; the same token under the
    generic profile has no `roles` and gets 403: the path, not the token, made the difference."""
    op = profiled_op("keycloak", issuer_path="/realms/test")
    machine = op.register_client()
    token = op.client_credentials_token(machine)
    routes = [{"path": "/", "upstream": upstream, "auth": "bearer",
               "policy": {"claims": [{"claim": "roles", "contains": "service"}]}}]  # fmt: skip
    issuer = {"issuer": op.profile_issuer, "audiences": ["urn:test:api"],
              "allow_insecure_http": True, "allow_private_network": True}  # fmt: skip
    profiled = gateway_factory({"routes": routes, "bearer": {"issuers": [
        {**issuer, "profile": "keycloak"}]}}, name="kc")  # fmt: skip
    generic = gateway_factory({"routes": routes, "bearer": {"issuers": [issuer]}}, name="plain")
    async with aiohttp.ClientSession() as s:
        ok = await s.get(f"{profiled.url}/api", headers={"Authorization": f"Bearer {token}"})
        assert ok.status == 200
        assert (await ok.json())["path"] == "/api"
        refused = await s.get(f"{generic.url}/api", headers={"Authorization": f"Bearer {token}"})
        assert refused.status == 403
