"""Liveness and readiness."""

from __future__ import annotations

import logging

from aiohttp import web

from gateway.errors import GatewayError
from gateway.web.keys import SERVICES
from gateway.web.responses import json_response

log = logging.getLogger("gateway.health")


async def healthz(request: web.Request) -> web.Response:
    """The process is alive and serving (nothing about the process is disclosed)."""
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Dependencies answer: the session store (if any); not ready while draining."""
    services = request.app[SERVICES]
    if services.draining:
        return json_response({"status": "draining"}, status=503)
    checks: dict[str, str] = {}
    ready = True
    for name, check in services.readiness_checks.items():
        try:
            await check()
            checks[name] = "ok"
        except (GatewayError, OSError) as exc:
            log.warning("readiness check %s failed: %s", name, exc)
            checks[name] = "unavailable"
            ready = False
    return json_response(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status=200 if ready else 503,
    )
