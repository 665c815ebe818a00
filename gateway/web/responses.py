"""Error and info responses: HTML for browsers, JSON for everything else."""

from __future__ import annotations

import html
import json

from aiohttp import web

from gateway.log import request_id_var

_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;
color:#222}}h1{{font-size:1.4rem}}.id{{color:#777;font-size:.8rem}}a.btn,button{{display:inline-block;
padding:.5rem 1rem;margin:.25rem 0;border:1px solid #444;border-radius:4px;background:#fff;
color:#222;text-decoration:none;font-size:1rem;cursor:pointer}}</style></head>
<body><h1>{title}</h1>{body}<p class="id">Request ID: {request_id}</p></body></html>"""


def wants_html(request: web.Request) -> bool:
    """True when the client is a browser that prefers HTML over JSON."""
    accept = request.headers.get("Accept", "")
    if "application/json" in accept and "text/html" not in accept:
        return False
    return "text/html" in accept or request.headers.get("Sec-Fetch-Mode") == "navigate"


def html_page(title: str, body_html: str, *, status: int = 200) -> web.Response:
    text = _PAGE.format(title=html.escape(title), body=body_html, request_id=request_id_var.get())
    return web.Response(
        status=status,
        text=text,
        content_type="text/html",
        headers={
            "Cache-Control": "no-store",
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
            "form-action 'self' https: http:; frame-ancestors 'none'",
            "X-Content-Type-Options": "nosniff",
        },
    )


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
        response = html_page(
            _TITLES.get(status, "Error"), f"<p>{html.escape(message)}</p>", status=status
        )
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


_TITLES = {
    400: "Bad request",
    401: "Sign-in required",
    403: "Access denied",
    404: "Not found",
    405: "Method not allowed",
    413: "Request too large",
    429: "Too many requests",
    431: "Request headers too large",
    502: "Bad gateway",
    503: "Service unavailable",
    504: "Gateway timeout",
}
