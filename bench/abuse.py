"""Unauthenticated abuse for the attack soak (`python -m bench.soak --attack`).

Each abuser loops until the deadline and tallies, per kind, what the gateway answered:
`status NNN`, `closed after ~N s` (the gateway closed the socket), or the client error.
"""

from __future__ import annotations

import asyncio
import collections
import time

import aiohttp

MIB = 1024 * 1024
HTML = {"Accept": "text/html"}


class Abuse:
    """Tallies per abuse kind; the abusers share one gateway and its internal listener."""

    def __init__(self, base: str, port: int, internal: str, deadline: float) -> None:
        self.base = base
        self.port = port
        self.internal = internal
        self.deadline = deadline
        self.seen: dict[str, collections.Counter[str]] = collections.defaultdict(
            collections.Counter
        )

    def note(self, kind: str, what: str) -> None:
        self.seen[kind][what] += 1

    def tasks(self, scale: int) -> list[asyncio.Task[None]]:
        """``scale`` concurrent abusers of each kind (idle and half-sent: 20 per unit)."""
        jobs = []
        for i in range(scale):
            jobs += [self.navigations(i), self.oversized(i), self.bad_tokens(i)]
            jobs += [self.idle(i) for _ in range(20)]
            jobs += [self.half_sent(i) for _ in range(20)]
        return [asyncio.create_task(job) for job in jobs]

    def running(self) -> bool:
        return time.monotonic() < self.deadline

    async def navigations(self, n: int) -> None:
        """Unauthenticated page loads: each one starts a login (a login state)."""
        jar = aiohttp.DummyCookieJar()
        async with aiohttp.ClientSession(cookie_jar=jar) as http:
            i = 0
            while self.running():
                i += 1
                url = f"{self.base}/flood/{n}/{i}"
                try:
                    async with http.get(url, headers=HTML, allow_redirects=False) as r:
                        self.note("unauthenticated navigation", f"status {r.status}")
                except aiohttp.ClientError as exc:
                    self.note("unauthenticated navigation", type(exc).__name__)

    async def oversized(self, n: int) -> None:
        """Heads declaring 10 MiB to logout and back-channel logout, then the body itself."""
        while self.running():
            for path in ("/_gateway/logout", "/_gateway/backchannel-logout"):
                await self._oversized_once(path)

    async def _oversized_once(self, path: str) -> None:
        kind = "oversized body (10 MiB)"
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        except OSError as exc:
            self.note(kind, type(exc).__name__)
            return
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {10 * MIB}\r\n\r\n"
        ).encode()
        try:
            writer.write(head)
            sender = asyncio.create_task(_send_zeros(writer, 10 * MIB))
            line = await asyncio.wait_for(reader.readline(), 30)
            sender.cancel()
            self.note(kind, f"status {line.split(b' ')[1].decode()}" if line else "closed")
        except (OSError, TimeoutError, IndexError) as exc:
            self.note(kind, type(exc).__name__)
        finally:
            writer.close()

    async def bad_tokens(self, n: int) -> None:
        """Wrong admin tokens on the internal listener."""
        url = f"{self.internal}/_gateway/admin/sessions?sub=x"
        bad = {"Authorization": f"Bearer wrong-{n}-" + "x" * 40}
        async with aiohttp.ClientSession() as http:
            while self.running():
                try:
                    async with http.get(url, headers=bad) as r:
                        self.note("bad admin token", f"status {r.status}")
                except aiohttp.ClientError as exc:
                    self.note("bad admin token", type(exc).__name__)
                await asyncio.sleep(0.05)

    async def idle(self, n: int) -> None:
        """Connections that never send a byte."""
        await self._hold("idle connection", b"")

    async def half_sent(self, n: int) -> None:
        """A request head that never ends."""
        await self._hold("half-sent request", b"GET /page HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A: ")

    async def _hold(self, kind: str, first: bytes) -> None:
        while self.running():
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError as exc:
                self.note(kind, type(exc).__name__)
                await asyncio.sleep(1)
                continue
            opened = time.monotonic()
            writer.write(first)
            left = self.deadline - opened
            try:
                data = await asyncio.wait_for(reader.read(4096), max(left, 0.1))
                took = time.monotonic() - opened
                status = data.split(b" ")[1].decode() if data.startswith(b"HTTP/") else ""
                self.note(kind, f"status {status}" if status else f"closed after ~{took:.0f} s")
            except TimeoutError:
                self.note(kind, "still open at the end")
            except OSError as exc:
                self.note(kind, type(exc).__name__)
            finally:
                writer.close()


async def _send_zeros(writer: asyncio.StreamWriter, total: int) -> None:
    chunk = b"0" * (256 * 1024)
    try:
        for _ in range(total // len(chunk)):
            writer.write(chunk)
            await writer.drain()
    except OSError:
        pass  # the gateway closed: expected once it has answered
