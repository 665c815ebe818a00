"""Error and info responses: HTML for browsers, JSON for everything else."""

from __future__ import annotations

import json

from aiohttp import web

from gateway.log import request_id_var
from gateway.web.pages.failures import error_page


def wants_html(request: web.Request) -> bool:
    """True when the client is a browser that prefers HTML over JSON."""
    accept = request.headers.get("Accept", "")
    if "application/json" in accept and "text/html" not in accept:
        return False
    return "text/html" in accept or request.headers.get("Sec-Fetch-Mode") == "navigate"


def error_response(
    request: web.Request,
    status: int,
    code: str,
    message: str,
    *,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """A short error in the format the client prefers, carrying the request id."""
    if wants_html(request):
        response = error_page(request, status, code, message)
    else:
        body = {"error": code, "message": message, "request_id": request_id_var.get()}
        response = web.Response(
            status=status,
            text=json.dumps(body),
            content_type="application/json",
            headers={"Cache-Control": "no-store"},
        )
    if headers:
        response.headers.update(headers)
    return response


def json_response(data: object, *, status: int = 200) -> web.Response:
    return web.Response(
        status=status,
        text=json.dumps(data),
        content_type="application/json",
        headers={"Cache-Control": "no-store"},
    )
