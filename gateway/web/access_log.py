"""The access line: written by aiohttp once the response is sent, so its byte count is true."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from gateway.log import request_id_var

access_log = logging.getLogger("gateway.access")
# Fields the text format leaves out of the key=value tail: the message already shows them.
IN_MESSAGE = ("method", "path", "status")


@dataclass(frozen=True, slots=True)
class AccessEntry:
    """What the request middleware knew about a request, for its access line."""

    request_id: str
    route: str
    client: str | None
    sub: str | None
    trace: tuple[str, str] | None = None  # (trace id, span id) while the request's span was open


ACCESS: web.RequestKey[AccessEntry] = web.RequestKey("access", AccessEntry)


class GatewayAccessLogger(AbstractAccessLogger):
    """One line per request the middleware saw, after aiohttp sent the response."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        entry = request.get(ACCESS)
        if entry is None:  # refused before the middleware ran, or access_log: false
            return
        token = request_id_var.set(entry.request_id)
        traced = {"trace_id": entry.trace[0], "span_id": entry.trace[1]} if entry.trace else {}
        try:
            self.logger.info(
                "%s %s %s",
                request.method,
                request.path,
                response.status,
                extra={
                    "method": request.method,
                    "path": request.path,
                    "status": response.status,
                    "route": entry.route,
                    "duration_ms": round(time * 1000, 2),
                    "client": entry.client,
                    "sub": entry.sub,
                    # Bytes written to the client for this response, head and body.
                    "bytes_sent": response.body_length,
                    "_in_message": IN_MESSAGE,
                    **traced,
                },
            )
        finally:
            request_id_var.reset(token)

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)
