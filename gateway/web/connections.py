"""Client connections: a deadline for each request head and bounds on open connections.

aiohttp closes idle keep-alive connections (``keepalive_timeout``) but has no deadline for
a request head that arrives byte by byte, and no bound on connections, in all or from one
client address; these are added here.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from typing import Any, cast

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from gateway.config.model import Config
from gateway.proxy.lingering import skip_lingering
from gateway.web.access_log import GatewayAccessLogger, access_log

# Sent to a connection beyond the limit, then closed: a browser or client sees why.
_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"Content-Type: text/plain\r\nContent-Length: 21\r\nConnection: close\r\n\r\n"
    b"Too many connections\n"
)

_BUSY_CLIENT = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"Content-Type: text/plain\r\nContent-Length: 38\r\nConnection: close\r\n\r\n"
    b"Too many connections from your address\n"
)


class ConnectionCount:
    """Open connections of one listener, in all and per client address; shared by its
    request handlers."""

    __slots__ = ("by_client", "limit", "open", "per_client", "refused")

    def __init__(self, limit: int, per_client: int = 0) -> None:
        self.open = 0
        self.limit = limit
        self.per_client = per_client  # 0: no per-address cap
        self.by_client: dict[str, int] = {}
        self.refused = 0

    def admit(self, client: str) -> bool:
        """Count a connection from ``client``; False (uncounted) when it is over its cap."""
        held = self.by_client.get(client, 0)
        if self.per_client and held >= self.per_client:
            return False
        self.by_client[client] = held + 1
        return True

    def release(self, client: str) -> None:
        held = self.by_client.get(client, 0) - 1
        if held > 0:
            self.by_client[client] = held
        else:
            # Drop the entry: a flood from many addresses must not leave a dict behind.
            self.by_client.pop(client, None)


class HeadDeadlineHandler(RequestHandler):
    """aiohttp's handler, closing connections whose request head is not complete in time.

    The deadline runs from opening the connection, and from the first byte of each further
    request; idle time between requests is aiohttp's keepalive_timeout.
    """

    __slots__ = ("_client", "_count", "_counted", "_head_timeout", "_head_timer")

    def __init__(
        self, manager: web.Server, *, head_timeout: float, count: ConnectionCount, **kwargs: Any
    ) -> None:
        super().__init__(manager, **kwargs)
        self._head_timeout = head_timeout
        self._head_timer: asyncio.TimerHandle | None = None
        self._count = count
        self._counted = False
        self._client: str | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._count.open += 1
        self._counted = True
        super().connection_made(transport)
        client = _peer_address(transport)
        if client is not None:
            if not self._count.admit(client):
                # The handler's task is running already: closing the transport ends it
                # through connection_lost, which also undoes the count above.
                self._count.refused += 1
                cast(asyncio.WriteTransport, transport).write(_BUSY_CLIENT)
                transport.close()
                return
            self._client = client
        self._arm()

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._counted:
            self._count.open -= 1
            self._counted = False
        if self._client is not None:
            self._count.release(self._client)
            self._client = None
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        heads = self._request_count
        super().data_received(data)
        if self._request_count != heads:
            self._disarm()  # a head is complete: the request's handler runs now
        elif self._head_timer is None and data and self._waiting_for_head():
            self._arm()

    def _waiting_for_head(self) -> bool:
        # Between requests start() awaits _waiter; while a handler runs (and reads the body)
        # there is no waiter, and body bytes must not start a head deadline.
        return self._waiter is not None and not self._waiter.done()

    def _arm(self) -> None:
        self._head_timer = self._loop.call_later(
            self._head_timeout, self._expire, self._request_count
        )

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _expire(self, heads: int) -> None:
        self._head_timer = None
        if self._request_count == heads and self._waiting_for_head():
            self.force_close()


def _peer_address(transport: asyncio.BaseTransport) -> str | None:
    """The TCP peer's address (not its port); None for a socket without one."""
    peer = transport.get_extra_info("peername")
    if isinstance(peer, tuple) and peer and isinstance(peer[0], str):
        return peer[0]
    return None


