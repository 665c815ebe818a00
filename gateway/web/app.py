"""The aiohttp application: endpoints under the reserved prefix, the proxy catch-all."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from gateway.config.model import Config
from gateway.web.handlers import health
from gateway.web.handlers.proxy import proxy_handler
from gateway.web.keys import SERVICES
from gateway.web.middlewares import context_middleware
from gateway.web.services import Services


def build_app(config: Config) -> web.Application:
    """An application serving ``config``; its clients open and close with the app."""
    services = Services.compile(config)
    app = web.Application(
        middlewares=[context_middleware],
        client_max_size=config.limits.max_body_size or 2**63,
        handler_args={
            "max_line_size": config.limits.max_header_size,
            "max_field_size": config.limits.max_header_size,
        },
    )
    app[SERVICES] = services
    app.cleanup_ctx.append(_upstream_client)
    prefix = config.prefix.rstrip("/")
    app.router.add_get(f"{prefix}/healthz", health.healthz, allow_head=True)
    app.router.add_get(f"{prefix}/readyz", health.readyz, allow_head=True)
    app.router.add_route("*", "/{tail:.*}", proxy_handler)
    return app


async def _upstream_client(app: web.Application) -> AsyncIterator[None]:
    services = app[SERVICES]
    connector = aiohttp.TCPConnector(limit=0, limit_per_host=256, keepalive_timeout=60)
    services.upstream_http = aiohttp.ClientSession(
        connector=connector,
        auto_decompress=False,
        cookie_jar=aiohttp.DummyCookieJar(),
        skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"),
    )
    yield
    await services.upstream_http.close()
