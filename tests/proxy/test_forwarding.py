"""Forwarding through the gateway to a real loopback upstream."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp.test_utils import TestClient

from gateway.config import parse_config
from gateway.web.app import build_app

ClientFactory = Callable[..., Awaitable[TestClient[Any, Any]]]


def config_for(upstream: str, **extra: Any) -> Any:
    routes = extra.pop(
        "routes",
        [
            {"path": "/", "upstream": upstream, "auth": "public"},
            {"path": "/login-app", "upstream": upstream, "auth": "login"},
            {"path": "/api", "upstream": upstream, "auth": "bearer"},
            {"path": "/mixed", "upstream": upstream, "auth": "login_or_bearer"},
        ],
    )
    return parse_config(yaml.safe_dump({"routes": routes, **extra}))


@pytest.fixture
async def gateway(aiohttp_client: ClientFactory, upstream: str) -> TestClient[Any, Any]:
    return await aiohttp_client(build_app(config_for(upstream)))


async def echo(response: aiohttp.ClientResponse) -> dict[str, Any]:
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def test_request_reaches_upstream_with_path_query_and_body(
    gateway: TestClient[Any, Any],
) -> None:
    """Method, path, query and body arrive unchanged."""
    response = await gateway.post("/some/path?a=1&b=two", data=b"hello")
    body = await echo(response)
    assert body["method"] == "POST"
    assert body["path"] == "/some/path"
    assert body["query"] == "a=1&b=two"
    assert body["body_length"] == 5


async def test_hop_by_hop_headers_are_removed(gateway: TestClient[Any, Any]) -> None:
    """Connection-specific headers, and those named in Connection, never reach the upstream."""
    response = await gateway.get(
        "/",
        headers={
            "Connection": "keep-alive, X-Private-Hop",
            "X-Private-Hop": "secret",
            "Keep-Alive": "timeout=5",
            "TE": "trailers",
            "Proxy-Authorization": "Basic Zm9vOmJhcg==",
            "X-Kept": "yes",
        },
    )
    headers = {k.lower(): v for k, v in (await echo(response))["headers"].items()}
    for name in ("x-private-hop", "keep-alive", "te", "proxy-authorization"):
        assert name not in headers
    assert headers["x-kept"] == "yes"


async def test_forwarded_headers_from_untrusted_client_are_replaced(
    gateway: TestClient[Any, Any],
) -> None:
    """An untrusted client cannot claim another address, scheme or host."""
    response = await gateway.get(
        "/",
        headers={
            "X-Forwarded-For": "6.6.6.6",
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "evil.test",
            "Forwarded": "for=6.6.6.6",
        },
    )
    headers = (await echo(response))["headers"]
    assert headers["X-Forwarded-For"] == "127.0.0.1"
    assert headers["X-Forwarded-Proto"] == "http"
    assert headers["X-Forwarded-Host"] != "evil.test"
    assert "6.6.6.6" not in headers["Forwarded"]


async def test_forwarded_headers_from_trusted_proxy_are_extended(
    aiohttp_client: ClientFactory, upstream: str
) -> None:
    """From a configured proxy address the chain is kept and our peer appended."""
    client = await aiohttp_client(build_app(config_for(upstream, trusted_proxies=["127.0.0.0/8"])))
    response = await client.get(
        "/",
        headers={
            "X-Forwarded-For": "203.0.113.7",
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "app.example.com",
        },
    )
    headers = (await echo(response))["headers"]
    assert headers["X-Forwarded-For"] == "203.0.113.7, 127.0.0.1"
    assert headers["X-Forwarded-Proto"] == "https"
    assert headers["X-Forwarded-Host"] == "app.example.com"
    assert "proto=https" in headers["Forwarded"]


async def test_host_header_replaced_unless_preserved(
    aiohttp_client: ClientFactory, upstream: str
) -> None:
    """Upstreams see their own host by default, the client's when the route preserves it."""
    routes = [
        {"path": "/", "upstream": upstream, "auth": "public"},
        {"path": "/keep", "upstream": upstream, "auth": "public", "preserve_host": True},
    ]
    client = await aiohttp_client(build_app(config_for(upstream, routes=routes)))
    plain = (await echo(await client.get("/", headers={"Host": "app.test"})))["headers"]
    kept = (await echo(await client.get("/keep", headers={"Host": "app.test"})))["headers"]
    assert upstream.removeprefix("http://") == plain["Host"]
    assert kept["Host"] == "app.test"


async def test_request_id_is_propagated(gateway: TestClient[Any, Any]) -> None:
    """A well-formed incoming X-Request-ID reaches the upstream and comes back."""
    response = await gateway.get("/", headers={"X-Request-ID": "abc-123"})
    assert (await echo(response))["headers"]["X-Request-ID"] == "abc-123"
    assert response.headers["X-Request-ID"] == "abc-123"


