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
from gateway.errors import BodyTimeout, BodyTooLarge, UpstreamError, UpstreamTimeout
from gateway.log import request_id_var
from gateway.proxy.headers import response_headers
from gateway.proxy.lingering import skip_lingering

CHUNK = 64 * 1024
# Bodies up to this size are read whole and sent with the headers in one write: most
# responses are small, and each extra write is a syscall on the hot path.
SMALL_BODY = 64 * 1024


@dataclass(frozen=True, slots=True)
class Upstream:
    """One route's upstream, compiled once: base URL, TLS context and timeouts."""

    base: URL
    host_header: str
    ssl: ssl.SSLContext | bool
    timeout: aiohttp.ClientTimeout
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


class _RequestBody:
    """The client's body as the upstream request's data: at most ``limit`` bytes (0: any),
    and no pause longer than ``idle`` seconds between chunks."""

    __slots__ = ("_idle", "_limit", "_source", "stalled")

    def __init__(self, source: aiohttp.StreamReader, limit: int, idle: float) -> None:
        self._source = source
        self._limit = limit
        self._idle = idle
        self.stalled = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        seen = 0
        while True:
            # The clock runs only while waiting for the client: a slow upstream pauses
            # this loop (back-pressure), not the client, and is not counted.
            try:
                async with asyncio.timeout(self._idle):
                    chunk = await self._source.readany()
            except TimeoutError:
                self.stalled = True
                raise BodyTimeout(f"request body stalled for {self._idle:g} s") from None
            if not chunk:
                return
            seen += len(chunk)
            if self._limit and seen > self._limit:
                raise BodyTooLarge(f"request body exceeded {self._limit} bytes")
            yield chunk


async def forward(
    request: web.Request,
    client: aiohttp.ClientSession,
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
    if request.body_exists:
        body = _RequestBody(request.content, max_body, body_idle)
        if length is not None:
            headers["Content-Length"] = str(length)
    url = upstream.url_for(path, request.rel_url.raw_query_string)
    started = time.perf_counter()
    try:
        upstream_response = await client.request(
            request.method,
            url,
            headers=headers,
            data=body.__aiter__() if body is not None else None,
            ssl=upstream.ssl,
            timeout=upstream.timeout,
            allow_redirects=False,
            chunked=None if length is not None or body is None else True,
        )
    except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
        metrics.UPSTREAM_ERRORS.labels(upstream.name, "timeout").inc()
        raise UpstreamTimeout(f"upstream {upstream.base} timed out: {type(exc).__name__}") from None
    except aiohttp.ClientConnectorError as exc:
        metrics.UPSTREAM_ERRORS.labels(upstream.name, "connect").inc()
        raise UpstreamError(f"cannot connect to upstream {upstream.base}: {exc.os_error}") from None
    except aiohttp.ClientError as exc:
        if body is not None and body.stalled:
            # The client, not the upstream, failed: answer 408 and close without
            # waiting any longer for the rest of its body.
            skip_lingering(request)
            raise BodyTimeout(f"request body stalled for {body_idle:g} s") from None
        metrics.UPSTREAM_ERRORS.labels(upstream.name, "protocol").inc()
        raise UpstreamError(f"upstream {upstream.base} failed: {exc}") from None
    metrics.upstream_seconds(upstream.name).observe(time.perf_counter() - started)
    async with upstream_response:
        length = upstream_response.content_length
        if length is not None and length <= SMALL_BODY and request.method != "HEAD":
            return await _whole_response(upstream_response, upstream.name)
        return await _stream_back(request, upstream_response, upstream.name)


async def _whole_response(upstream_response: aiohttp.ClientResponse, route: str) -> web.Response:
    """A small body of known length, read whole: headers and body leave in one write."""
    try:
        body = await upstream_response.read()
    except (TimeoutError, aiohttp.ClientError) as exc:
        metrics.UPSTREAM_ERRORS.labels(route, "stream").inc()
        raise UpstreamError(f"upstream broke off its response: {type(exc).__name__}") from None
    response = web.Response(
        status=upstream_response.status,
        reason=upstream_response.reason,
        headers=response_headers(upstream_response.headers),
        body=body,
    )
    response.headers["X-Request-ID"] = request_id_var.get()
    return response


async def _stream_back(
    request: web.Request, upstream_response: aiohttp.ClientResponse, route: str
) -> web.StreamResponse:
    response = web.StreamResponse(
        status=upstream_response.status,
        reason=upstream_response.reason,
        headers=response_headers(upstream_response.headers),
    )
    response.headers["X-Request-ID"] = request_id_var.get()
    length = upstream_response.content_length
    if length is not None:
        response.content_length = length
    elif request.version >= aiohttp.HttpVersion11 and upstream_response.status not in (204, 304):
        response.enable_chunked_encoding()
    await response.prepare(request)
    try:
        async for chunk in upstream_response.content.iter_chunked(CHUNK):
            await response.write(chunk)
    except (TimeoutError, aiohttp.ClientError, ConnectionResetError):
        # Headers are gone already: the only honest signal left is to cut the connection.
        metrics.UPSTREAM_ERRORS.labels(route, "stream").inc()
        if request.transport is not None:
            request.transport.close()
        return response
    await response.write_eof()
    return response
