"""Middlewares: request context (id, client view), error mapping, access log."""

from __future__ import annotations

import base64
import logging
import os
import re
import time

from aiohttp import HttpVersion11, web
from aiohttp.typedefs import Handler

from gateway import metrics, tracing
from gateway.errors import (
    DpopRefused,
    Forbidden,
    GatewayError,
    InsufficientScope,
    InvalidToken,
    Unauthorized,
)
from gateway.log import request_id_var, subject_var
from gateway.policy.canonical import canonical_path
from gateway.web.access_log import ACCESS, AccessEntry
from gateway.web.keys import COMPILED, ROUTE_NAME, SERVICES, TARGET, VIEW
from gateway.web.resource_metadata import with_resource_metadata
from gateway.web.responses import error_response

log = logging.getLogger("gateway.request")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class _RequestIds:
    """Unpredictable 16-character ids cut from a buffer of randomness, refilled in batches:
    one getrandom() per 256 ids instead of one per request."""

    __slots__ = ("_next", "_pool")

    _BATCH = 256
    _LENGTH = 16  # 12 random bytes, base64url without padding

    def __init__(self) -> None:
        self._pool = ""
        self._next = 0

    def take(self) -> str:
        start = self._next
        if start >= len(self._pool):
            self._pool = base64.urlsafe_b64encode(os.urandom(12 * self._BATCH)).decode("ascii")
            start = 0
        self._next = start + self._LENGTH
        return self._pool[start : start + self._LENGTH]


_new_request_id = _RequestIds().take


def _request_id(request: web.Request) -> str:
    incoming = request.headers.get("X-Request-ID", "")
    if incoming and _REQUEST_ID.match(incoming):
        return incoming
    return _new_request_id()


@web.middleware
async def context_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Give the request an id and a trusted view of the client; map errors; log access."""
    services = request.app[SERVICES]
    started = time.perf_counter()
    request_id = _request_id(request)
    token = request_id_var.set(request_id)
    subject_var.set(None)
    compiled = request[COMPILED] = services.compiled
    response: web.StreamResponse | None = None
    try:
        request[VIEW] = compiled.trusted.client_view(
            request.remote or "",
            request.headers,
            request.scheme,
            _absolute_authority(request),
            request.host if request.version < HttpVersion11 else None,
        )
        request[TARGET] = canonical_path(_target_path(request.raw_path))
        if services.rate_limiter is not None and request.path in services.limited_paths:
            services.rate_limiter.check(request[VIEW].client_ip, request.path)
        response = await handler(request)
    except GatewayError as exc:
        if (
            400 <= exc.status < 500
            and exc.status not in (401, 403)
            and _asks_forward_auth(request, services.config.prefix)
        ):
            # nginx's auth_request turns every answer but 2xx/401/403 into a 500 for the
            # user: a malformed original request is refused plainly instead.
            exc = Forbidden(f"forward-auth: {exc}", public=exc.public_message)
        response = _error_to_response(request, exc, services.config.bearer.realm)
    except web.HTTPException as exc:
        if exc.status >= 400:
            response = error_response(request, exc.status, "http_error", exc.reason)
        else:
            exc.headers["X-Request-ID"] = request_id
            response = exc  # a raised redirect is the answer: log and count its status
            raise
    finally:
        if services.config.logging.access_log:
            _log_access(request, response, started)
        # Handlers return after streaming the whole body, so this times the full exchange.
        status = response.status if response is not None else 500
        route = _route_label(request, services.config.prefix)
        metrics.observe_request(route, request.method, status, time.perf_counter() - started)
        request_id_var.reset(token)
    if not response.prepared:
        response.headers["X-Request-ID"] = request_id
    return response


def _asks_forward_auth(request: web.Request, prefix: str) -> bool:
    resource = request.match_info.route.resource
    return resource is not None and resource.canonical == prefix.rstrip("/") + "/auth"


def _absolute_authority(request: web.Request) -> str | None:
    """The host[:port] of an absolute-form request target (`GET http://host/x`), else None."""
    target = request.raw_path
    if target.startswith("/"):
        return None
    return target.partition("://")[2].partition("/")[0].partition("?")[0].partition("#")[0]


def _target_path(target: str) -> str:
    """The raw path of a request target, origin-form or absolute-form, without the query."""
    if not target.startswith("/") and "://" in target:
        rest = target.partition("://")[2]
        target = "/" + rest.partition("/")[2] if "/" in rest.partition("?")[0] else "/"
    return target.partition("?")[0]


def _route_label(request: web.Request, prefix: str) -> str:
    """A bounded metrics label: the config's route name, or the gateway endpoint's name."""
    if ROUTE_NAME in request:
        return request[ROUTE_NAME]
    resource = request.match_info.route.resource
    canonical = resource.canonical if resource is not None else ""
    base = prefix.rstrip("/") + "/"
    if canonical.startswith(base):
        return "gateway:" + canonical[len(base) :]
    return "unmatched"


def _error_to_response(request: web.Request, exc: GatewayError, realm: str) -> web.Response:
    level = logging.WARNING if exc.status < 500 else logging.ERROR
    metrics.count_error(exc)
    log.log(level, "%s: %s", exc.code, exc, extra={"status": exc.status, "path": request.path})
    headers: dict[str, str] = {}
    if isinstance(exc, DpopRefused):
        from gateway.tokens.dpop import dpop_challenge

        headers["WWW-Authenticate"] = dpop_challenge(exc, realm)
    elif isinstance(exc, InvalidToken | InsufficientScope):
        from gateway.tokens.authenticator import www_authenticate

        headers["WWW-Authenticate"] = www_authenticate(exc, realm)
    elif isinstance(exc, Unauthorized):
        headers["WWW-Authenticate"] = f'Bearer realm="{realm}"'
    if "WWW-Authenticate" in headers:
        headers["WWW-Authenticate"] = with_resource_metadata(request, headers["WWW-Authenticate"])
    return error_response(request, exc.status, exc.code, exc.public_message, headers=headers)


def _log_access(request: web.Request, response: web.StreamResponse | None, started: float) -> None:
    # The line itself is written by GatewayAccessLogger once aiohttp has sent the response
    # (only then are the bytes known); here is what only the middleware knows.
    request[ACCESS] = AccessEntry(
        request_id=request_id_var.get(),
        route=request.get(ROUTE_NAME, "-"),
        client=request[VIEW].client_ip if VIEW in request else request.remote,
        sub=subject_var.get(),
        # The line is written after the request's span has ended: keep its ids for it.
        trace=tracing.current_ids(),
    )
