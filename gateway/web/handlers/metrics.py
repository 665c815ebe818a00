"""`GET {prefix}/metrics` (Prometheus), optionally on its own listen address."""

from __future__ import annotations

import functools
import logging
import socket
from collections.abc import AsyncIterator

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway import metrics
from gateway.errors import (
    BadRequest,
    ConfigError,
    LoginError,
    ProviderUnavailable,
    StoreUnavailable,
)
from gateway.login.id_token import IdTokenRejected
from gateway.web.keys import SERVICES

log = logging.getLogger("gateway.metrics")


async def metrics_endpoint(request: web.Request) -> web.Response:
    """The process's metrics in the Prometheus text format."""
    body, content_type = metrics.exposition()
    return web.Response(body=body, headers={"Content-Type": content_type})


def add_metrics_route(app: web.Application, prefix: str) -> None:
    """Serve metrics under the prefix, unless they are off or have their own address."""
    settings = app[SERVICES].config.metrics
    if settings.enabled and settings.listen is None:
        app.router.add_get(f"{prefix}/metrics", metrics_endpoint, allow_head=True)


def parse_listen(value: str) -> tuple[str, int]:
    """`host:port` or `[v6]:port` into its parts; a ConfigError names the key otherwise."""
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError([f"metrics.listen: expected host:port, got {value!r}"])
    return host, int(port)


async def metrics_listener(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context: a second server for /metrics when `metrics.listen` is set."""
    config = app[SERVICES].config
    if not config.metrics.enabled or config.metrics.listen is None:
        yield
        return
    host, port = parse_listen(config.metrics.listen)
    side = web.Application()
    side.router.add_get("/metrics", metrics_endpoint, allow_head=True)
    side.router.add_get(config.prefix.rstrip("/") + "/metrics", metrics_endpoint, allow_head=True)
    runner = web.AppRunner(side, access_log=None)
    await runner.setup()
    # Workers of one gateway all bind the same metrics port, as they do the main one.
    reuse = hasattr(socket, "SO_REUSEPORT") or None
    await web.TCPSite(runner, host, port, reuse_port=reuse).start()
    log.info("metrics listening", extra={"host": host, "port": port})
    try:
        yield
    finally:
        await runner.cleanup()


def login_failure_reason(request: web.Request, exc: Exception) -> str:
    """A bounded label for why a callback created no session."""
    if isinstance(exc, LoginError) and "error" in request.query:
        return "provider_error"
    for kind, reason in (
        (IdTokenRejected, "id_token_rejected"),
        (LoginError, "refused"),
        (ProviderUnavailable, "provider_unavailable"),
        (StoreUnavailable, "store_unavailable"),
        (BadRequest, "bad_request"),
    ):
        if isinstance(exc, kind):
            return reason
    return "error"


def count_login_failures(handler: Handler) -> Handler:
    """Wrap the callback so every failed one is counted by reason, then handled as before."""

    @functools.wraps(handler)
    async def counted(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if exc.status >= 400:
                metrics.LOGINS_FAILED.labels("bad_request").inc()
            raise
        except Exception as exc:  # counted, then handled by the error middleware as before
            metrics.LOGINS_FAILED.labels(login_failure_reason(request, exc)).inc()
            raise

    return counted