async def test_websocket_echo_through_the_proxy(gateway: TestClient[Any, Any]) -> None:
    """A WebSocket upgrade is proxied and messages flow both ways."""
    async with gateway.ws_connect("/ws") as ws:
        await ws.send_str("ping")
        assert await ws.receive_str(timeout=5) == "ping"
        await ws.send_bytes(b"\x00\x01")
        assert await ws.receive_bytes(timeout=5) == b"\x00\x01"


async def test_refused_connection_is_502(aiohttp_client: ClientFactory, upstream: str) -> None:
    """An upstream that refuses connections gives 502 with a JSON body for API clients."""
    from tests.support.ports import free_port

    dead = f"http://127.0.0.1:{free_port()}"
    client = await aiohttp_client(
        build_app(config_for(upstream, routes=[{"path": "/", "upstream": dead, "auth": "public"}]))
    )
    response = await client.get("/", headers={"Accept": "application/json"})
    assert response.status == 502
    body = await response.json()
    assert body["error"] == "bad_gateway"
    assert response.headers["X-Request-ID"] == body["request_id"]


async def test_slow_upstream_is_504_with_html_for_browsers(
    aiohttp_client: ClientFactory, upstream: str
) -> None:
    """An upstream slower than the read timeout gives 504, as a page for a browser."""
    routes = [{"path": "/", "upstream": upstream, "auth": "public", "timeouts": {"read": 0.3}}]
    client = await aiohttp_client(build_app(config_for(upstream, routes=routes)))
    response = await client.get("/slow?seconds=3", headers={"Accept": "text/html"})
    assert response.status == 504
    assert "text/html" in response.headers["Content-Type"]
    assert "did not answer in time" in await response.text()


@pytest.mark.parametrize("path", ["/login-app/x", "/api/x", "/mixed/x"])
async def test_protected_routes_fail_closed_without_authenticator(
    gateway: TestClient[Any, Any], path: str
) -> None:
    """Non-public routes refuse when no provider or bearer issuer is configured."""
    response = await gateway.get(path, headers={"Authorization": "Bearer x"})
    assert response.status == 503
    body = await response.json()
    assert body["error"] == "no_authenticator"
    assert "headers" not in body  # nothing came back from the upstream


async def test_no_route_is_404(aiohttp_client: ClientFactory, upstream: str) -> None:
    """A host no route serves gets 404."""
    routes = [{"host": "app.test", "path": "/", "upstream": upstream, "auth": "public"}]
    client = await aiohttp_client(build_app(config_for(upstream, routes=routes)))
    response = await client.get("/", headers={"Host": "other.test", "Accept": "application/json"})
    assert response.status == 404


async def raw_request(client: TestClient[Any, Any], request: bytes) -> bytes:
    """Send bytes as they are (no client-side normalisation) and read the reply."""
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(request)
    await writer.drain()
    reply = await asyncio.wait_for(reader.read(65536), 10)
    writer.close()
    return reply


@pytest.mark.parametrize("path", ["/a/../b", "/a/./b", "/%2e%2e/b", "/a/%2E%2E/b", "/a\\..\\b"])
async def test_dot_segments_are_refused(gateway: TestClient[Any, Any], path: str) -> None:
    """Paths that could be read differently by the upstream get 400."""
    reply = await raw_request(
        gateway, f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
    )
    assert reply.startswith(b"HTTP/1.1 400"), reply[:200]


async def test_body_size_limit(aiohttp_client: ClientFactory, upstream: str) -> None:
    """A body above limits.max_body_size gets 413 (declared or streamed)."""
    client = await aiohttp_client(build_app(config_for(upstream, limits={"max_body_size": 1024})))
    declared = await client.post("/sink", data=b"x" * 2048)
    assert declared.status == 413

    async def chunks() -> Any:
        for _ in range(4):
            yield b"y" * 512

    streamed = await client.post("/sink", data=chunks())
    assert streamed.status in (413, 502)  # the upstream may see a cut body; never a 200
    small = await client.post("/sink", data=b"z" * 100)
    assert small.status == 200


async def test_header_size_limit(aiohttp_client: ClientFactory, upstream: str) -> None:
    """A header larger than limits.max_header_size is refused before reaching the upstream."""
    client = await aiohttp_client(build_app(config_for(upstream, limits={"max_header_size": 2048})))
    response = await client.get("/", headers={"X-Big": "a" * 4096})
    assert response.status in (400, 431)


async def test_upstream_errors_do_not_leak_between_requests(gateway: TestClient[Any, Any]) -> None:
    """Concurrent requests keep their own responses (pooled connections are not mixed up)."""
    paths = [f"/item/{i}" for i in range(50)]
    responses = await asyncio.gather(*(gateway.get(p) for p in paths))
    got = [(await echo(r))["path"] for r in responses]
    assert paths == got
