"""The listener's dispatch: proxied paths skip the Application's router, and nothing the
router gives to a gateway endpoint is ever taken for a proxied path."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient, make_mocked_request
from hypothesis import given, settings
from hypothesis import strategies as st
from yarl import URL

from gateway.config import parse_config
from gateway.web.app import build_app
from gateway.web.dispatch import _is_proxied, proxied_paths_first
from gateway.web.handlers.proxy import proxy_handler
from tests.support.gateway import GatewayProcess
from tests.support.raw_http import RawUpstream

PREFIX = "/_gateway"
# Pieces of paths that come near the gateway's own endpoints, in several spellings.
PIECES = [
    "_gateway", "%5Fgateway", "_GATEWAY", "_gateway%2F", "healthz", "auth", "login", "metrics",
    ".well-known", "oauth-protected-resource", "%2E", ".", "..", "", "x", "%2e%2e", ";a=b",
    "_gateway;x", "%2Fhealthz", "jwks", "api",
]  # fmt: skip


def _request(path: str) -> web.Request:
    """A request as aiohttp's parser makes it from an origin-form target (`//x` is a path)."""
    request = make_mocked_request("GET", "/", headers={"Host": "gw"}, app=APP)
    request = request.clone(rel_url=URL.build(path=path, encoded=True))
    # The parser keeps the target as sent; str(URL) would spell a leading `//` as `////`.
    request._message = request._message._replace(path=path)
    return request


def _app() -> web.Application:
    config = parse_config(
        yaml.safe_dump(
            {
                "routes": [{"path": "/", "upstream": "http://127.0.0.1:1", "auth": "public"}],
                "admin": {"token": "t" * 40, "public": True},
            }
        )
    )
    app = build_app(config)
    app.freeze()
    return app


APP = _app()


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(PIECES), min_size=1, max_size=4), st.booleans())
async def test_a_path_taken_directly_is_one_the_router_gives_to_the_proxy(
    segments: list[str], trailing: bool
) -> None:
    path = "/" + "/".join(segments) + ("/" if trailing else "")
    request = _request(path)
    assert request.raw_path == path
    if _is_proxied(request, PREFIX):
        match = await APP.router.resolve(request)
        assert match.route.handler is proxy_handler, path


@pytest.mark.parametrize(
    "path",
    [
        "/_gateway/healthz",
        "/%5Fgateway/healthz",
        "/_gateway%2Fhealthz",
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/api",
        "/_gateway",
    ],
)
async def test_the_gateways_own_paths_go_to_the_application(path: str) -> None:
    seen: list[str] = []

    async def application(request: web.BaseRequest) -> web.StreamResponse:
        seen.append(request.raw_path)
        return web.Response(text="app")

    dispatch = proxied_paths_first(APP, PREFIX, application)
    await dispatch(_request(path))
    assert seen == [path]


def _exchange(port: int, head: bytes, body: bytes) -> tuple[bytes, bytes]:
    """Send ``head``; read the interim answer; send ``body``; read the final answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(head)
        interim = sock.recv(4096)
        sock.sendall(body)
        final = b""
        while b"\r\n\r\n" not in final or not final.endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            final += chunk
    return interim, final


def test_expect_100_continue_on_a_proxied_path_is_answered_then_forwarded(
    gateway_factory: Any, upstream: str
) -> None:
    gateway: GatewayProcess = gateway_factory(
        {"routes": [{"path": "/", "upstream": upstream, "auth": "public"}]}
    )
    body = b'{"hello": "world"}'
    head = (
        b"POST /echo HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
        b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body)
    )
    interim, final = _exchange(gateway.port, head, body)
    assert interim.startswith(b"HTTP/1.1 100 Continue\r\n")
    assert final.startswith(b"HTTP/1.1 200 ")
    echoed = json.loads(final.partition(b"\r\n\r\n")[2])
    assert echoed["path"] == "/echo"
    assert echoed["body_length"] == len(body)  # the upstream read the whole body


def _connect_request(target: str) -> web.Request:
    """CONNECT as aiohttp's parser makes it: the target is an authority, even `/x`."""
    request = make_mocked_request("CONNECT", "/", headers={"Host": "gw"}, app=APP)
    request = request.clone(rel_url=URL.build(authority=target, encoded=True))
    request._message = request._message._replace(path=target)
    return request


@pytest.mark.parametrize("target", ["/foo", "/_gateway/healthz", "example.com:443"])
async def test_connect_goes_to_the_application_whatever_its_target(target: str) -> None:
    request = _connect_request(target)
    assert not _is_proxied(request, PREFIX)
    match = await APP.router.resolve(request)
    assert match.http_exception is not None
    assert match.http_exception.status == 404


