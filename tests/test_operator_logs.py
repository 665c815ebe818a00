"""Logs an operator can use: a start-up summary, a debug trace of every IdP step with no
secret in it, and access lines with true byte counts and the signed-in `sub`."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

from tests.support.login import http_login, op_logout
from tests.support.op import OidcProvider
from tests.test_log_secrets import callback_parameters, recorder, with_logging
from tests.web.login_setup import SECRET, start_login_gateway

REFRESH_BEFORE = 3599  # the OP's tokens live 3600 s: due for refresh after one second


def records(log: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.splitlines() if line.startswith("{")]


async def settled_log(gw: Any, last_path: str) -> str:
    """The gateway's log once the access line of ``last_path`` is in it: access lines are
    written after the response has gone out, so a fast client can read before them."""
    for _ in range(100):
        log: str = gw.log_text()
        if any(r.get("path") == last_path for r in records(log)):
            return log
        await asyncio.sleep(0.05)
    return str(gw.log_text())


async def test_debug_traces_sign_in_refresh_and_logout_without_secrets(
    gateway_factory: Any, oidc_provider: OidcProvider, upstream: str
) -> None:
    """At `logging.level: debug` a sign-in, a refresh and a logout against the real OP trace
    discovery, the JWKS fetch, the authorize redirect, the code exchange, userinfo, the
    refresh, the logout redirect and the back-channel logout token; no token, code, state,
    cookie or secret is written."""
    routes = [{"name": "app", "path": "/", "upstream": upstream, "auth": "login",
               "pass_access_token": True}]  # fmt: skip
    debug = {"level": "debug", "format": "json"}
    gw, client = start_login_gateway(
        with_logging(gateway_factory, debug), oidc_provider, upstream, routes=routes,
        sessions={"refresh_before": REFRESH_BEFORE, "cache_ttl": 0},
    )  # fmt: skip
    urls: list[str] = []
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar, trace_configs=[recorder(urls)]) as session:
        first = await http_login(session, f"{gw.url}/app", user="olga")
        tokens = [(await first.json())["headers"]["Authorization"].removeprefix("Bearer ")]
        await asyncio.sleep(1.5)
        again = await session.get(f"{gw.url}/app", headers={"Accept": "application/json"})
        tokens.append((await again.json())["headers"]["Authorization"].removeprefix("Bearer "))
        cookies = [c.value for c in jar if "gateway" in c.key]
        page = await (await session.get(f"{gw.url}/_gateway/logout")).text()
        csrf = page.split('name="csrf" value="')[1].split('"')[0]
        out = await session.post(
            f"{gw.url}/_gateway/logout", data={"csrf": csrf}, allow_redirects=False
        )
        assert out.status == 302
        # Confirming at the OP makes it send a back-channel logout token to the gateway.
        await op_logout(session, out)
    assert tokens[0] != tokens[1], "the second request should have refreshed the token"
    log = gw.log_text()
    messages = [r["message"] for r in records(log)]
    for step in ("discovery document fetched", "JWKS fetched", "authorize redirect",
                 "code exchange", "userinfo fetched", "refresh", "session refreshed",
                 "logout redirect", "back-channel logout token valid"):  # fmt: skip
        assert step in messages, f"no {step!r} line at debug"
    exchange = next(r for r in records(log) if r["message"] == "code exchange")
    assert exchange["status"] == 200
    assert "access_token" in exchange["fields"]  # names of what came back, not values
    secrets = {
        "client secret": client["client_secret"],
        "session secret": SECRET,
        "csrf": csrf,
        **{f"token {i}": t for i, t in enumerate(tokens)},
        **{f"cookie {i}": c for i, c in enumerate(cookies)},
        **{f"code/state {i}": v for i, v in enumerate(callback_parameters(urls))},
    }
    assert len(callback_parameters(urls)) == 2
    assert [name for name, value in secrets.items() if value in log] == []
    assert "eyJ" not in log


async def test_access_lines_carry_bytes_and_sub_and_startup_is_summarised(
    gateway_factory: Any, oidc_provider: OidcProvider, upstream: str
) -> None:
    """Access lines count the bytes really sent (they all said 0), name the signed-in `sub`
    on /_gateway/* lines too, and the text format states method, path and status once; the
    first lines summarise version, listeners, routes with auth mode, providers and store."""
    routes = [{"name": "app", "path": "/", "upstream": upstream, "auth": "login"}]
    gw, _ = start_login_gateway(
        with_logging(gateway_factory, {"level": "info", "format": "json"}),
        oidc_provider, upstream, routes=routes,
    )  # fmt: skip
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        await http_login(session, f"{gw.url}/app", user="pia")
        big = await session.get(f"{gw.url}/big?bytes=50000")
        body = await big.read()
        await (await session.get(f"{gw.url}/_gateway/logout")).read()
    lines = records(await settled_log(gw, "/_gateway/logout"))
    [summary] = [r for r in lines if r["message"] == "gateway started"]
    assert summary["routes"] == [f"app */ -> {upstream} [login]"]
    assert summary["providers"] == [f"op {oidc_provider.issuer} (profile generic)"]
    assert summary["store"] == "memory"
    assert summary["listeners"][0].endswith(f":{gw.port}")
    access = [r for r in lines if r["logger"] == "gateway.access"]
    [proxied] = [r for r in access if r["path"] == "/big"]
    assert big.status == 200
    assert len(body) < proxied["bytes_sent"] < len(body) + 2000  # body and head
    [logout_page] = [r for r in access if r["path"] == "/_gateway/logout"]
    assert logout_page["sub"] == "pia"
    assert logout_page["bytes_sent"] > 0


async def test_text_access_line_names_each_field_once(gateway_factory: Any, upstream: str) -> None:
    """`GET / 200 method=GET path=/ status=200` said everything twice; now once."""
    gw = gateway_factory(
        {"routes": [{"path": "/", "upstream": upstream, "auth": "public"}],
         "logging": {"format": "text", "level": "info"}}
    )  # fmt: skip
    async with aiohttp.ClientSession() as session:
        await (await session.get(f"{gw.url}/hello")).read()
    for _ in range(100):
        found = [x for x in gw.log_text().splitlines() if " GET /hello 200" in x]
        if found:
            break
        await asyncio.sleep(0.05)
    [line] = found
    assert "method=" not in line
    assert "path=" not in line
    assert "status=" not in line
    assert "bytes_sent=" in line
