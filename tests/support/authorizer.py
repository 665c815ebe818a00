"""A small external authorizer (the gateway's HTTP decision contract, see
gateway/policy/ext_authz.py), run as a subprocess: `python -m tests.support.authorizer --port P`.

POST /decide   allow when the caller holds the scope `api:read` and the path does not
               start with /private; adds X-Authz-Verdict (and X-Not-Listed, which the
               gateway must drop unless configured)
POST /slow     answers like /decide after 3 seconds
POST /broken   HTTP 500
GET  /count    {"decisions": n}: decision requests received so far (all endpoints)
GET  /last     the last decision request body received
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.support.ports import free_port
from tests.support.processes import ManagedProcess, ProcessBacked

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
SEEN = web.AppKey("seen", list)


def verdict(body: dict[str, Any]) -> dict[str, Any]:
    principal = body.get("principal") or {}
    if "api:read" not in principal.get("scopes", []):
        return {"allow": False, "reason": "needs api:read"}
    if str(body.get("path", "")).startswith("/private"):
        return {"allow": False, "reason": "private area"}
    headers = {"X-Authz-Verdict": f"ok for {principal.get('subject')}", "X-Not-Listed": "x"}
    return {"allow": True, "reason": "scope and path fine", "headers": headers}


async def decide(request: web.Request) -> web.Response:
    body = await request.json()
    request.app[SEEN].append(body)
    return web.json_response(verdict(body))


async def slow(request: web.Request) -> web.Response:
    await asyncio.sleep(3)
    return await decide(request)


async def broken(request: web.Request) -> web.Response:
    request.app[SEEN].append(await request.json())
    return web.Response(status=500, text="authorizer bug")


async def count(request: web.Request) -> web.Response:
    return web.json_response({"decisions": len(request.app[SEEN])})


async def last(request: web.Request) -> web.Response:
    seen = request.app[SEEN]
    return web.json_response(seen[-1] if seen else None)


def make_app() -> web.Application:
    app = web.Application()
    app[SEEN] = []
    app.router.add_post("/decide", decide)
    app.router.add_post("/slow", slow)
    app.router.add_post("/broken", broken)
    app.router.add_get("/count", count)
    app.router.add_get("/last", last)
    return app


class AuthorizerServer(ProcessBacked):
    """This module as a subprocess on 127.0.0.1:`port`."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        self.process = ManagedProcess(
            f"authorizer:{self.port}",
            [sys.executable, "-m", "tests.support.authorizer", "--port", str(self.port)],
            log_path=workdir / f"authorizer-{self.port}.log",
            cwd=REPO_ROOT,
            ready_url=f"http://127.0.0.1:{self.port}/count",
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def main() -> None:
    ap = argparse.ArgumentParser(description="external authorizer for the gateway tests")
    ap.add_argument("--port", type=int, required=True)
    args = ap.parse_args()
    web.run_app(make_app(), host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