async def test_connect_is_refused_by_the_gateway_and_never_reaches_the_upstream(
    gateway_factory: Any,
) -> None:
    upstream = RawUpstream({})
    await upstream.start()
    try:
        gateway: GatewayProcess = gateway_factory(
            {
                "routes": [
                    {
                        "path": "/",
                        "upstream": f"http://127.0.0.1:{upstream.port}",
                        "auth": "public",
                        "timeouts": {"read": 3},
                    }
                ]
            }
        )
        # A body the upstream would take for the start of the next request on its connection.
        smuggled = b"GET /smuggled HTTP/1.1\r\nHost: gw\r\n\r\n"
        head = b"CONNECT /foo HTTP/1.1\r\nHost: gw\r\nContent-Length: %d\r\n\r\n" % len(smuggled)
        reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
        writer.write(head + smuggled)
        status = await asyncio.wait_for(reader.readline(), 10)
        writer.close()
        assert status.startswith(b"HTTP/1.1 404 "), status
        # The positive control: an ordinary request is forwarded, and it is all that arrived.
        reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
        writer.write(b"GET /after HTTP/1.1\r\nHost: gw\r\n\r\n")
        answer = await asyncio.wait_for(reader.read(4096), 10)
        writer.close()
        assert answer.startswith(b"HTTP/1.1 200 ")
        assert answer.endswith(b"ok /after")
        assert [(method, path) for _, method, path in upstream.seen] == [("GET", "/after")]
    finally:
        await upstream.close()


async def test_with_tracing_on_every_request_goes_through_the_application() -> None:
    seen: list[str] = []

    async def application(request: web.BaseRequest) -> web.StreamResponse:
        seen.append(request.raw_path)
        return web.Response(text="app")

    dispatch = proxied_paths_first(APP, PREFIX, application, direct=False)
    await dispatch(_request("/app/page"))
    assert seen == ["/app/page"]


async def test_a_connect_is_answered_by_the_application_and_closes_its_connection() -> None:
    seen: list[str] = []

    async def application(request: web.BaseRequest) -> web.StreamResponse:
        seen.append(request.method)
        return web.Response(status=404)

    for direct in (True, False):
        dispatch = proxied_paths_first(APP, PREFIX, application, direct=direct)
        response = await dispatch(_connect_request("/foo"))
        assert response.keep_alive is False
    assert seen == ["CONNECT", "CONNECT"]


def test_an_application_without_the_proxy_route_is_refused() -> None:
    async def other(request: web.Request) -> web.Response:
        return web.Response()

    async def other_handler(request: web.BaseRequest) -> web.StreamResponse:
        return web.Response()

    app = web.Application()
    app.router.add_get("/{tail:.*}", other)
    with pytest.raises(LookupError, match=r"^the application has no proxy catch-all route$"):
        proxied_paths_first(app, PREFIX, other_handler)


class InProcess:
    """A gateway app served in-process with the dispatcher, counting what the Application
    itself was given; ``client`` talks to it."""

    def __init__(self, client: TestClient[Any, Any], long_way: list[str]) -> None:
        self.client = client
        self.long_way = long_way


@pytest.fixture
async def in_process(
    aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]], upstream: str
) -> InProcess:
    config = parse_config(
        yaml.safe_dump(
            {
                "prefix": "/gw/",
                "routes": [{"path": "/", "upstream": upstream, "auth": "public"}],
                "metrics": {"listen": None},
            }
        )
    )
    app = build_app(config)
    client = await aiohttp_client(app)
    runner = client.server.runner
    assert runner is not None
    server = runner.server
    assert server is not None
    application = server.request_handler
    long_way: list[str] = []

    async def counted(request: web.BaseRequest) -> web.StreamResponse:
        long_way.append(request.raw_path)
        return await application(request)

    # Connections made from now on take the dispatcher, as the gateway's listener does.
    server.request_handler = proxied_paths_first(app, config.prefix, counted)
    return InProcess(client, long_way)


async def test_a_proxied_path_is_answered_by_the_upstream_without_the_application(
    in_process: InProcess,
) -> None:
    response = await in_process.client.get("/app/page?x=1")
    assert response.status == 200
    echoed = await response.json()
    assert echoed["path"] == "/app/page"
    assert echoed["query"] == "x=1"
    assert echoed["headers"]["X-Request-ID"] == response.headers["X-Request-ID"]
    assert in_process.long_way == []


@pytest.mark.parametrize("path", ["/gw", "/gw/healthz", "/gw/nothing-here"])
async def test_paths_under_the_prefix_take_the_long_way(in_process: InProcess, path: str) -> None:
    response = await in_process.client.get(path)
    assert response.status == (200 if path == "/gw/healthz" else 404)
    assert in_process.long_way == [path]
