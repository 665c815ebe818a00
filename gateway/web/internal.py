"""The internal listener (`metrics.listen`): metrics and admin endpoints, off the public port."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator

from aiohttp import web

from gateway.errors import StartupError
from gateway.web.body_limit import gateway_body_limit
from gateway.web.connections import bounded_site
from gateway.web.handlers import admin
from gateway.web.handlers.metrics import metrics_endpoint, parse_listen
from gateway.web.keys import SERVICES
from gateway.web.logout_notify import NOTIFIER
from gateway.web.middlewares import context_middleware
from gateway.web.server_header import drop_server_banner

log = logging.getLogger("gateway.internal")


def build_internal_app(main: web.Application) -> web.Application | None:
    """The internal app sharing ``main``'s services, or None when it would serve nothing."""
    config = main[SERVICES].config
    prefix = config.prefix.rstrip("/")
    serve_admin = config.admin.token is not None
    if config.metrics.listen is None or not (config.metrics.enabled or serve_admin):
        return None
    side = web.Application(
        middlewares=[
            context_middleware,
            gateway_body_limit(every_path=True),
        ]
    )
    side[SERVICES] = main[SERVICES]
    side[NOTIFIER] = main[NOTIFIER]
    side.on_response_prepare.append(drop_server_banner)
    if config.metrics.enabled:
        side.router.add_get("/metrics", metrics_endpoint, allow_head=True)
        side.router.add_get(f"{prefix}/metrics", metrics_endpoint, allow_head=True)
    if serve_admin:
        side[admin.ADMIN_FAILURES] = main[admin.ADMIN_FAILURES]
        admin.add_admin_routes(side, prefix)
    return side


async def internal_listener(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context: serve the internal app while the main one runs."""
    side = build_internal_app(app)
    listen = app[SERVICES].config.metrics.listen
    if side is None or listen is None:
        yield
        return
    config = app[SERVICES].config
    host, port = parse_listen(listen)
    runner = web.AppRunner(side, access_log=None)
    await runner.setup()
    # Workers of one gateway all bind the internal port, as they do the main one.
    try:
        await bounded_site(runner, config, host, port, reuse_port=True).start()
    except OSError as exc:
        await runner.cleanup()
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise StartupError([f"metrics.listen: cannot listen on {listen}: {reason}"]) from None
    log.info("internal listener (metrics, admin)", extra={"host": host, "port": port})
    try:
        yield
    finally:
        await runner.cleanup()
