"""The gateway's logs during a full login carry request ids and subjects, never secrets."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp

from tests.support.gateway import GatewayProcess
from tests.support.login import http_login
from tests.support.op import OidcProvider
from tests.web.login_setup import SECRET, start_login_gateway


def recorder(urls: list[str]) -> aiohttp.TraceConfig:
    """A trace config that records the URL of every request the client sends."""
    trace = aiohttp.TraceConfig()

    async def on_request_start(
        _session: aiohttp.ClientSession, _ctx: SimpleNamespace, params: Any
    ) -> None:
        urls.append(str(params.url))

    trace.on_request_start.append(on_request_start)
    return trace


def with_logging(factory: Any, logging: dict[str, str]) -> Any:
    """A gateway_factory whose gateways log with these settings."""

    def make(config: dict[str, Any], **kwargs: Any) -> GatewayProcess:
        gw: GatewayProcess = factory(config, **kwargs)
        gw.config["logging"] = logging
        return gw

    return make


def callback_parameters(urls: list[str]) -> list[str]:
    """The code and state values the provider sent to the gateway's callback."""
    values = []
    for url in urls:
        parts = urlsplit(url)
        if parts.path.endswith("/_gateway/callback"):
            query = parse_qs(parts.query)
            values += query.get("code", []) + query.get("state", [])
    return values


async def test_full_login_logs_no_token_cookie_secret_code_or_state(
    gateway_factory: Any, oidc_provider: OidcProvider, upstream: str
) -> None:
    """Debug logs of login, a proxied call with tokens passed upstream and a logout contain
    none of: tokens, cookie values, client or session secret, code, state."""
    routes = [{"path": "/", "upstream": upstream, "auth": "login", "pass_access_token": True,
               "pass_id_token_header": "X-Id-Token"}]  # fmt: skip
    debug = {"level": "debug", "format": "json"}
    gw, client = start_login_gateway(
        with_logging(gateway_factory, debug), oidc_provider, upstream, routes=routes
    )
    urls: list[str] = []
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar, trace_configs=[recorder(urls)]) as session:
        landed = await http_login(session, f"{gw.url}/app?x=1", user="alice")
        seen = (await landed.json())["headers"]
        cookies = [c.value for c in jar if c.key.startswith("gateway")]
        page = await (await session.get(f"{gw.url}/_gateway/logout")).text()
        csrf = page.split('name="csrf" value="')[1].split('"')[0]
        async with session.post(
            f"{gw.url}/_gateway/logout", data={"csrf": csrf}, allow_redirects=False
        ) as out:
            assert out.status == 302
    access_token = seen["Authorization"].removeprefix("Bearer ")
    secrets = {
        "access token": access_token,
        "id token": seen["X-Id-Token"],
        "client secret": client["client_secret"],
        "session secret": SECRET,
        "csrf token": csrf,
        **{f"cookie {i}": value for i, value in enumerate(cookies)},
        **{f"code/state {i}": value for i, value in enumerate(callback_parameters(urls))},
    }
    # the test saw what it looks for: the session cookie, the code and the state
    assert cookies
    assert len(callback_parameters(urls)) == 2
    log = gw.log_text()
    leaked = [name for name, value in secrets.items() if value and value in log]
    assert leaked == []
    assert "eyJ" not in log  # no JWT of any kind (refresh or logout tokens included)
    access = [json.loads(line) for line in log.splitlines() if '"gateway.access"' in line]
    assert any(line.get("sub") == "alice" and line["path"] == "/app" for line in access)
    assert all(len(line["request_id"]) >= 16 for line in access)
