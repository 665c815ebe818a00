"""Bodies of the gateway's own endpoints, in-process on a real socket: the size cap (413,
declared or streamed), the body deadline (408), which paths are capped, and that a refused
body is not read on (the connection closes instead)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable

import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.config import parse_config
from gateway.web.body_limit import gateway_body_limit
from gateway.web.keys import SERVICES
from gateway.web.middlewares import context_middleware
from gateway.web.services import Services

LIMIT = 1024
BODY_TIMEOUT = 0.3
# An in-process answer takes milliseconds; a mutant that never answers costs this long.
ANSWER_WITHIN = 3.0
ServerFactory = Callable[..., Awaitable[TestServer]]


async def echo(request: web.Request) -> web.Response:
    """Reads the whole body and says how long it was."""
    data = await request.read()
    request.app[CALLS].append(request.path)
    return web.Response(text=str(len(data)))


async def ignore(request: web.Request) -> web.Response:
    """Answers without reading the body."""
    return web.Response(text="not read")


CALLS: web.AppKey[list[str]] = web.AppKey("calls", list)


async def gateway(
    aiohttp_server: ServerFactory, *, every_path: bool = False, prefix: str = "/_gateway"
) -> TestServer:
    config = parse_config(
        yaml.safe_dump(
            {
                "routes": [{"path": "/", "upstream": "http://127.0.0.1:1", "auth": "public"}],
                "listen": {"body_timeout": BODY_TIMEOUT},
                "limits": {"max_gateway_body_size": LIMIT},
                "prefix": prefix,
            }
        )
    )
    app = web.Application(
        middlewares=[
            context_middleware,
            gateway_body_limit(every_path=True) if every_path else gateway_body_limit(),
        ],
        client_max_size=2**63,  # as build_app: only the middleware bounds these bodies
    )
    app[SERVICES] = Services.compile(config)
    app[CALLS] = []
    under = prefix.rstrip("/") + "/echo"
    for path in sorted({"/_gateway/echo", "/_gateway", "/_gatewayx/echo", "/app/echo", under}):
        app.router.add_post(path, echo)
    app.router.add_post("/_gateway/ignore", ignore)
    app.router.add_get("/_gateway/echo", echo)
    return await aiohttp_server(app)


async def exchange(
    server: TestServer, head: str, body: bytes = b"", *, then: bytes = b""
) -> tuple[int, dict[str, str], bytes, asyncio.StreamReader, asyncio.StreamWriter]:
    """Send a head and body on a raw connection; the answer's status, headers and body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
    await writer.drain()
    status_line = await asyncio.wait_for(reader.readline(), ANSWER_WITHIN)
    headers: dict[str, str] = {}
    while (line := await asyncio.wait_for(reader.readline(), ANSWER_WITHIN)) not in (b"\r\n", b""):
        name, _, value = line.decode().partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    answer = await asyncio.wait_for(reader.readexactly(length), ANSWER_WITHIN)
    if then:
        writer.write(then)
    return int(status_line.split()[1]), headers, answer, reader, writer


def post(path: str, length: int | None, *, chunked: bool = False) -> str:
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {length}"
    return f"POST {path} HTTP/1.1\nHost: gw\nAccept: application/json\n{framing}\n"


