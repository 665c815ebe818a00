"""The WebSocket relay: open the upstream socket, accept the client's, pump both ways."""

from __future__ import annotations

import asyncio

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

from gateway import metrics
from gateway.errors import UpstreamError, UpstreamTimeout
from gateway.proxy.forward import Upstream

# Negotiated end to end by the two handshakes, never copied from one to the other.
HANDSHAKE_HEADERS = (
    "Sec-WebSocket-Key",
    "Sec-WebSocket-Version",
    "Sec-WebSocket-Extensions",
    "Sec-WebSocket-Protocol",
)
CLOSE_TIMEOUT = 10.0  # seconds to wait for the other side's close frame

Socket = web.WebSocketResponse | aiohttp.ClientWebSocketResponse


def is_websocket_upgrade(request: web.Request) -> bool:
    connection = request.headers.get("Connection", "").lower()
    return "upgrade" in connection and request.headers.get("Upgrade", "").lower() == "websocket"


async def connect_upstream(
    request: web.Request,
    client: aiohttp.ClientSession,
    upstream: Upstream,
    path: str,
    headers: CIMultiDict[str],
) -> aiohttp.ClientWebSocketResponse:
    """The upstream half, opened before the client's is accepted (so failures are 502/504)."""
    url = upstream.url_for(path, request.rel_url.raw_query_string)
    url = url.with_scheme("wss" if url.scheme == "https" else "ws")
    protocols = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",")]
    for name in HANDSHAKE_HEADERS:
        headers.popall(name, None)
    try:
        return await client.ws_connect(
            url,
            headers=headers,
            protocols=[p for p in protocols if p],
            ssl=upstream.ssl,
            timeout=aiohttp.ClientWSTimeout(ws_close=CLOSE_TIMEOUT),
            autoclose=False,
            autoping=True,
        )
    except (TimeoutError, aiohttp.ServerTimeoutError):
        metrics.UPSTREAM_ERRORS.labels(upstream.name, "websocket").inc()
        raise UpstreamTimeout(f"upstream websocket {url} timed out") from None
    except aiohttp.ClientError as exc:
        metrics.UPSTREAM_ERRORS.labels(upstream.name, "websocket").inc()
        raise UpstreamError(f"upstream websocket {url} failed: {exc}") from None


async def accept_client(
    request: web.Request, upstream_ws: aiohttp.ClientWebSocketResponse
) -> web.WebSocketResponse:
    """The client half, offering the subprotocol the upstream chose."""
    client_ws = web.WebSocketResponse(
        protocols=[upstream_ws.protocol] if upstream_ws.protocol else (),
        autoclose=False,
        timeout=CLOSE_TIMEOUT,
    )
    await client_ws.prepare(request)
    return client_ws


class Relay:
    """A client socket joined to an upstream socket; ``end`` closes both from outside."""

    def __init__(
        self, client_ws: web.WebSocketResponse, upstream_ws: aiohttp.ClientWebSocketResponse
    ) -> None:
        self.client_ws = client_ws
        self.upstream_ws = upstream_ws
        self._ending: tuple[int, bytes] | None = None

    async def run(self) -> None:
        """Pump messages both ways until either side closes."""
        await asyncio.gather(
            self._pump(self.client_ws, self.upstream_ws),
            self._pump(self.upstream_ws, self.client_ws),
        )

    async def end(self, code: int, reason: str) -> None:
        """Close both sides with ``code``; the pumps then stop on their own."""
        self._ending = code, reason.encode("utf-8")
        await asyncio.gather(
            self.upstream_ws.close(code=code, message=self._ending[1]),
            self.client_ws.close(code=code, message=self._ending[1]),
            return_exceptions=True,
        )

    async def _pump(self, source: Socket, sink: Socket) -> None:
        async for message in source:
            try:
                if message.type == aiohttp.WSMsgType.TEXT:
                    await sink.send_str(message.data)
                elif message.type == aiohttp.WSMsgType.BINARY:
                    await sink.send_bytes(message.data)
                else:
                    break
            except ConnectionResetError:
                break  # the sink is closing (its peer left, or the relay was ended)
        if sink.closed:
            return
        if self._ending is not None:
            # end() is closing the sink too, but may still be waiting for a reader to stop:
            # whoever gets there first must send end()'s code, not a plain 1000.
            await sink.close(code=self._ending[0], message=self._ending[1])
        else:
            await sink.close(code=source.close_code or aiohttp.WSCloseCode.OK)
