"""The policy language through a real gateway, a real login at the OP and a real upstream."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest
from yarl import URL

from tests.support.login import http_login
from tests.support.op import OidcProvider
from tests.web.login_setup import start_login_gateway

JSON = {"Accept": "application/json"}


async def test_deny_rules_on_path_method_and_network_win_over_groups(
    gateway_factory: Any, oidc_provider: OidcProvider, upstream: str
) -> None:
    """alice (group admins) reaches /docs, but the deny rules refuse /admin in any spelling
    and DELETE from outside 10/8 (also as a `_method` override); the upstream never serves
    those, and the log names the rule."""
    policy = {
        "groups": ["admins"],
        "all": [{"claim": "email", "matches": r"[a-z]+@example\.test"}],
        "deny": [
            {"path": {"prefix": "/admin"}, "reason": "admin area closed"},
            {"all": [{"method": ["DELETE"]}, {"not": {"client_ip": ["10.0.0.0/8"]}}],
             "reason": "deletes only from the office"},
        ],
    }  # fmt: skip
    routes = [{"path": "/", "upstream": upstream, "auth": "login", "policy": policy}]
    gw, _ = start_login_gateway(gateway_factory, oidc_provider, upstream, routes=routes)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        landed = await http_login(session, f"{gw.url}/docs", user="alice")
        assert 200 == landed.status
        assert "/docs" == (await landed.json())["path"]
        for path in ("/admin/users", "/ADMIN/users", "/%61dmin/users", "//admin"):
            async with session.get(URL(gw.url + path, encoded=True), headers=JSON) as refused:
                assert 403 == refused.status, path
                assert "raw_path" not in await refused.text()  # nothing served upstream
        async with session.delete(f"{gw.url}/docs/1", headers=JSON) as deleted:
            assert 403 == deleted.status
        async with session.post(f"{gw.url}/docs/1?_method=DELETE", headers=JSON) as override:
            assert 403 == override.status
        async with session.post(f"{gw.url}/docs/1", headers=JSON) as post:
            assert 200 == post.status
            assert "POST" == (await post.json())["method"]
    log = gw.log_text()
    assert "admin area closed" in log
    assert "deletes only from the office" in log


async def test_claim_comparison_refuses_a_user_outside_the_pattern(
    gateway_factory: Any, oidc_provider: OidcProvider, upstream: str
) -> None:
    """A user whose e-mail fails the route's `matches` rule gets 403 after signing in."""
    policy = {"any": [{"claim": "email", "matches": r"alice@example\.test"},
                      {"claim": "groups", "contains": "admins"}]}  # fmt: skip
    routes = [{"path": "/", "upstream": upstream, "auth": "login", "policy": policy}]
    gw, _ = start_login_gateway(gateway_factory, oidc_provider, upstream, routes=routes)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        landed = await http_login(session, f"{gw.url}/", user="mallory")
        assert 403 == landed.status
        assert "raw_path" not in await landed.text()
    assert "none of the `any` conditions holds" in gw.log_text()


REGO = str(Path(__file__).resolve().parents[1] / "policy" / "rego" / "gateway.rego")


async def test_rego_policy_decides_through_the_gateway(
    gateway_factory: Any, oidc_provider: OidcProvider, upstream: str
) -> None:
    """A real Rego file on a login route: alice (admins) is served, /private is refused to
    her, bob (users) is refused everywhere; the upstream serves only the allowed request."""
    pytest.importorskip("regopy", reason="the optional extra 'rego' is not installed")
    routes = [{"path": "/", "upstream": upstream, "auth": "login", "rego": {"file": REGO}}]
    gw, _ = start_login_gateway(gateway_factory, oidc_provider, upstream, routes=routes)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        landed = await http_login(session, f"{gw.url}/reports", user="alice")
        assert (200, "/reports") == (landed.status, (await landed.json())["path"])
        async with session.get(f"{gw.url}/private/plans", headers=JSON) as private:
            assert 403 == private.status
            assert "raw_path" not in await private.text()
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        refused = await http_login(session, f"{gw.url}/reports", user="bob")
        assert 403 == refused.status
        assert "raw_path" not in await refused.text()
    log = gw.log_text()
    assert "rego: private paths are closed" in log
    assert "rego: admins only" in log


async def test_a_rego_query_giving_several_values_is_never_served(
    gateway_factory: Any, oidc_provider: OidcProvider, upstream: str, tmp_path: Path
) -> None:
    """`data.gateway.decisions[_]` gives true and, on /secret paths, false as well: the
    signed-in request there is refused and the upstream serves nothing (an outside attack
    had it served because one value was true), and the log names the reason."""
    pytest.importorskip("regopy", reason="the optional extra 'rego' is not installed")
    rego = tmp_path / "several.rego"
    rego.write_text(
        "package gateway\nimport rego.v1\n"
        'decisions contains true if input.method == "GET"\n'
        'decisions contains false if contains(input.path, "secret")\n'
    )
    query = "data.gateway.decisions[_]"
    routes = [{"path": "/", "upstream": upstream, "auth": "login",
               "rego": {"file": str(rego), "query": query}}]  # fmt: skip
    gw, _ = start_login_gateway(gateway_factory, oidc_provider, upstream, routes=routes)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        landed = await http_login(session, f"{gw.url}/secret-x", user="alice")
        assert 403 == landed.status
        assert "raw_path" not in await landed.text()
    assert f"rego: {query} does not give exactly one value" in gw.log_text()
