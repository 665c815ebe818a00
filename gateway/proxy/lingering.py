"""Closing a connection whose request body was left unread, without draining it first."""

from __future__ import annotations

from aiohttp import web
from aiohttp.web_protocol import RequestHandler


def skip_lingering(request: web.BaseRequest) -> None:
    """After this request's answer, close the connection if its body is unread, at once.

    aiohttp otherwise keeps reading (and dropping) the rest of the body for a while, so a
    client refused with 413 or 408 could go on sending gigabytes.
    """
    protocol = request.protocol
    if isinstance(protocol, RequestHandler):
        protocol._lingering_time = 0.0  # no public setter; per connection, this one only
