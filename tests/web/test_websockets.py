"""WebSockets under a session: Origin checked at the upgrade, closed when the session ends.

The upstream here is a real aiohttp app of the test's own that records every WebSocket
handshake it accepts and the close code each socket ended with, so the verdicts are what
the upstream saw, not what the gateway says.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMsgType, web

from tests.support.login import HTML_ACCEPT, http_login
from tests.support.op import OidcProvider
from tests.support.ports import free_port
from tests.support.redis import RedisServer
from tests.web.login_setup import start_login_gateway
from tests.web.test_bearer_routes import API, bearer, trusted_issuer

ALLOWED = "https://allowed.example.test"
CLOSE_WAIT = 30.0  # generous: the check interval below is what bounds a correct gateway


@dataclass
class RecordingUpstream:
    """A WebSocket echo at /ws that records each accepted handshake's Origin and close code."""

    port: int = field(default_factory=free_port)
    origins: list[str | None] = field(default_factory=list)
    close_codes: list[int | None] = field(default_factory=list)
    closed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def ws(self, request: web.Request) -> web.WebSocketResponse:
        sock = web.WebSocketResponse()
        await sock.prepare(request)
        self.origins.append(request.headers.get("Origin"))
        async for message in sock:
            if message.type == WSMsgType.TEXT:
                await sock.send_str(message.data)
        self.close_codes.append(sock.close_code)
        self.closed.set()
        return sock

    async def page(self, request: web.Request) -> web.Response:
        return web.json_response({"path": request.path})

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/ws", self.ws)
        app.router.add_route("*", "/{tail:.*}", self.page)
        return app


@pytest.fixture
async def recording_upstream() -> AsyncIterator[RecordingUpstream]:
    upstream = RecordingUpstream()
    runner = web.AppRunner(upstream.app())
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", upstream.port).start()
    yield upstream
    await runner.cleanup()


def jar() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


def login_route(upstream: str) -> dict[str, Any]:
    return {"path": "/", "upstream": upstream, "auth": "login", "websocket_origins": [ALLOWED]}


async def echoes(ws: aiohttp.ClientWebSocketResponse) -> bool:
    word = secrets.token_hex(4)
    await ws.send_str(word)
    return await ws.receive_str(timeout=10) == word


async def closed_by_gateway(ws: aiohttp.ClientWebSocketResponse) -> tuple[int, str | None]:
    """The close code and reason the client received (times out if the socket stays open)."""
    message = await ws.receive(timeout=CLOSE_WAIT)
    assert message.type == WSMsgType.CLOSE, message
    return message.data, message.extra


async def test_cross_origin_upgrade_with_session_cookie_is_refused(
    gateway_factory: Any, oidc_provider: OidcProvider, recording_upstream: RecordingUpstream
) -> None:
    """A signed-in browser's cookie on a handshake from another origin (another site, a
    sibling port, or no Origin at all) gets 403 and the upstream never sees a socket;
    the route's own origin and its allow-listed origin get through."""
    gw, _ = start_login_gateway(
        gateway_factory, oidc_provider, recording_upstream.url,
        routes=[login_route(recording_upstream.url)],
    )  # fmt: skip
    async with jar() as session:
        await http_login(session, f"{gw.url}/home", user="mallory-victim")
        for origin in ("https://evil.example.test", f"http://127.0.0.1:{free_port()}", None):
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await session.ws_connect(f"{gw.url}/ws", origin=origin)
            assert refused.value.status == 403, origin
        assert recording_upstream.origins == []
        for origin in (gw.url, ALLOWED):
            async with session.ws_connect(f"{gw.url}/ws", origin=origin) as ws:
                assert await echoes(ws)
    assert recording_upstream.origins == [gw.url, ALLOWED]


async def test_socket_closes_when_session_ends_on_another_instance(
    gateway_factory: Any,
    oidc_provider: OidcProvider,
    redis_server: RedisServer,
    recording_upstream: RecordingUpstream,
) -> None:
    """Two instances on one Redis: a socket opened on A is closed (1008, at both ends) when
    the user signs out on B, long before A's own periodic check would run: the store's
    invalidation message reaches A."""
    sessions = {
        "store": "redis",
        "redis": {"url": redis_server.url, "key_prefix": f"ws-{secrets.token_hex(4)}:"},
        "websocket_check_interval": 600,
    }
    routes = [login_route(recording_upstream.url)]
    a, client = start_login_gateway(
        gateway_factory, oidc_provider, recording_upstream.url, sessions=sessions, routes=routes,
        name="a",
    )  # fmt: skip
    b, _ = start_login_gateway(
        gateway_factory, oidc_provider, recording_upstream.url, sessions=sessions, routes=routes,
        name="b", client=client,
    )  # fmt: skip
    async with jar() as session:
        await http_login(session, f"{a.url}/home", user="wendy")
        async with session.ws_connect(f"{a.url}/ws", origin=a.url) as ws:
            assert await echoes(ws)
            page = await session.get(f"{b.url}/_gateway/logout", headers={"Accept": HTML_ACCEPT})
            match = re.search(r'name="csrf" value="([^"]+)"', await page.text())
            assert match is not None
            logout = await session.post(
                f"{b.url}/_gateway/logout", data={"csrf": match.group(1)}, allow_redirects=False
            )
            assert logout.status == 302
            assert await closed_by_gateway(ws) == (1008, "session ended")
    await asyncio.wait_for(recording_upstream.closed.wait(), CLOSE_WAIT)
    assert recording_upstream.close_codes == [1008]


