"""Entra ID profile against oidc-provider shaped like Entra ID v2.0: the multi-tenant
discovery document at /organizations/v2.0 names the issuer .../{tenantid}/v2.0, tokens carry
their tenant in `iss` and `tid`, app roles in `roles`, group ids in `groups` or an overage
marker, and no `email` for some users.

Microsoft Graph cannot run here: tests/support/fake_apis.FakeGraph serves getMemberObjects
locally with the response shapes recorded from Graph's documentation."""

from __future__ import annotations

from typing import Any

import aiohttp

from tests.providers.conftest import ProfiledOP
from tests.support.fake_apis import FakeGraph
from tests.support.login import HTML_ACCEPT, http_login
from tests.support.ports import free_port
from tests.web.login_setup import start_login_gateway

TENANT = "aaaaaaaa-1111-4111-8111-aaaaaaaaaaaa"
OTHER_TENANT = "bbbbbbbb-2222-4222-8222-bbbbbbbbbbbb"
STAFF = "11111111-1111-1111-1111-111111111111"  # in every token's groups claim (op.mjs)
OVERAGE_GROUP = "22222222-2222-2222-2222-222222222222"


def entra_op(profiled_op: ProfiledOP) -> Any:
    return profiled_op("entra", issuer_path=f"/{TENANT}/v2.0", env={"OP_TENANT": TENANT})


def entra_gateway(
    gateway_factory: Any, op: Any, upstream: str, *, tenants: list[str], graph_url: str
) -> tuple[Any, dict[str, Any]]:
    routes = [
        {"path": "/staff", "upstream": upstream, "auth": "login", "policy": {"groups": [STAFF]}},
        {"path": "/big", "upstream": upstream, "auth": "login",
         "policy": {"groups": [OVERAGE_GROUP]}},
        {"path": "/admin", "upstream": upstream, "auth": "login",
         "policy": {"claims": [{"claim": "roles", "contains": "App.Admin"}]}},
    ]  # fmt: skip
    base = op.profile_issuer.rsplit("/", 2)[0]
    return start_login_gateway(
        gateway_factory, op, upstream, routes=routes,
        provider={"issuer": f"{base}/organizations/v2.0", "profile": "entra",
                  "entra": {"tenants": tenants, "graph_url": graph_url}},
    )  # fmt: skip


async def test_entra_multi_tenant_login_groups_roles_and_upn_email(
    gateway_factory: Any, profiled_op: ProfiledOP, upstream: str
) -> None:
    """A user of an allowed tenant signs in through the {tenantid} discovery document: the
    groups claim opens /staff, app roles decide /admin (refused without App.Admin), and a user
    without `email` gets the UPN as e-mail header."""
    op = entra_op(profiled_op)
    gw, _ = entra_gateway(gateway_factory, op, upstream, tenants=[TENANT],
                          graph_url=f"http://127.0.0.1:{free_port()}")  # fmt: skip
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        landed = await http_login(s, f"{gw.url}/staff/", user="entra-admin")
        assert landed.status == 200
        assert STAFF in (await landed.json())["headers"]["X-Auth-Request-Groups"]
        assert (await s.get(f"{gw.url}/admin/")).status == 200
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        landed = await http_login(s, f"{gw.url}/staff/", user="upn-user")
        assert landed.status == 200
        headers = (await landed.json())["headers"]
        assert headers["X-Auth-Request-Email"] == "upn-user@contoso.example"
        assert (await s.get(f"{gw.url}/admin/", headers={"Accept": HTML_ACCEPT})).status == 403


async def test_entra_tenant_not_on_the_allow_list_is_refused(
    gateway_factory: Any, profiled_op: ProfiledOP, upstream: str
) -> None:
    """The same multi-tenant issuer with only another tenant allowed: the login is refused
    at the callback, no session cookie is set, and the upstream is never reached."""
    op = entra_op(profiled_op)
    gw, _ = entra_gateway(gateway_factory, op, upstream, tenants=[OTHER_TENANT],
                          graph_url=f"http://127.0.0.1:{free_port()}")  # fmt: skip
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        landed = await http_login(s, f"{gw.url}/staff/", user="entra-admin")
        assert landed.status == 400
        assert "method" not in await landed.text()  # an error page, not the echo upstream
        assert not any(c.key == "gateway_session" and c.value for c in s.cookie_jar)
    assert TENANT in gw.log_text()


async def test_entra_group_overage_resolved_through_graph_and_cached(
    gateway_factory: Any, profiled_op: ProfiledOP, upstream: str
) -> None:
    """A token with `_claim_names`/`_claim_sources` instead of groups: the gateway asks
    Graph once with the user's access token, the answer decides /big (its group) and /staff
    (not among Graph's answer: 403), and later requests use the session's copy."""
    op = entra_op(profiled_op)
    gw, client = entra_gateway(gateway_factory, op, upstream, tenants=[TENANT],
                               graph_url="http://placeholder.invalid")  # fmt: skip
    async with FakeGraph(op, client, {"overage-user": [OVERAGE_GROUP]}) as graph:
        gw.stop()
        gw.config["providers"][0]["entra"]["graph_url"] = graph.url
        gw.start()
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
            landed = await http_login(s, f"{gw.url}/big/", user="overage-user")
            assert landed.status == 200
            assert (await s.get(f"{gw.url}/big/again")).status == 200
            refused = await s.get(f"{gw.url}/staff/", headers={"Accept": HTML_ACCEPT})
            assert refused.status == 403
        assert graph.calls == [("/v1.0/me/getMemberObjects", "overage-user")]


async def test_entra_overage_that_graph_denies_or_cannot_answer_fails_closed(
    gateway_factory: Any, profiled_op: ProfiledOP, upstream: str
) -> None:
    """Graph answering 403 (no consent) refuses the login; Graph unreachable answers 503 with
    a log line naming Graph; in neither case does a session reach the upstream. The
    `hasgroups` marker is an overage too."""
    op = entra_op(profiled_op)
    gw, client = entra_gateway(gateway_factory, op, upstream, tenants=[TENANT],
                               graph_url="http://placeholder.invalid")  # fmt: skip
    async with FakeGraph(op, client, {"overage-user": [OVERAGE_GROUP]}) as graph:
        graph.deny = True
        gw.stop()
        gw.config["providers"][0]["entra"]["graph_url"] = graph.url
        gw.start()
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
            landed = await http_login(s, f"{gw.url}/big/", user="overage-user")
            assert landed.status == 400
            assert "method" not in await landed.text()
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
            landed = await http_login(s, f"{gw.url}/big/", user="hasgroups-user")
            assert landed.status == 400
        assert [path for path, _ in graph.calls] == ["/v1.0/me/getMemberObjects"] * 2
    assert "Graph answered HTTP 403" in gw.log_text()
    gw.stop()
    gw.config["providers"][0]["entra"]["graph_url"] = f"http://127.0.0.1:{free_port()}"
    gw.start()
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        landed = await http_login(s, f"{gw.url}/big/", user="overage-user")
        assert landed.status == 503
    assert "Graph unreachable" in gw.log_text()
