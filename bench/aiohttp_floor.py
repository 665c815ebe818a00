#!/usr/bin/env python3
"""The ceiling of any gateway served by aiohttp here: a proxy with nothing else in it.

    bench/aiohttp_floor.py --port P --upstream-port U [--workers 2]

``--workers`` processes share the port (SO_REUSEPORT), as the gateway's do; each runs
uvloop and an aiohttp Application with one catch-all route that sends the request path
to 127.0.0.1:U through the gateway's own upstream pool (gateway/proxy/upstream_*.py) and
answers with the upstream's status and body. No routing table, canonical path, headers,
authentication, metrics or logging: whatever the gateway does per request costs on top.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys

from aiohttp import web
from multidict import CIMultiDict


async def _serve(port: int, upstream_port: int) -> None:
    from gateway.proxy.upstream_client import encode_head, send
    from gateway.proxy.upstream_pool import Origin, UpstreamPool

    pool = UpstreamPool()
    origin = Origin("127.0.0.1", upstream_port, None)
    host = f"127.0.0.1:{upstream_port}"

    async def handler(request: web.Request) -> web.Response:
        head = encode_head("GET", request.raw_path, CIMultiDict({"Host": host}))
        protocol = await send(pool, origin, (5.0, 60.0), "GET", head, None, chunked=False)
        try:
            parts = []
            while chunk := await protocol.read_chunk(60.0):
                parts.append(chunk)
            return web.Response(status=protocol.status, body=b"".join(parts))
        finally:
            pool.release(origin, protocol)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, reuse_port=True).start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream-port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        import uvloop

        uvloop.run(_serve(args.port, args.upstream_port))
        return
    argv = [sys.executable, __file__, "--one", "--port", str(args.port)]
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
