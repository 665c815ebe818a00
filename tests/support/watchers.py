"""Test helpers around Redis and upstreams: a MONITOR recorder, a bulk session loader,
and a tiny HTTP server that records logout notices."""

from __future__ import annotations

import asyncio
import builtins
import json
import secrets
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import redis as redis_sync


class NoticeSink:
    """A tiny HTTP server recording the JSON logout notices POSTed to it."""

    def __init__(self) -> None:
        self.notices: list[dict[str, Any]] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                sink.notices.append(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/logout-notice"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    async def wait_for(self, match: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        for _ in range(100):
            found = [n for n in self.notices if match(n)]
            if found:
                return found[0]
            await asyncio.sleep(0.05)
        raise AssertionError(f"no matching notice among {self.notices}")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def command_keys(commands: list[str], key_prefix: str) -> set[str]:
    return {part for c in commands for part in c.split() if part.startswith(key_prefix)}


class Monitor:
    """Every command Redis executes while active (MONITOR), until a marker ECHO."""

    MARKER = "end-of-watch-" + secrets.token_hex(4)

    def __init__(self, url: str) -> None:
        self.url = url
        self.commands: list[str] = []
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with redis_sync.Redis.from_url(self.url).monitor() as monitor:  # type: ignore[no-untyped-call]
            self.ready.set()
            for entry in monitor.listen():
                if self.MARKER in entry["command"]:
                    return
                self.commands.append(entry["command"])

    def __enter__(self) -> Monitor:
        self.thread.start()
        assert self.ready.wait(5)
        return self

    def __exit__(self, *exc: object) -> None:
        with redis_sync.Redis.from_url(self.url) as client:
            client.echo(self.MARKER)
        self.thread.join(5)


class BulkWriter:
    """Just enough of a SessionStore for SessionManager.create, queued in a Redis pipeline:
    the real manager makes the stored form, one round trip stores thousands."""

    def __init__(self, raw: redis_sync.Redis, key_prefix: str) -> None:
        self.pipe = raw.pipeline(transaction=False)
        self.prefix = key_prefix

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        self.pipe.set(self.prefix + key, value, px=int(ttl * 1000))

    async def add_to_index(self, index: str, member: str, ttl: float) -> None:
        self.pipe.sadd(self.prefix + index, member)
        self.pipe.pexpire(self.prefix + index, int(ttl * 1000))

    async def index_members(self, index: str) -> builtins.set[str]:
        return set()
