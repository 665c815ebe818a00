"""One upstream HTTP/1.1 connection: strict response framing (llhttp) and flow control.

The connection serves one exchange at a time. It may go back to the pool only after a
final response was read completely and cleanly, with nothing after it; anything else
(a parse error, stray bytes, an early close, a HEAD answer whose body the parser cannot
be told to skip) leaves it unusable, and the pool closes it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import cast

import httptools

# A response head larger than this is refused (nginx's default buffer is 4-8 KiB).
MAX_HEAD = 64 * 1024
# Body bytes buffered before reading from the upstream pauses (backpressure), and resumes.
HIGH_WATER = 256 * 1024
LOW_WATER = 64 * 1024


class UpstreamProtocolError(Exception):
    """The upstream's answer broke HTTP/1.1 framing or closed early (a 502 or a cut)."""


class UpstreamReadTimeout(Exception):
    """No byte arrived (or could be written) within the read timeout (a 504 or a cut)."""


class UpstreamProtocol(asyncio.Protocol):
    """An upstream connection, read with httptools' llhttp parser in its strict mode."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.used = False  # has served an exchange before (a pooled, reused connection)
        self._busy = False
        self._waiter: asyncio.Future[None] | None = None
        self._write_paused = False
        self._reset(head_only=False)

    def _reset(self, *, head_only: bool) -> None:
        self._parser = httptools.HttpResponseParser(self)
        self._head_only = head_only
        self._head_bytes = 0  # bytes received before the head ended (bounds memory)
        self._head_size = 0  # the final head's header lines (a whole head in one read)
        self._head_done = False
        self._interim = False
        self._complete = False
        self._keep_alive = False
        self._stray = False
        self._close_delimited = False
        self._error: str | None = None
        self.status = 0
        self.reason = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._reading_paused = False

    # -- the exchange, as the proxy drives it ------------------------------------------

    def begin(self, *, head_only: bool) -> None:
        """Start an exchange; ``head_only`` for HEAD (the answer ends with its head)."""
        if self.used:
            self._reset(head_only=head_only)
        self._head_only = head_only
        self._busy = True

    def write(self, data: bytes) -> None:
        if self.transport is None or self.closed:
            raise UpstreamProtocolError("connection closed while sending the request")
        self.transport.write(data)

    async def drain(self, within: float) -> None:
        """Wait until the upstream takes our bytes (backpressure on request bodies)."""
        while self._write_paused and not self.closed:
            await self._wait(within)
        if self.closed and not self._head_done:
            raise UpstreamProtocolError("connection closed while sending the request")

    async def read_head(self, within: float) -> None:
        while not self._head_done and self._error is None and not self.closed:
            await self._wait(within)
        if self._error is not None:
            raise UpstreamProtocolError(self._error)
        if not self._head_done:
            raise UpstreamProtocolError("connection closed before a response")

    @property
    def received_nothing(self) -> bool:
        """No byte of an answer arrived: a reused connection the upstream had closed."""
        return self._head_bytes == 0 and not self._head_done

    async def read_chunk(self, within: float) -> bytes:
        """The next piece of the body, or b"" once the response ended cleanly."""
        while True:
            if self._chunks:
                chunk = self._chunks.popleft()
                self._buffered -= len(chunk)
                if self._reading_paused and self._buffered <= LOW_WATER:
                    self._reading_paused = False
                    if self.transport is not None and not self.closed:
                        self.transport.resume_reading()
                return chunk
            if self._error is not None:
                raise UpstreamProtocolError(self._error)
            if self._complete:
                return b""
            if self.closed:
                raise UpstreamProtocolError("connection closed in the middle of the body")
            await self._wait(within)

    @property
    def reusable(self) -> bool:
        """True only after a complete, clean, keep-alive final response and nothing else."""
        return (
            self._complete
            and self._keep_alive
            and not self._stray
            and self._error is None
            and not self._head_only
            and not self._close_delimited
            and not self.closed
            and not self._chunks
        )

    def finish(self) -> None:
        """End the exchange: the pool decides by ``reusable``."""
        self._busy = False
        self.used = True

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    async def _wait(self, within: float) -> None:
        waiter = self._loop.create_future()
        self._waiter = waiter
        timer = self._loop.call_later(within, _expire, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _fail(self, reason: str) -> None:
        if self._error is None:
            self._error = reason
        self.close()
        self._wake()

    # -- asyncio.Protocol --------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but the same interface.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if not self._busy or self._complete:
            # Bytes nobody asked for (idle in the pool, or after a final answer): this
            # stream can no longer be trusted to frame the next answer.
            self._stray = True
            self.close()
            self._wake()
            return
        if not self._head_done:
            self._head_bytes += len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail("upstream switched protocols unasked")
        except httptools.HttpParserError as exc:
            self._fail(f"malformed response: {exc}")
        if not self._head_done and self._head_bytes > MAX_HEAD:
            self._fail(f"response head larger than {MAX_HEAD} bytes")

    def eof_received(self) -> bool | None:
        return None  # close our side too: a half-closed upstream is not reused

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._busy and self._head_done and not self._complete and self._error is None:
            if self._close_delimited:
                self._complete = True  # the close is what ends this body
            else:
                self._error = "connection closed in the middle of the body"
        self._wake()

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        self._wake()

    # -- httptools callbacks -----------------------------------------------------------

    def on_message_begin(self) -> None:
        if self._head_done:
            self._stray = True  # a second final answer in the stream: never reuse

    def on_status(self, status: bytes) -> None:
        if not self._head_done:
            self.reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self._head_done:  # headers after the body are trailers: not forwarded
            self.headers.append((name, value))
            self._head_size += len(name) + len(value) + 4

    def on_headers_complete(self) -> None:
        if self._head_done:
            return
        status = self._parser.get_status_code()
        if status == 101:
            self._fail("upstream switched protocols unasked")
            return
        if 100 <= status < 200:
            # An interim answer (100 Continue, 103 Early Hints): skipped (RFC 9110 15.2).
            self._interim = True
            self.headers, self.reason, self._head_size = [], b"", 0
            return
        if self._head_size > MAX_HEAD:
            self._fail(f"response head larger than {MAX_HEAD} bytes")
            return
        problem = _framing_problem(self.headers)
        if problem is not None:
            self._fail(problem)
            return
        self.status = status
        self._head_done = True
        if self._head_only:
            self._complete = True  # a HEAD answer ends here; its connection is not reused
        elif status not in (204, 304) and not _has_length_or_chunked(self.headers):
            self._close_delimited = True
        self._wake()

    def on_body(self, body: bytes) -> None:
        if self._complete or self._error is not None:
            return
        self._chunks.append(bytes(body))
        self._buffered += len(body)
        if self._buffered > HIGH_WATER and not self._reading_paused and self.transport:
            self._reading_paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False
            return
        if self._complete:
            return
        self._keep_alive = self._parser.should_keep_alive()
        self._complete = True
        self._wake()


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(UpstreamReadTimeout())


def _framing_problem(headers: list[tuple[bytes, bytes]]) -> str | None:
    """What llhttp lets through but a proxy must not: a transfer coding other than one
    plain ``chunked`` (whose body end would then be the connection's close)."""
    codings = [value for name, value in headers if name.lower() == b"transfer-encoding"]
    if codings and (len(codings) > 1 or codings[0].strip().lower() != b"chunked"):
        return f"unsupported Transfer-Encoding {b', '.join(codings)[:100]!r}"
    return None


def _has_length_or_chunked(headers: list[tuple[bytes, bytes]]) -> bool:
    return any(name.lower() in (b"content-length", b"transfer-encoding") for name, _ in headers)
