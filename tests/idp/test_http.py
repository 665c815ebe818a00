"""fetch_json against a real loopback server: every failure is a plain ProviderUnavailable."""

from __future__ import annotations

import asyncio
import socket

import aiohttp
import pytest
from aiohttp import web

from gateway.errors import ProviderUnavailable
from gateway.idp.addresses import AddressGuard
from gateway.idp.http import fetch_json
from tests.idp.fake_provider import ServerFactory, open_guard


async def _json(request: web.Request) -> web.Response:
    return web.json_response({"ok": True, "method": request.method})


async def _html(request: web.Request) -> web.Response:
    return web.Response(text="<html>login</html>", content_type="text/html")


async def _list(request: web.Request) -> web.Response:
    return web.json_response([1, 2])


async def _oauth_error(request: web.Request) -> web.Response:
    return web.json_response({"error": "invalid_grant"}, status=400)


async def _not_found(request: web.Request) -> web.Response:
    return web.Response(status=404, text="nope")


async def _unavailable(request: web.Request) -> web.Response:
    return web.json_response({"error": "x"}, status=503)


async def _redirect(request: web.Request) -> web.Response:
    raise web.HTTPFound("http://169.254.169.254/latest/meta-data")


async def _slow(request: web.Request) -> web.Response:
    await asyncio.sleep(5)
    return web.json_response({})


async def _huge(request: web.Request) -> web.Response:
    return web.Response(body=b'{"a":"' + b"x" * (2 * 1024 * 1024) + b'"}')


@pytest.fixture
async def base(aiohttp_server: ServerFactory) -> str:
    app = web.Application()
    for path, handler in {
        "/json": _json, "/html": _html, "/list": _list, "/oauth-error": _oauth_error,
        "/404": _not_found, "/503": _unavailable, "/redirect": _redirect, "/slow": _slow,
        "/huge": _huge,
    }.items():  # fmt: skip
        app.router.add_route("*", path, handler)
    server = await aiohttp_server(app)
    return str(server.make_url("")).rstrip("/")


async def test_json_object_is_returned(base: str, http_session: aiohttp.ClientSession) -> None:
    """A 2xx JSON object comes back with its status; POST sends the form."""
    status, body = await fetch_json(
        http_session, f"{base}/json", guard=open_guard(), timeout=5, method="POST",
        data={"token": "t"},
    )  # fmt: skip
    assert (status, body) == (200, {"ok": True, "method": "POST"})


async def test_oauth_error_body_is_returned(base: str, http_session: aiohttp.ClientSession) -> None:
    """A 4xx JSON object is the caller's to interpret (OAuth error responses)."""
    status, body = await fetch_json(
        http_session, f"{base}/oauth-error", guard=open_guard(), timeout=5
    )
    assert (status, body) == (400, {"error": "invalid_grant"})


FAILURES = [
    ("/html", "did not answer with a JSON object"),
    ("/list", "did not answer with a JSON object"),
    ("/404", "answered HTTP 404"),
    ("/503", "answered HTTP 503"),
    ("/redirect", "answered with a redirect (HTTP 302)"),
    ("/huge", "larger than 1 MiB"),
]


@pytest.mark.parametrize(("path", "reason"), FAILURES)
async def test_failures_have_plain_reasons(
    base: str, http_session: aiohttp.ClientSession, path: str, reason: str
) -> None:
    """Non-JSON, error statuses, redirects and huge bodies become ProviderUnavailable."""
    with pytest.raises(ProviderUnavailable) as caught:
        await fetch_json(
            http_session, f"{base}{path}?secret=hunter2", guard=open_guard(), timeout=5
        )
    assert reason in str(caught.value)
    assert "hunter2" not in str(caught.value)


async def test_timeout(base: str, http_session: aiohttp.ClientSession) -> None:
    """A provider slower than the timeout is reported as such."""
    with pytest.raises(ProviderUnavailable, match=r"did not answer within 0\.2 s"):
        await fetch_json(http_session, f"{base}/slow", guard=open_guard(), timeout=0.2)


async def test_connection_refused(http_session: aiohttp.ClientSession) -> None:
    """A closed port reads 'connection refused'."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ProviderUnavailable, match="connection refused"):
        await fetch_json(http_session, f"http://127.0.0.1:{port}/x", guard=open_guard(), timeout=2)


async def test_guard_runs_before_the_call(base: str, http_session: aiohttp.ClientSession) -> None:
    """The default guard refuses loopback before any request is made."""
    with pytest.raises(ProviderUnavailable, match="plain http"):
        await fetch_json(http_session, f"{base}/json", guard=AddressGuard(), timeout=2)
