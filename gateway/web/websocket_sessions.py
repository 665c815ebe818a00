"""Open WebSockets by the session they were opened under, closed when that session ends.

A socket outlives the request that authenticated it, so the session is checked again:
every ``sessions.websocket_check_interval`` seconds (one store read for all sockets of
this process, never one per message), and at once when the store's invalidation channel
says a watched session changed or ended on any instance (logout, back-channel logout,
admin revocation). A socket whose session is gone or expired is closed with 1008.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterator, Callable, Collection, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any

from aiohttp import web

from gateway.errors import StoreUnavailable
from gateway.proxy.websocket import Relay
from gateway.sessions.codec import Ticket
from gateway.sessions.manager import SessionManager
from gateway.web.keys import SERVICES

log = logging.getLogger("gateway.websocket")

# RFC 6455 7.4.1 "policy violation": the standard code for "no longer allowed"; the
# reason tells a page why, so it can send the user to sign in again.
SESSION_ENDED_CODE = 1008
SESSION_ENDED_REASON = "session ended"


class SessionSockets:
    """The sockets of each watched session (by ticket) and when each session ends if unused."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.manager: SessionManager | None = None  # set by the cleanup context
        self.interval = 5.0
        self._clock = clock
        self._sockets: dict[str, set[Relay]] = {}
        self._tickets: dict[str, str] = {}  # handle -> ticket, for invalidation messages
        self._deadlines: dict[str, float] = {}  # ticket -> last known end, if the store fails
        self._tasks: set[asyncio.Task[None]] = set()

    @contextmanager
    def watching(self, ticket: str, relay: Relay) -> Iterator[None]:
        """Watch ``relay`` for as long as the block runs."""
        parsed = Ticket.parse(ticket)
        if parsed is None:  # cannot happen: the ticket just opened a session
            raise ValueError("not a session ticket")
        self._sockets.setdefault(ticket, set()).add(relay)
        self._tickets[parsed.handle] = ticket
        try:
            yield
        finally:
            relays = self._sockets.get(ticket)
            if relays is not None:
                relays.discard(relay)
                if not relays:
                    self._forget(ticket, parsed.handle)

    async def check(self, tickets: Collection[str]) -> None:
        """Read the sessions of ``tickets`` once; close the sockets of those that ended."""
        tickets = [t for t in tickets if t in self._sockets]
        if not tickets or self.manager is None:
            return
        try:
            deadlines = await self.manager.deadlines(tickets)
        except StoreUnavailable as exc:
            # A logout cannot happen while the store is down; expiry still can.
            log.warning("websocket session check failed, using the last known expiry: %s", exc)
            deadlines = {t: self._deadlines.get(t, math.inf) for t in tickets}
        now = self._clock()
        for ticket in tickets:
            deadline = deadlines.get(ticket)
            if deadline is None or deadline <= now:
                self._end(ticket)
            elif ticket in self._sockets:  # its sockets may have closed during the read
                self._deadlines[ticket] = deadline

    def changed(self, handles: list[str]) -> None:
        """Invalidation listener: re-check at once the watched sessions among ``handles``."""
        tickets = [self._tickets[h] for h in handles if h in self._tickets]
        if tickets:
            self._spawn(self._check_logged(tickets))

    async def run(self) -> None:
        """Re-check every watched session each interval, until cancelled."""
        while True:
            await asyncio.sleep(self.interval)
            await self._check_logged(list(self._sockets))

    async def _check_logged(self, tickets: Collection[str]) -> None:
        try:
            await self.check(tickets)
        except Exception:
            # The next interval tries again; one bad check must not stop the watch.
            log.exception("websocket session check failed")

    async def close(self) -> None:
        """Wait for closes still under way (each is bounded by the close timeout)."""
        if self._tasks:
            await asyncio.wait(self._tasks)

    def _end(self, ticket: str) -> None:
        relays = self._sockets.get(ticket, set())
        parsed = Ticket.parse(ticket)
        if parsed is not None:
            self._forget(ticket, parsed.handle)
        for relay in relays:
            self._spawn(relay.end(SESSION_ENDED_CODE, SESSION_ENDED_REASON))
        if relays:
            log.info(
                "closed %d websocket(s): their session ended",
                len(relays),
                extra={"session": parsed.handle[:12] if parsed else "-"},
            )

    def _forget(self, ticket: str, handle: str) -> None:
        self._sockets.pop(ticket, None)
        self._tickets.pop(handle, None)
        self._deadlines.pop(ticket, None)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)  # a strong reference until it is done
        task.add_done_callback(self._tasks.discard)


WEBSOCKET_SESSIONS: web.AppKey[SessionSockets] = web.AppKey("websocket_sessions", SessionSockets)


async def websocket_watchdog(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context (after the clients): watch session sockets while the app runs."""
    services = app[SERVICES]
    if services.login is None:
        yield
        return
    sockets = app[WEBSOCKET_SESSIONS]
    sockets.manager = services.login.manager
    sockets.interval = services.config.sessions.websocket_check_interval
    await sockets.manager.on_change(sockets.changed)
    loop = asyncio.create_task(sockets.run(), name="websocket-session-checks")
    try:
        yield
    finally:
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)
        await sockets.close()