class _Refused(asyncio.Protocol):
    """A connection beyond the limit: a short 503, then closed."""

    def __init__(self, count: ConnectionCount) -> None:
        self._count = count

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._count.refused += 1
        cast(asyncio.WriteTransport, transport).write(_BUSY)  # uvloop's is not a subclass
        transport.close()


class ConnectionFactory:
    """The listener's protocol factory: a deadline-keeping handler, or a refusal when full."""

    def __init__(
        self,
        server: web.Server,
        *,
        head_timeout: float,
        limit: int,
        handler_args: dict[str, Any],
        per_client: int = 0,
    ) -> None:
        self.server = server
        self.count = ConnectionCount(limit, per_client)
        self._head_timeout = head_timeout
        self._handler_args = handler_args

    def __call__(self) -> asyncio.Protocol:
        if self.count.open >= self.count.limit:
            return _Refused(self.count)
        return HeadDeadlineHandler(
            self.server,
            head_timeout=self._head_timeout,
            count=self.count,
            loop=asyncio.get_running_loop(),
            **self._handler_args,
        )


class BoundedSite(web.BaseSite):
    """A TCP listener of ``runner`` whose connections come from a ConnectionFactory."""

    __slots__ = ("_factory", "_host", "_port", "_reuse_port")

    def __init__(
        self,
        runner: web.BaseRunner,
        factory: ConnectionFactory,
        host: str,
        port: int,
        *,
        ssl_context: ssl.SSLContext | None = None,
        reuse_port: bool = False,
        backlog: int = 1024,
    ) -> None:
        super().__init__(runner, ssl_context=ssl_context, backlog=backlog)
        self._factory = factory
        self._host = host
        self._port = port
        self._reuse_port = reuse_port and hasattr(socket, "SO_REUSEPORT")

    @property
    def name(self) -> str:
        scheme = "https" if self._ssl_context else "http"
        return f"{scheme}://{self._host}:{self._port}"

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._factory,
            self._host,
            self._port,
            ssl=self._ssl_context,
            backlog=self._backlog,
            reuse_address=True,
            reuse_port=self._reuse_port or None,
        )


def bounded_site(
    runner: web.BaseRunner,
    config: Config,
    host: str,
    port: int,
    *,
    ssl_context: ssl.SSLContext | None = None,
    reuse_port: bool = False,
) -> BoundedSite:
    """A listener of ``runner`` (already set up) with the timeouts and bounds of ``listen``."""
    server = runner.server
    assert server is not None, "runner.setup() first"
    factory = ConnectionFactory(
        server,
        head_timeout=config.listen.header_timeout,
        limit=config.listen.max_connections,
        per_client=config.listen.max_connections_per_client,
        handler_args=handler_args(config),
    )
    return BoundedSite(runner, factory, host, port, ssl_context=ssl_context, reuse_port=reuse_port)


def close_unread(request: web.BaseRequest, response: web.StreamResponse) -> None:
    """Close the connection once ``response`` is sent, without reading the body's rest.

    aiohttp otherwise keeps reading ("lingering") an unread body for 10 s after the answer,
    at line speed: hundreds of MiB a refused client could make the gateway read for nothing.
    """
    response.force_close()
    skip_lingering(request)


def handler_args(config: Config) -> dict[str, Any]:
    """aiohttp request-handler settings from the config (header sizes, idle timeout)."""
    return {
        # Our access line, written after the response is sent (see access_log.py).
        "access_log": access_log,
        "access_log_class": GatewayAccessLogger,
        "keepalive_timeout": config.listen.keepalive_timeout,
        "max_line_size": config.limits.max_header_size,
        "max_field_size": config.limits.max_header_size,
    }
