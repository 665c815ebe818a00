"""HTTP/1.1 on raw asyncio sockets: a scripted (mis)behaving upstream and a strict client.

Neither side uses an HTTP library, so what the gateway sends and receives is judged byte
for byte, not through another parser's leniency.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field

# What a case answers: the raw writes (a short pause between them, so the gateway sees the
# first before the next), and whether to close the connection after.
Script = Callable[[str, str], tuple[list[bytes], bool]]


def ok_response(path: str) -> bytes:
    body = f"ok {path}".encode()
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)


@dataclass
class RawUpstream:
    """A loopback upstream that answers ``/case/<name>`` with a script, anything else cleanly.

    ``seen`` records (connection number, method, path) for every request read, so a test
    can tell whether the gateway reused a connection after a given answer.
    """

    scripts: dict[str, Script]
    seen: list[tuple[int, str, str]] = field(default_factory=list)
    port: int = 0
    _server: asyncio.Server | None = None
    _connections: int = 0
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        for writer in list(self._writers):
            writer.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def connection_of(self, path: str) -> int:
        return next(conn for conn, _, seen_path in self.seen if seen_path == path)

    def requests_on(self, conn: int) -> list[str]:
        return [path for number, _, path in self.seen if number == conn]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._connections += 1
        conn = self._connections
        self._writers.add(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length" and value.strip():
                        await reader.readexactly(int(value))
                self.seen.append((conn, method, target))
                name = target.removeprefix("/case/") if target.startswith("/case/") else ""
                script = self.scripts.get(name)
                parts, close = script(method, target) if script else ([ok_response(target)], False)
                for number, part in enumerate(parts):
                    if number:
                        await asyncio.sleep(0.05)
                    writer.write(part)
                    await writer.drain()
                if close:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


@dataclass
class RawResponse:
    """One response as a strict client read it; ``complete`` is False when the connection
    was cut before the framing said the response ended."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes
    complete: bool

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


class RawClient:
    """One keep-alive client connection to the gateway, read with strict framing."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, port: int) -> RawClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()

    async def request(self, method: str, path: str) -> RawResponse:
        self.writer.write(f"{method} {path} HTTP/1.1\r\nHost: app.test\r\n\r\n".encode())
        await self.writer.drain()
        return await asyncio.wait_for(self._read(method), 10)

    async def at_eof(self) -> bool:
        """True when the gateway closed this connection (nothing more to read)."""
        try:
            extra = await asyncio.wait_for(self.reader.read(1), 5)
        except ConnectionError:
            return True
        return extra == b""

    async def _read(self, method: str) -> RawResponse:
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")[:-2]
        status = int(lines[0].split(" ")[1])
        headers = [(k.strip(), v.strip()) for k, _, v in (x.partition(":") for x in lines[1:])]
        response = RawResponse(status, headers, b"", True)
        if method == "HEAD" or status in (204, 304):
            return response
        try:
            if (response.header("Transfer-Encoding") or "").lower() == "chunked":
                response.body = await self._chunked()
            elif (length := response.header("Content-Length")) is not None:
                response.body = await self.reader.readexactly(int(length))
            else:
                response.body = await self.reader.read()
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            response.complete = False
        return response

    async def _chunked(self) -> bytes:
        body = b""
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await self.reader.readuntil(b"\r\n")
                return body
            body += await self.reader.readexactly(size)
            if await self.reader.readexactly(2) != b"\r\n":
                raise ValueError("bad chunk end")
