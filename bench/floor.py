#!/usr/bin/env python3
"""What a gateway in Python can reach here: a proxy with nothing else in it.

    bench/floor.py --port P --upstream-port U [--workers 2] [--server aiohttp|raw]

``--workers`` processes share the port (SO_REUSEPORT), as the gateway's do; each runs
uvloop and sends every request's path to 127.0.0.1:U through the gateway's own upstream
pool (gateway/proxy/upstream_*.py), answering with the upstream's status and body. No
routing table, canonical path, headers, authentication, metrics or logging: whatever the
gateway does per request costs on top.

- ``aiohttp``: an aiohttp Application with one catch-all route, as the gateway is served.
- ``raw``: no HTTP server library at all, httptools' request parser on asyncio.Protocol;
  keep-alive GETs only, no pipelining (what wrk sends). It measures what aiohttp's server
  itself costs; it is not a server for anything else.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable

from aiohttp import web
from multidict import CIMultiDict

Fetch = Callable[[str], Awaitable[tuple[int, bytes]]]


def pool_fetcher(upstream_port: int) -> Fetch:
    """GET a path from 127.0.0.1:``upstream_port`` through the gateway's upstream pool."""
    from gateway.proxy.upstream_client import encode_head, send
    from gateway.proxy.upstream_pool import Origin, UpstreamPool

    pool = UpstreamPool()
    origin = Origin("127.0.0.1", upstream_port, None)
    host = f"127.0.0.1:{upstream_port}"

    async def fetch(path: str) -> tuple[int, bytes]:
        head = encode_head("GET", path, CIMultiDict({"Host": host}))
        protocol = await send(pool, origin, (5.0, 60.0), "GET", head, None, chunked=False)
        try:
            parts = []
            while chunk := await protocol.read_chunk(60.0):
                parts.append(chunk)
            return protocol.status, b"".join(parts)
        finally:
            pool.release(origin, protocol)

    return fetch


async def _serve_aiohttp(port: int, fetch: Fetch, stop: asyncio.Event) -> None:
    async def handler(request: web.Request) -> web.Response:
        status, body = await fetch(request.raw_path)
        return web.Response(status=status, body=body)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, reuse_port=True).start()
    await stop.wait()
    await runner.cleanup()


class _RawConnection(asyncio.Protocol):
    """One client connection: parse heads with httptools, answer in order."""

    def __init__(self, fetch: Fetch) -> None:
        import httptools

        self._fetch = fetch
        self._parser = httptools.HttpRequestParser(self)
        self._url = b""
        self._transport: asyncio.Transport | None = None
        self._answers: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None

    def data_received(self, data: bytes) -> None:
        self._parser.feed_data(data)

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_message_complete(self) -> None:
        url, self._url = self._url, b""
        task = asyncio.ensure_future(self._answer(url.decode("latin-1")))
        self._answers.add(task)
        task.add_done_callback(self._answers.discard)

    async def _answer(self, path: str) -> None:
        status, body = await self._fetch(path)
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(
                b"HTTP/1.1 %d OK\r\nContent-Length: %d\r\n\r\n%s" % (status, len(body), body)
            )


async def _serve_raw(port: int, fetch: Fetch, stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: _RawConnection(fetch), "127.0.0.1", port, reuse_port=True
    )
    await stop.wait()
    server.close()


async def _serve(kind: str, port: int, upstream_port: int) -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    serve = _serve_raw if kind == "raw" else _serve_aiohttp
    await serve(port, pool_fetcher(upstream_port), stop)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream-port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--server", choices=("aiohttp", "raw"), default="aiohttp")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        import uvloop

        uvloop.run(_serve(args.server, args.port, args.upstream_port))
        return
    argv = [sys.executable, __file__, "--one", "--server", args.server, "--port", str(args.port)]
    argv += ["--upstream-port", str(args.upstream_port)]
    children = [subprocess.Popen(argv) for _ in range(args.workers)]

    def relay(signum: int, _frame: object) -> None:
        for child in children:
            if child.poll() is None:
                os.kill(child.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, relay)
    signal.signal(signal.SIGINT, relay)
    sys.exit(max(child.wait() for child in children))


if __name__ == "__main__":
    main()
