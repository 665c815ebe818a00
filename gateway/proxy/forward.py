"""Stream a request to its upstream and the response back, without buffering bodies."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from gateway import metrics
from gateway.config.model import Route
from gateway.errors import BodyTooLarge, UpstreamError, UpstreamTimeout, UpstreamUnreachable
from gateway.log import request_id_var
from gateway.proxy.headers import response_headers
from gateway.proxy.upstream_client import encode_head, send
from gateway.proxy.upstream_pool import Origin, UpstreamPool
from gateway.proxy.upstream_protocol import (
    UpstreamProtocol,
    UpstreamProtocolError,
    UpstreamReadTimeout,
)

CHUNK = 64 * 1024
# Bodies up to this size are read whole and sent with the headers in one write: most
# responses are small, and each extra write is a syscall on the hot path.
SMALL_BODY = 64 * 1024
# A request of these methods without a body says so (Content-Length: 0), as aiohttp did.
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


@dataclass(frozen=True, slots=True)
class Upstream:
    """One route's upstream, compiled once: base URL, TLS context and timeouts."""

    base: URL
    host_header: str
    ssl: ssl.SSLContext | bool
    timeout: aiohttp.ClientTimeout
    origin: Origin  # the connection pool's key
    path_prefix: str  # the base URL's path, prepended to each request's
    timeouts: tuple[float, float]  # (connect, read) in seconds
    name: str = "-"  # the route's name: the label of upstream metrics

    @classmethod
    def from_route(cls, route: Route, name: str = "-") -> Upstream:
        if route.upstream is None:
            raise ValueError(f"route {name} has no upstream")
        base = URL(route.upstream)
        port = base.port
        default = 443 if base.scheme == "https" else 80
        host = base.raw_host or ""
        return cls(
            base=base,
            host_header=host if port in (None, default) else f"{host}:{port}",
            ssl=_ssl_context(route),
            timeout=aiohttp.ClientTimeout(
                total=None, sock_connect=route.timeouts.connect, sock_read=route.timeouts.read
            ),
            name=name,
            origin=Origin(host, base.port or default, _tls_context(route)),
            path_prefix=base.raw_path.rstrip("/"),
            timeouts=(route.timeouts.connect, route.timeouts.read),
        )

    def url_for(self, path: str, query_string: str) -> URL:
        """The upstream URL for a request path, keeping the client's raw encoding."""
        return URL.build(
            scheme=self.base.scheme,
            authority=self.base.raw_authority,
            path=self.base.raw_path.rstrip("/") + path,
            query_string=query_string,
            encoded=True,
        )


def _ssl_context(route: Route) -> ssl.SSLContext | bool:
    if not (route.upstream or "").startswith("https"):
        return True
    if not route.tls.verify:
        return False
    if route.tls.ca_file:
        return ssl.create_default_context(cafile=route.tls.ca_file)
    return True


def _tls_context(route: Route) -> ssl.SSLContext | None:
    """The upstream hop's TLS: verified against the CA bundle or system store, unless
    ``tls.verify`` is explicitly false."""
    if not (route.upstream or "").startswith("https"):
        return None
    context = ssl.create_default_context(cafile=route.tls.ca_file)
    if not route.tls.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


async def _limited(body: aiohttp.StreamReader, limit: int) -> AsyncIterator[bytes]:
    seen = 0
    async for chunk in body.iter_any():
        seen += len(chunk)
        if limit and seen > limit:
            raise BodyTooLarge(f"request body exceeded {limit} bytes")
        yield chunk


async def forward(
    request: web.Request,
    pool: UpstreamPool,
    upstream: Upstream,
    path: str,
    headers: CIMultiDict[str],
    *,
    max_body: int,
) -> web.StreamResponse:
    """Send ``request`` to ``upstream`` and stream the answer back to the client."""
    length = request.content_length
    if max_body and length is not None and length > max_body:
        raise BodyTooLarge(f"Content-Length {length} exceeds {max_body}")
    body = None
    chunked = False
    if request.body_exists:
        body = _limited(request.content, max_body)
        if length is not None:
            headers["Content-Length"] = str(length)
        else:
            headers["Transfer-Encoding"] = "chunked"
            chunked = True
    elif request.method in BODY_METHODS:
        headers["Content-Length"] = "0"
    query = request.rel_url.raw_query_string
    target = f"{upstream.path_prefix}{path}?{query}" if query else upstream.path_prefix + path
    head = encode_head(request.method, target, headers)
    started = time.perf_counter()
    try:
        protocol = await send(
            pool, upstream.origin, upstream.timeouts, request.method, head, body, chunked=chunked
        )
    except UpstreamError as exc:
        metrics.UPSTREAM_ERRORS.labels(upstream.name, _error_kind(exc)).inc()
        raise type(exc)(f"upstream {upstream.base}: {exc}") from None
    try:
        metrics.upstream_seconds(upstream.name).observe(time.perf_counter() - started)
        answer = UpstreamAnswer.of(protocol)
        if answer.length is not None and answer.length <= SMALL_BODY and request.method != "HEAD":
            return await _whole_response(protocol, answer, upstream)
        return await _stream_back(request, protocol, answer, upstream)
    finally:
        pool.release(upstream.origin, protocol)


