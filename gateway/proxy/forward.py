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
from gateway.errors import (
    BodyTimeout,
    BodyTooLarge,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnreachable,
)
from gateway.log import request_id_var
from gateway.proxy.headers import response_headers
from gateway.proxy.lingering import skip_lingering
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


class _RequestBody:
    """The client's body as the upstream request's data: at most ``limit`` bytes (0: any),
    and no pause longer than ``idle`` seconds between chunks."""

    __slots__ = ("_idle", "_limit", "_source")

    def __init__(self, source: aiohttp.StreamReader, limit: int, idle: float) -> None:
        self._source = source
        self._limit = limit
        self._idle = idle

    async def __aiter__(self) -> AsyncIterator[bytes]:
        seen = 0
        while True:
            # The clock runs only while waiting for the client: a slow upstream pauses
            # this loop (back-pressure), not the client, and is not counted.
            try:
                async with asyncio.timeout(self._idle):
                    chunk = await self._source.readany()
            except TimeoutError:
                raise BodyTimeout(f"request body stalled for {self._idle:g} s") from None
            if not chunk:
                return
            seen += len(chunk)
            if self._limit and seen > self._limit:
                raise BodyTooLarge(f"request body exceeded {self._limit} bytes")
            yield chunk


async def forward(
    request: web.Request,
    pool: UpstreamPool,
    upstream: Upstream,
    path: str,
    headers: CIMultiDict[str],
    *,
    max_body: int,
    body_idle: float,
) -> web.StreamResponse:
    """Send ``request`` to ``upstream`` and stream the answer back to the client."""
    length = request.content_length
    if max_body and length is not None and length > max_body:
        raise BodyTooLarge(f"Content-Length {length} exceeds {max_body}")
    body = None
    chunked = False
    if request.body_exists:
        body = _RequestBody(request.content, max_body, body_idle).__aiter__()
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
    except BodyTimeout:
        # The client, not the upstream, failed: answer 408 and close without waiting any
        # longer for the rest of its body.
        skip_lingering(request)
        raise
    try:
        metrics.observe_upstream(upstream.name, time.perf_counter() - started)
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
