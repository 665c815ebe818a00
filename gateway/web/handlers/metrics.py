"""`GET /metrics` (Prometheus): on the internal listener, on the main one only if public."""

from __future__ import annotations

import functools
import logging

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway import metrics
from gateway.audit import audit
from gateway.errors import (
    BadRequest,
    ConfigError,
    LoginError,
    ProviderUnavailable,
    StoreUnavailable,
)
from gateway.login.id_token import IdTokenRejected
from gateway.web.identity import client_of
from gateway.web.keys import SERVICES
from gateway.web.pages.failures import LOGIN_FAILURE

log = logging.getLogger("gateway.metrics")


async def metrics_endpoint(request: web.Request) -> web.Response:
    """The process's metrics in the Prometheus text format."""
    body, content_type = metrics.exposition()
    return web.Response(body=body, headers={"Content-Type": content_type})


def add_metrics_route(app: web.Application, prefix: str) -> None:
    """Serve metrics under the prefix of the main listener only when `metrics.public` is on."""
    settings = app[SERVICES].config.metrics
    if settings.enabled and settings.public:
        app.router.add_get(f"{prefix}/metrics", metrics_endpoint, allow_head=True)


def parse_listen(value: str) -> tuple[str, int]:
    """`host:port` or `[v6]:port` into its parts; a ConfigError names the key otherwise."""
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError([f"metrics.listen: expected host:port, got {value!r}"])
    return host, int(port)


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


def _audit_failure(request: web.Request, reason: str, detail: str) -> None:
    """The audit line of a failed callback: the counted reason, the page's, and why."""
    failure = request.get(LOGIN_FAILURE)
    audit(
        "login_failed",
        reason=reason,
        page_reason=failure.reason if failure is not None else None,
        provider=failure.provider if failure is not None else None,
        detail=detail[:300],
        client=client_of(request),
    )


def count_login_failures(handler: Handler) -> Handler:
    """Wrap the callback so every failed one is counted by reason, then handled as before."""

    @functools.wraps(handler)
    async def counted(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if exc.status >= 400:
                metrics.LOGINS_FAILED.labels("bad_request").inc()
                _audit_failure(request, "bad_request", f"HTTP {exc.status}")
            raise
        except Exception as exc:  # counted, then handled by the error middleware as before
            reason = login_failure_reason(request, exc)
            metrics.LOGINS_FAILED.labels(reason).inc()
            _audit_failure(request, reason, str(exc))
            raise

    return counted
