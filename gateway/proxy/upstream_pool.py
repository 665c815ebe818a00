"""Keep-alive connections to upstreams, pooled per (host, port, TLS context)."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from dataclasses import dataclass

from gateway.proxy.upstream_protocol import UpstreamProtocol

# Idle connections older than this are closed rather than reused (aiohttp's was 60 s too).
IDLE_SECONDS = 60.0
MAX_IDLE_PER_UPSTREAM = 256
# Connections in use per origin at most (aiohttp's limit_per_host was 256): a burst waits
# for a free one instead of opening thousands against one upstream.
MAX_ACTIVE_PER_UPSTREAM = 256


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a connection goes: a pool key. TLS contexts compare by identity."""

    host: str
    port: int
    tls: ssl.SSLContext | None


class UpstreamPool:
    """Idle connections per origin, most recently used first; only clean ones come back."""

    def __init__(self) -> None:
        self._idle: dict[Origin, deque[tuple[UpstreamProtocol, float]]] = {}
        self._slots: dict[Origin, asyncio.Semaphore] = {}
        self._closing = False
        self._swept = time.monotonic()

    async def enter(self, origin: Origin) -> None:
        """Wait for one of the origin's connection slots; ``leave`` or ``release`` frees it."""
        slots = self._slots.get(origin)
        if slots is None:
            slots = self._slots[origin] = asyncio.Semaphore(MAX_ACTIVE_PER_UPSTREAM)
        await slots.acquire()

    def leave(self, origin: Origin) -> None:
        self._slots[origin].release()

    async def connect(self, origin: Origin, within: float) -> UpstreamProtocol:
        """A new connection (TLS through the ssl module's context when ``origin.tls``)."""
        loop = asyncio.get_running_loop()
        _, protocol = await asyncio.wait_for(
            loop.create_connection(
                lambda: UpstreamProtocol(loop),
                origin.host,
                origin.port,
                ssl=origin.tls,
                server_hostname=origin.host if origin.tls is not None else None,
            ),
            within,
        )
        return protocol

    def take(self, origin: Origin) -> UpstreamProtocol | None:
        """An idle connection still open and fresh, or None."""
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            protocol, since = idle.pop()
            if not protocol.closed and now - since < IDLE_SECONDS:
                return protocol
            protocol.close()
        return None

    def release(self, origin: Origin, protocol: UpstreamProtocol) -> None:
        """Pool a connection whose exchange ended cleanly; close any other. Frees the slot."""
        self.leave(origin)
        protocol.finish()
        if not protocol.reusable or self._closing:
            protocol.close()
            return
        now = time.monotonic()
        if now - self._swept > IDLE_SECONDS:
            self._sweep(now)
        idle = self._idle.setdefault(origin, deque())
        # The least recently used end: after a burst, steady traffic reuses only the most
        # recent connections, so stale ones are closed here rather than kept open.
        while idle and (idle[0][0].closed or now - idle[0][1] >= IDLE_SECONDS):
            idle.popleft()[0].close()
        if len(idle) >= MAX_IDLE_PER_UPSTREAM:
            idle.popleft()[0].close()
        idle.append((protocol, now))

    def _sweep(self, now: float) -> None:
        """Close stale idle connections of every origin, also of origins no route names
        any more (a reload compiles new TLS contexts, so new pool keys)."""
        self._swept = now
        for origin, idle in list(self._idle.items()):
            fresh = deque(e for e in idle if not e[0].closed and now - e[1] < IDLE_SECONDS)
            for protocol, since in idle:
                if protocol.closed or now - since >= IDLE_SECONDS:
                    protocol.close()
            if fresh:
                self._idle[origin] = fresh
            else:
                del self._idle[origin]

    def close(self) -> None:
        self._closing = True
        for idle in self._idle.values():
            for protocol, _ in idle:
                protocol.close()
        self._idle.clear()
