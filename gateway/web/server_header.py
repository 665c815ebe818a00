"""No `Server: Python/x aiohttp/y` banner on the gateway's own responses."""

from __future__ import annotations

from aiohttp import web, web_response

# aiohttp adds `Server` with setdefault() before the prepare signal runs, so its banner
# cannot be told apart from an upstream's by then. An empty default marks it as ours;
# this also covers aiohttp's own error pages, which send no signal (they send `Server:`).
web_response.SERVER_SOFTWARE = ""  # type: ignore[attr-defined]


async def drop_server_banner(request: web.BaseRequest, response: web.StreamResponse) -> None:
    """on_response_prepare: remove the empty default; an upstream's own Server header stays."""
    if response.headers.get("Server") == "":
        del response.headers["Server"]