async def test_socket_closes_when_its_session_index_is_deleted(
    gateway_factory: Any,
    oidc_provider: OidcProvider,
    redis_server: RedisServer,
    recording_upstream: RecordingUpstream,
) -> None:
    """A neighbour on the Redis deletes the session indexes (so that a logout would find
    nothing): the session counts as ended, so its socket is closed (1008, at both ends) at
    the next check, as its next request is refused. The socket used to stay open."""
    prefix = f"ws-{secrets.token_hex(4)}:"
    sessions = {
        "store": "redis",
        "redis": {"url": redis_server.url, "key_prefix": prefix},
        "websocket_check_interval": 1,
        "cache_ttl": 0,
    }
    gw, _ = start_login_gateway(
        gateway_factory, oidc_provider, recording_upstream.url, sessions=sessions,
        routes=[login_route(recording_upstream.url)],
    )  # fmt: skip
    async with jar() as session:
        await http_login(session, f"{gw.url}/home", user="xena")
        async with session.ws_connect(f"{gw.url}/ws", origin=gw.url) as ws:
            assert await echoes(ws)
            with redis_server.client() as raw:
                indexes = list(raw.scan_iter(prefix + "idx:*"))
                assert indexes
                raw.delete(*indexes)
            assert await closed_by_gateway(ws) == (1008, "session ended")
        after = await session.get(f"{gw.url}/home", headers={"Accept": "application/json"})
        assert after.status == 401
    await asyncio.wait_for(recording_upstream.closed.wait(), CLOSE_WAIT)
    assert recording_upstream.close_codes == [1008]


async def test_socket_closes_when_session_expires(
    gateway_factory: Any, oidc_provider: OidcProvider, recording_upstream: RecordingUpstream
) -> None:
    """A session that expires (idle: the socket's traffic and checks do not count as use)
    takes its socket with it at the next periodic check."""
    gw, _ = start_login_gateway(
        gateway_factory, oidc_provider, recording_upstream.url,
        routes=[login_route(recording_upstream.url)],
        sessions={"idle_timeout": 8, "websocket_check_interval": 1},
    )  # fmt: skip
    async with jar() as session:
        await http_login(session, f"{gw.url}/home", user="ivy")
        async with session.ws_connect(f"{gw.url}/ws", origin=gw.url) as ws:
            assert await echoes(ws)
            assert await closed_by_gateway(ws) == (1008, "session ended")
        after = await session.get(f"{gw.url}/home", headers={"Accept": "application/json"})
        assert after.status == 401
    await asyncio.wait_for(recording_upstream.closed.wait(), CLOSE_WAIT)
    assert recording_upstream.close_codes == [1008]


async def test_bearer_socket_is_not_origin_checked(
    gateway_factory: Any, oidc_provider: OidcProvider, recording_upstream: RecordingUpstream
) -> None:
    """A socket authenticated by a bearer token (which no browser attaches on its own) is
    relayed whatever its Origin; the same route still refuses a foreign cookie socket."""
    resource_server = oidc_provider.register_client()
    route = {**login_route(recording_upstream.url), "auth": "login_or_bearer"}
    gw, _ = start_login_gateway(
        gateway_factory, oidc_provider, recording_upstream.url, routes=[route],
        extra={"bearer": {"issuers": [trusted_issuer(oidc_provider, resource_server)]}},
    )  # fmt: skip
    token = oidc_provider.client_credentials_token(resource_server, resource=API)
    async with jar() as session:
        async with session.ws_connect(
            f"{gw.url}/ws", origin="https://elsewhere.example.test", headers=bearer(token)
        ) as ws:
            assert await echoes(ws)
        await http_login(session, f"{gw.url}/home", user="carol")
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(f"{gw.url}/ws", origin="https://elsewhere.example.test")
        assert refused.value.status == 403
    assert recording_upstream.origins == ["https://elsewhere.example.test"]
