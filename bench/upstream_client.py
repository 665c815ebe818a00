#!/usr/bin/env python3
"""Choose the upstream client by measurement: CPU per proxied request for each candidate.

For each candidate, one aiohttp server process (uvloop) proxies GET to nginx's 100-byte
answer with that client; wrk -t1 -c50 loads it; the proxy process's CPU time (utime +
stime of all its threads, /proc/<pid>/stat) divided by the requests served is the number
that matters on a shared machine (req/s is reported too, but moves with foreign load).

    bench/upstream_client.py [--seconds 5] [--runs 3] [--only aiohttp,pyreqwest,gateway]

Candidates: aiohttp (ClientSession as the gateway configured it), pyreqwest (hyper),
httptools (the gateway's pool: gateway/proxy/upstream_*.py). Prints one line per run and
a median per candidate, with the load average at each run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CANDIDATES = ("aiohttp", "pyreqwest", "gateway")
NGINX_CONF = """
worker_processes 1; daemon off; pid {dir}/nginx.pid; error_log {dir}/error.log;
events {{ worker_connections 1024; }}
http {{ access_log off; keepalive_requests 1000000;
  server {{ listen 127.0.0.1:{port}; location / {{ return 200 "{body}"; }} }} }}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def serve(candidate: str, port: int, upstream: str) -> None:
    """The proxy under test: an aiohttp server forwarding GET with ``candidate``."""
    import uvloop
    from aiohttp import web

    async def make_app() -> web.Application:
        app = web.Application()
        fetch = await _client(candidate, upstream)

        async def handler(request: web.Request) -> web.Response:
            status, body = await fetch(request.path_qs)
            return web.Response(status=status, body=body)

        app.router.add_get("/{tail:.*}", handler)
        return app

    uvloop.install()
    web.run_app(make_app(), host="127.0.0.1", port=port, access_log=None, print=None)


async def _client(candidate: str, upstream: str):  # type: ignore[no-untyped-def]
    if candidate == "aiohttp":
        import aiohttp

        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, limit_per_host=256, keepalive_timeout=60),
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"),
        )

        async def fetch_aiohttp(path: str) -> tuple[int, bytes]:
            async with session.get(upstream + path, allow_redirects=False) as response:
                return response.status, await response.read()

        return fetch_aiohttp
    if candidate == "pyreqwest":
        from datetime import timedelta

        from pyreqwest.client import ClientBuilder

        client = (
            ClientBuilder()
            .connect_timeout(timedelta(seconds=5))
            .read_timeout(timedelta(seconds=60))
            .pool_max_idle_per_host(256)
            .follow_redirects(False)
            .build()
        )

        async def fetch_pyreqwest(path: str) -> tuple[int, bytes]:
            async with client.get(upstream + path).build_streamed() as response:
                return response.status, bytes(await response.bytes())

        return fetch_pyreqwest
    from bench.floor import pool_fetcher

    return pool_fetcher(int(upstream.rsplit(":", 1)[1]))


def wait_port(port: int) -> None:
    for _ in range(100):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit(f"nothing listens on {port}")


def measure(candidate: str, upstream: str, seconds: int) -> dict[str, float]:
    port = free_port()
    proxy = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--serve",
            candidate,
            "--port",
            str(port),
            "--upstream",
            upstream,
        ],
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parent), *sys.path[1:]])},
    )
    try:
        wait_port(port)
        url = f"http://127.0.0.1:{port}/"
        subprocess.run(["wrk", "-t1", "-c50", "-d2s", url], capture_output=True, check=True)
        before = cpu_seconds(proxy.pid)
        out = subprocess.run(
            ["wrk", "-t1", "-c50", f"-d{seconds}s", url],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        used = cpu_seconds(proxy.pid) - before
    finally:
        proxy.terminate()
        proxy.wait()
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    if "Non-2xx" in out or "Socket errors" in out:
        raise SystemExit(f"{candidate}: errors under load:\n{out}")
    return {
        "rps": requests / seconds,
        "cpu_us": used / requests * 1e6,
        "load1": os.getloadavg()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", default=",".join(CANDIDATES))
    parser.add_argument("--serve")
    parser.add_argument("--port", type=int)
    parser.add_argument("--upstream")
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.upstream)
        return
    if shutil.which("wrk") is None or shutil.which("nginx") is None:
        raise SystemExit("needs wrk and nginx (bench/run.sh installs them)")
    with tempfile.TemporaryDirectory() as tmp:
        nginx_port = free_port()
        conf = Path(tmp, "nginx.conf")
        conf.write_text(NGINX_CONF.format(dir=tmp, port=nginx_port, body="x" * 100))
        nginx = subprocess.Popen(["nginx", "-c", str(conf), "-p", tmp], stderr=subprocess.DEVNULL)
        try:
            wait_port(nginx_port)
            upstream = f"http://127.0.0.1:{nginx_port}"
            results: dict[str, list[dict[str, float]]] = {}
            for run in range(args.runs):
                for candidate in args.only.split(","):
                    r = measure(candidate, upstream, args.seconds)
                    results.setdefault(candidate, []).append(r)
                    print(
                        f"run {run + 1} {candidate:10} {r['rps']:8.0f} req/s "
                        f"{r['cpu_us']:6.1f} us CPU/request  load1 {r['load1']:.2f}",
                        flush=True,
                    )
        finally:
            nginx.terminate()
            nginx.wait()
    print("\nmedian over runs (CPU per request is the comparable number on a shared host):")
    for candidate, rs in results.items():
        print(
            f"  {candidate:10} {statistics.median(r['rps'] for r in rs):8.0f} req/s "
            f"{statistics.median(r['cpu_us'] for r in rs):6.1f} us CPU/request "
            f"(load1 {min(r['load1'] for r in rs):.1f}-{max(r['load1'] for r in rs):.1f})"
        )


if __name__ == "__main__":
    asyncio.set_event_loop_policy(None)
    main()