async def closed_by_peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
    """True once the gateway closes the connection while we keep sending body bytes;
    False if it reads them on (aiohttp lingers 10 s) or answers them as a next request."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    while loop.time() < deadline:
        try:
            writer.write(b"x" * 4096)
            await writer.drain()
            # Bytes back mean our junk was read on as a further request and answered.
            return await asyncio.wait_for(reader.read(4096), 0.05) == b""
        except TimeoutError:
            continue
        except (ConnectionError, OSError):
            return True
    return False


def refused_413(status: int, headers: dict[str, str], body: bytes) -> None:
    assert status == 413
    assert headers["connection"] == "close"
    assert json.loads(body)["error"] == "body_too_large"
    assert json.loads(body)["message"] == f"Request bodies here are limited to {LIMIT} bytes."


async def test_declared_body_up_to_the_limit_is_read_over_it_refused_unread(
    aiohttp_server: ServerFactory,
) -> None:
    """Content-Length LIMIT reaches the handler; LIMIT + 1 gets 413 before the handler
    runs, and the connection closes without reading the body."""
    server = await gateway(aiohttp_server)
    status, _, body, _, writer = await exchange(server, post("/_gateway/echo", LIMIT), b"a" * LIMIT)
    assert (status, body) == (200, str(LIMIT).encode())
    writer.close()
    status, headers, body, reader, writer = await exchange(
        server, post("/_gateway/echo", LIMIT + 1)
    )
    refused_413(status, headers, body)
    assert server.app[CALLS] == ["/_gateway/echo"]
    assert await closed_by_peer(reader, writer)
    writer.close()


async def test_streamed_body_over_the_limit_is_refused(aiohttp_server: ServerFactory) -> None:
    """A chunked body (no Content-Length) that grows past the limit gets 413 and the
    connection is closed, not drained; one under the limit is read."""
    server = await gateway(aiohttp_server)
    small = b"%x\r\n%s\r\n0\r\n\r\n" % (LIMIT, b"s" * LIMIT)
    status, _, body, _, writer = await exchange(
        server, post("/_gateway/echo", None, chunked=True), small
    )
    assert (status, body) == (200, str(LIMIT).encode())
    writer.close()
    big = b"%x\r\n%s\r\n" % (LIMIT + 1, b"b" * (LIMIT + 1))
    status, headers, body, reader, writer = await exchange(
        server, post("/_gateway/echo", None, chunked=True), big
    )
    refused_413(status, headers, body)
    assert await closed_by_peer(reader, writer)
    writer.close()


async def test_only_paths_under_the_prefix_are_capped(aiohttp_server: ServerFactory) -> None:
    """The prefix itself and paths under it are capped; other paths (proxied ones), even
    one that only starts with the prefix's letters, take bodies over the gateway's cap."""
    server = await gateway(aiohttp_server)
    for path in ("/_gateway", "/_gateway/echo"):
        status, headers, body, _, writer = await exchange(server, post(path, LIMIT + 1))
        refused_413(status, headers, body)
        writer.close()
    for path in ("/_gatewayx/echo", "/app/echo"):
        size = LIMIT * 4
        status, _, body, _, writer = await exchange(server, post(path, size), b"p" * size)
        assert (status, body) == (200, str(size).encode()), path
        writer.close()


async def test_every_path_caps_all_paths(aiohttp_server: ServerFactory) -> None:
    """With every_path (the internal listener) a path outside the prefix is capped too."""
    server = await gateway(aiohttp_server, every_path=True)
    status, headers, body, _, writer = await exchange(server, post("/app/echo", LIMIT + 1))
    refused_413(status, headers, body)
    writer.close()


async def test_trickled_body_gets_408_naming_the_deadline(
    aiohttp_server: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """A body not complete within listen.body_timeout fails the handler's read with 408;
    the log says which path and deadline; the connection is closed, not read on."""
    server = await gateway(aiohttp_server)
    caplog.set_level(logging.WARNING)
    status, _, body, reader, writer = await exchange(server, post("/_gateway/echo", 100), b"ab")
    assert status == 408
    assert json.loads(body)["error"] == "body_timeout"
    assert f"request body to /_gateway/echo not complete within {BODY_TIMEOUT:g} s" in caplog.text
    assert server.app[CALLS] == []
    assert await closed_by_peer(reader, writer)
    writer.close()


async def test_complete_body_keeps_the_connection(aiohttp_server: ServerFactory) -> None:
    """A body read in full within the deadline: the connection serves the next request,
    even after the deadline would have passed (it was cancelled with the request)."""
    server = await gateway(aiohttp_server)
    status, _, body, reader, writer = await exchange(server, post("/_gateway/echo", 3), b"abc")
    assert (status, body) == (200, b"3")
    await asyncio.sleep(BODY_TIMEOUT * 2)
    writer.write(post("/_gateway/echo", 2).replace("\n", "\r\n").encode() + b"\r\nhi")
    await writer.drain()
    answer = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), ANSWER_WITHIN)
    assert answer.startswith(b"HTTP/1.1 200")
    assert await asyncio.wait_for(reader.readexactly(1), ANSWER_WITHIN) == b"2"
    writer.close()


async def test_body_left_unread_by_the_handler_is_not_drained(
    aiohttp_server: ServerFactory,
) -> None:
    """A handler that answers without reading the body: the answer is sent and the
    connection closed rather than the rest read for nothing."""
    server = await gateway(aiohttp_server)
    status, _, body, reader, writer = await exchange(server, post("/_gateway/ignore", LIMIT), b"x")
    assert (status, body) == (200, b"not read")
    assert await closed_by_peer(reader, writer)
    writer.close()


async def test_request_without_a_body_is_served(aiohttp_server: ServerFactory) -> None:
    """A GET without a body under the prefix is served and the connection kept."""
    server = await gateway(aiohttp_server)
    request = "GET /_gateway/echo HTTP/1.1\nHost: gw\n"
    status, headers, body, _, writer = await exchange(server, request)
    assert (status, body) == (200, b"0")
    assert headers.get("connection", "keep-alive") != "close"
    writer.close()


@pytest.mark.parametrize("prefix", ["/_gateway/", "/authX"])
async def test_prefix_spelling_does_not_uncap_its_paths(
    aiohttp_server: ServerFactory, prefix: str
) -> None:
    """A prefix configured with a trailing slash, or ending in an X, still caps the
    paths under it; a path outside it is not capped."""
    server = await gateway(aiohttp_server, prefix=prefix)
    under = prefix.rstrip("/") + "/echo"
    status, headers, body, _, writer = await exchange(server, post(under, LIMIT + 1))
    refused_413(status, headers, body)
    writer.close()
    size = LIMIT * 2
    status, _, body, _, writer = await exchange(server, post("/app/echo", size), b"p" * size)
    assert (status, body) == (200, str(size).encode())
    writer.close()
