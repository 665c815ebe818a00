"""Attacks on the gateway's HTTP surface: smuggling, cookie tampering, spoofed headers."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

from tests.support.login import http_login
from tests.support.op import OidcProvider
from tests.web.login_setup import start_login_gateway


async def raw(port: int, request: bytes) -> bytes:
    """Send bytes as they are and read until the gateway closes or 3 s pass."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    chunks = []
    try:
        while True:
            chunk = await asyncio.wait_for(reader.read(65536), 3)
            if not chunk:
                break
            chunks.append(chunk)
    except TimeoutError:
        pass
    writer.close()
    return b"".join(chunks)


async def test_request_smuggling_never_reaches_the_upstream(
    gateway_factory: Any, upstream: str
) -> None:
    """CL+TE and duplicate Content-Length requests are refused, never forwarded as two."""
    gw = gateway_factory({"routes": [{"path": "/", "upstream": upstream, "auth": "public"}]})
    smuggled = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
    attempts = [
        b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"0\r\n\r\n" + smuggled,
        b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 40\r\n\r\n"
        b"hello" + smuggled,
        b"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n"
        b"0\r\n\r\n" + smuggled,
    ]
    for attempt in attempts:
        reply = await raw(gw.port, attempt)
        assert reply.split(b" ", 2)[1] == b"400", reply[:120]
        assert b"/smuggled" not in reply


async def test_tampered_truncated_foreign_and_oversized_cookies_are_not_sessions(
    gateway_factory: Any, oidc_provider: OidcProvider, upstream: str
) -> None:
    """Every damaged ticket is treated as no session (401 for APIs), never as an error."""
    gw, _ = start_login_gateway(gateway_factory, oidc_provider, upstream)
    tickets = {}
    for user in ("olga", "pete"):
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
            await http_login(s, f"{gw.url}/", user=user)
            cookie = next(c for c in s.cookie_jar if c.key.endswith("gateway_session"))
            name, tickets[user] = cookie.key, cookie.value
    olga_id, olga_key = tickets["olga"].split(".", 1)
    _, pete_key = tickets["pete"].split(".", 1)
    flipped = olga_key[:-2] + ("A" if olga_key[-2] != "A" else "B") + olga_key[-1]
    damaged = {
        "tampered key": f"{olga_id}.{flipped}",
        "truncated": tickets["olga"][:-5],
        "another session's key": f"{olga_id}.{pete_key}",
        "no separator": olga_id + olga_key,
        "oversized": tickets["olga"] + "A" * 3000,
        "garbage": "%00%ff<script>",
    }
    async with aiohttp.ClientSession() as session:
        for case, value in damaged.items():
            async with session.get(
                f"{gw.url}/", headers={"Cookie": f"{name}={value}", "Accept": "application/json"}
            ) as response:
                assert response.status == 401, case
        async with session.get(
            f"{gw.url}/", headers={"Cookie": f"{name}={tickets['olga']}", "Accept": "*/*"}
        ) as good:
            assert json.loads(await good.text())["headers"]["X-Auth-Request-User"] == "olga"


async def test_spoofed_identity_headers_in_every_shape_are_stripped(
    gateway_factory: Any, oidc_provider: OidcProvider, upstream: str
) -> None:
    """Case, duplicates and underscores do not let a forged identity header through."""
    gw, _ = start_login_gateway(gateway_factory, oidc_provider, upstream)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        await http_login(session, f"{gw.url}/", user="quinn")
        cookie = "; ".join(
            f"{c.key}={c.value}" for c in session.cookie_jar if c.key.endswith("gateway_session")
        )
    request = (
        "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAccept: application/json\r\n"
        f"Cookie: {cookie}\r\n"
        "x-auth-request-user: mallory\r\nX-AUTH-REQUEST-USER: mallory\r\n"
        "X_Auth_Request_Email: mallory@evil.test\r\nX-Remote-User: mallory\r\n\r\n"
    ).encode()
    reply = await raw(gw.port, request)
    assert reply.startswith(b"HTTP/1.1 200"), reply[:200]
    body = json.loads(reply.split(b"\r\n\r\n", 1)[1])
    values = [v for _, v in body["header_list"]]
    assert not [v for v in values if "mallory" in v]
    assert body["headers"]["X-Auth-Request-User"] == "quinn"


async def test_client_cannot_supply_the_id_token_header(
    gateway_factory: Any, upstream: str
) -> None:
    """A route's pass_id_token_header belongs to the gateway: a client-sent one is dropped."""
    routes = [
        {"path": "/", "upstream": upstream, "auth": "public", "pass_id_token_header": "X-Id-Token"}
    ]
    gw = gateway_factory({"routes": routes})
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{gw.url}/", headers={"x-id-token": "forged"}) as response:
            body = await response.json()
    assert not [v for _, v in body["header_list"] if v == "forged"]


async def test_lenient_path_readings_do_not_escape_a_protected_route(
    gateway_factory: Any, oidc_provider: OidcProvider, upstream: str
) -> None:
    """'//admin' and '/admin;x' are guarded like '/admin'; '/%2Fadmin' is refused (400)."""
    routes = [
        {"path": "/", "upstream": upstream, "auth": "public"},
        {"path": "/admin", "upstream": upstream, "auth": "login"},
    ]
    gw, _ = start_login_gateway(gateway_factory, oidc_provider, upstream, routes=routes)
    for path, status in (
        ("//admin/x", b"401"),
        ("/admin;jsessionid=1/x", b"401"),
        ("/%2Fadmin/x", b"400"),
        ("///admin", b"401"),
    ):
        reply = await raw(
            gw.port,
            f"GET {path} HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\n"
            "Connection: close\r\n\r\n".encode(),
        )
        assert status == reply.split(b" ", 2)[1], (path, reply[:100])