def _error_kind(exc: UpstreamError) -> str:
    if isinstance(exc, UpstreamTimeout):
        return "timeout"
    return "connect" if isinstance(exc, UpstreamUnreachable) else "protocol"


@dataclass(frozen=True, slots=True)
class UpstreamAnswer:
    """The response head as the client will get it (hop-by-hop fields removed)."""

    status: int
    reason: str | None
    headers: CIMultiDict[str]
    length: int | None

    @classmethod
    def of(cls, protocol: UpstreamProtocol) -> UpstreamAnswer:
        received: CIMultiDict[str] = CIMultiDict(
            (name.decode("utf-8", "surrogateescape"), value.decode("utf-8", "surrogateescape"))
            for name, value in protocol.headers
        )
        # llhttp has checked it: digits only, one value, no Transfer-Encoding with it.
        length = received.get("Content-Length")
        return cls(
            status=protocol.status,
            reason=protocol.reason.decode("latin-1") or None,
            headers=response_headers(received),
            length=int(length) if length is not None else None,
        )


async def _whole_response(
    protocol: UpstreamProtocol, answer: UpstreamAnswer, upstream: Upstream
) -> web.Response:
    """A small body of known length, read whole: headers and body leave in one write."""
    parts = []
    try:
        while chunk := await protocol.read_chunk(upstream.timeouts[1]):
            parts.append(chunk)
    except (UpstreamProtocolError, UpstreamReadTimeout) as exc:
        metrics.UPSTREAM_ERRORS.labels(upstream.name, "stream").inc()
        raise UpstreamError(f"upstream broke off its response: {exc}") from None
    response = web.Response(
        status=answer.status,
        reason=answer.reason,
        headers=answer.headers,
        body=parts[0] if len(parts) == 1 else b"".join(parts),
    )
    response.headers["X-Request-ID"] = request_id_var.get()
    return response


async def _stream_back(
    request: web.Request, protocol: UpstreamProtocol, answer: UpstreamAnswer, upstream: Upstream
) -> web.StreamResponse:
    response = web.StreamResponse(
        status=answer.status, reason=answer.reason, headers=answer.headers
    )
    response.headers["X-Request-ID"] = request_id_var.get()
    if answer.length is not None:
        response.content_length = answer.length
    elif request.version >= aiohttp.HttpVersion11 and answer.status not in (204, 304):
        response.enable_chunked_encoding()
    await response.prepare(request)
    try:
        while chunk := await protocol.read_chunk(upstream.timeouts[1]):
            await response.write(chunk)
    except (UpstreamProtocolError, UpstreamReadTimeout, ConnectionResetError):
        # Headers are gone already: the only honest signal left is to cut the connection.
        metrics.UPSTREAM_ERRORS.labels(upstream.name, "stream").inc()
        if request.transport is not None:
            request.transport.close()
        return response
    await response.write_eof()
    return response


def is_websocket_upgrade(request: web.Request) -> bool:
    connection = request.headers.get("Connection", "").lower()
    return "upgrade" in connection and request.headers.get("Upgrade", "").lower() == "websocket"


async def forward_websocket(
    request: web.Request,
    client: aiohttp.ClientSession,
    upstream: Upstream,
    path: str,
    headers: CIMultiDict[str],
) -> web.WebSocketResponse:
    """Open the upstream WebSocket first, then accept the client's and pump both ways."""
    url = upstream.url_for(path, request.rel_url.raw_query_string)
    url = url.with_scheme("wss" if url.scheme == "https" else "ws")
    protocols = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",")]
    for name in (
        "Sec-WebSocket-Key",
        "Sec-WebSocket-Version",
        "Sec-WebSocket-Extensions",
        "Sec-WebSocket-Protocol",
    ):
        headers.popall(name, None)
    try:
        upstream_ws = await client.ws_connect(
            url,
            headers=headers,
            protocols=[p for p in protocols if p],
            ssl=upstream.ssl,
            timeout=aiohttp.ClientWSTimeout(ws_close=10),
            autoclose=False,
            autoping=True,
        )
    except (TimeoutError, aiohttp.ServerTimeoutError):
        metrics.UPSTREAM_ERRORS.labels(upstream.name, "websocket").inc()
        raise UpstreamTimeout(f"upstream websocket {url} timed out") from None
    except aiohttp.ClientError as exc:
        metrics.UPSTREAM_ERRORS.labels(upstream.name, "websocket").inc()
        raise UpstreamError(f"upstream websocket {url} failed: {exc}") from None
    client_ws = web.WebSocketResponse(
        protocols=[upstream_ws.protocol] if upstream_ws.protocol else (), autoclose=False
    )
    await client_ws.prepare(request)
    async with upstream_ws:
        await asyncio.gather(_pump(client_ws, upstream_ws), _pump(upstream_ws, client_ws))
    return client_ws


async def _pump(
    source: web.WebSocketResponse | aiohttp.ClientWebSocketResponse,
    sink: web.WebSocketResponse | aiohttp.ClientWebSocketResponse,
) -> None:
    async for message in source:
        if message.type == aiohttp.WSMsgType.TEXT:
            await sink.send_str(message.data)
        elif message.type == aiohttp.WSMsgType.BINARY:
            await sink.send_bytes(message.data)
        else:
            break
    if not sink.closed:
        await sink.close(code=source.close_code or aiohttp.WSCloseCode.OK)
