"""A sample upstream app for the gateway to proxy to; run it as a subprocess:

    python -m tests.support.upstream --port P

Routes (any method unless noted):
  /slow?seconds=N        sleeps N seconds, then answers like the echo
  /big?bytes=N           streams N bytes in 64 KiB chunks (Content-Length set;
                         `&chunked=1` streams without it); never holds the body in memory
  POST /sink             reads the body as a stream -> {"bytes": n, "sha256": hex}
  /ws                    WebSocket echo (text and binary)
  /status/<code>         answers that status (JSON body unless 204/304)
  /set-headers?H=V&...   answers 200 with those response headers (repeat a name for
                         several values, e.g. Set-Cookie)
  anything else          echo: {"method", "path" (decoded), "raw_path" (target as
                         received, with query), "query" (raw query string), "headers",
                         "header_list", "body_length"} with every request header received
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import sys
from pathlib import Path

from aiohttp import WSMsgType, web

from tests.support.ports import free_port
from tests.support.processes import ManagedProcess, ProcessBacked

CHUNK = 64 * 1024
REPO_ROOT = Path(__file__).resolve().parent.parent.parent


async def _echo_body(request: web.Request) -> dict[str, object]:
    body_length = 0
    async for chunk in request.content.iter_chunked(CHUNK):
        body_length += len(chunk)
    return {
        "method": request.method,
        "path": request.path,
        "raw_path": request.raw_path,
        "query": request.rel_url.raw_query_string,
        "headers": {k: v for k, v in request.headers.items()},
        "header_list": [[k, v] for k, v in request.headers.items()],
        "body_length": body_length,
    }


async def echo(request: web.Request) -> web.Response:
    return web.json_response(await _echo_body(request))


async def slow(request: web.Request) -> web.Response:
    await asyncio.sleep(float(request.query.get("seconds", "1")))
    return web.json_response(await _echo_body(request))


async def big(request: web.Request) -> web.StreamResponse:
    total = int(request.query.get("bytes", str(CHUNK)))
    resp = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
    if request.query.get("chunked") != "1":
        resp.content_length = total
    await resp.prepare(request)
    chunk = b"x" * CHUNK
    left = total
    while left > 0:
        n = min(left, CHUNK)
        await resp.write(chunk[:n])
        left -= n
    await resp.write_eof()
    return resp


async def sink(request: web.Request) -> web.Response:
    digest = hashlib.sha256()
    count = 0
    async for chunk in request.content.iter_chunked(CHUNK):
        digest.update(chunk)
        count += len(chunk)
    return web.json_response({"bytes": count, "sha256": digest.hexdigest()})


async def ws(request: web.Request) -> web.WebSocketResponse:
    sock = web.WebSocketResponse()
    await sock.prepare(request)
    async for msg in sock:
        if msg.type == WSMsgType.TEXT:
            await sock.send_str(msg.data)
        elif msg.type == WSMsgType.BINARY:
            await sock.send_bytes(msg.data)
    return sock


async def status(request: web.Request) -> web.Response:
    code = int(request.match_info["code"])
    if code in (204, 304) or code < 200:
        return web.Response(status=code)
    return web.Response(
        status=code,
        text=json.dumps({"status": code, "path": request.path}),
        content_type="application/json",
    )


async def set_headers(request: web.Request) -> web.Response:
    resp = web.json_response({"set": [[k, v] for k, v in request.query.items()]})
    for name, value in request.query.items():
        resp.headers.add(name, value)
    return resp


def make_app() -> web.Application:
    app = web.Application(client_max_size=1024**4)
    app.router.add_get("/ws", ws)
    app.router.add_route("*", "/slow", slow)
    app.router.add_route("*", "/big", big)
    app.router.add_post("/sink", sink)
    app.router.add_route("*", r"/status/{code:\d{3}}", status)
    app.router.add_route("*", "/set-headers", set_headers)
    app.router.add_route("*", "/{tail:.*}", echo)
    return app


class UpstreamServer(ProcessBacked):
    """This module as a subprocess on 127.0.0.1:`port`."""

    def __init__(self, workdir: Path, *, port: int | None = None) -> None:
        self.port = port or free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        self.process = ManagedProcess(
            f"upstream:{self.port}",
            [sys.executable, "-m", "tests.support.upstream", "--port", str(self.port)],
            log_path=workdir / f"upstream-{self.port}.log",
            cwd=REPO_ROOT,
            ready_url=f"http://127.0.0.1:{self.port}/status/200",
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def main() -> None:
    ap = argparse.ArgumentParser(description="sample upstream app for the gateway tests")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    args = ap.parse_args()
    web.run_app(make_app(), host=args.host, port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
