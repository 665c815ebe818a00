"""One upstream connection's framing decisions, fed bytes directly: what the proxy reads
(status, headers, body or the reason of a refusal) and whether the connection may go back
to the pool. tests/proxy/test_upstream_framing.py judges the same through a real gateway."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gateway.proxy.upstream_protocol import (
    HIGH_WATER,
    LOW_WATER,
    MAX_HEAD,
    UpstreamProtocol,
    UpstreamProtocolError,
    UpstreamReadTimeout,
)

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


class Transport:
    """What the protocol does to its transport: written bytes, pauses, closing."""

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.closed = False
        self.paused = False
        self.pauses = 0
        self.resumes = 0

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        self.paused = True
        self.pauses += 1

    def resume_reading(self) -> None:
        self.paused = False
        self.resumes += 1


def connection(*, head_only: bool = False) -> tuple[UpstreamProtocol, Transport]:
    protocol = UpstreamProtocol(asyncio.get_running_loop())
    transport = Transport()
    protocol.connection_made(transport)  # type: ignore[arg-type]
    protocol.begin(head_only=head_only)
    return protocol, transport


async def body(protocol: UpstreamProtocol) -> bytes:
    out = b""
    while chunk := await protocol.read_chunk(1):
        out += chunk
    return out


async def failure(call: Any) -> str:
    with pytest.raises(UpstreamProtocolError) as failed:
        await call
    return str(failed.value)


async def exchange(data: bytes, *, head_only: bool = False) -> UpstreamProtocol:
    """A connection that received ``data`` as the answer and read its head."""
    protocol, _ = connection(head_only=head_only)
    protocol.data_received(data)
    await protocol.read_head(1)
    return protocol


# --- clean answers and reuse ------------------------------------------------------------


async def test_clean_answer_is_read_and_reusable() -> None:
    """Status, reason, headers and body arrive; the connection may serve the next request,
    and after begin() the next answer is read afresh."""
    protocol = await exchange(b"HTTP/1.1 201 Made\r\nX-A: 1\r\nContent-Length: 2\r\n\r\nok")
    assert (protocol.status, protocol.reason) == (201, b"Made")
    assert protocol.headers == [(b"X-A", b"1"), (b"Content-Length", b"2")]
    assert await body(protocol) == b"ok"
    assert protocol.reusable
    protocol.finish()
    assert protocol.used
    protocol.begin(head_only=False)
    assert not protocol.reusable
    assert protocol.received_nothing
    protocol.data_received(b"HTTP/1.1 404 Gone\r\nContent-Length: 1\r\n\r\nx")
    await protocol.read_head(1)
    assert (protocol.status, protocol.reason, protocol.headers) == (
        404,
        b"Gone",
        [(b"Content-Length", b"1")],
    )
    assert await body(protocol) == b"x"
    assert protocol.reusable


async def test_answer_in_pieces_is_reassembled() -> None:
    """A head split across reads (even inside the reason) reads as one."""
    protocol, _ = connection()
    for piece in (b"HTTP/1.1 200 Fi", b"ne\r\nContent-", b"Length: 2\r\n\r\no", b"k"):
        protocol.data_received(piece)
    await protocol.read_head(1)
    assert protocol.reason == b"Fine"
    assert await body(protocol) == b"ok"
    assert protocol.reusable


async def test_answer_with_connection_close_is_not_reused() -> None:
    """A complete answer that says Connection: close does not go back to the pool."""
    protocol = await exchange(
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"
    )
    assert await body(protocol) == b"ok"
    assert not protocol.reusable


async def test_unread_body_keeps_connection_out_of_the_pool() -> None:
    """Body bytes not yet handed on mean the answer was not consumed: not reusable."""
    protocol = await exchange(OK)
    assert not protocol.reusable
    assert await protocol.read_chunk(1) == b"ok"
    assert protocol.reusable


async def test_closed_connection_is_not_reused() -> None:
    """A clean answer on a connection that then closed is not reused."""
    protocol = await exchange(OK)
    assert await body(protocol) == b"ok"
    protocol.connection_lost(None)
    assert not protocol.reusable


async def test_head_answer_ends_with_its_head_and_is_not_reused() -> None:
    """For HEAD the answer is complete at its head, with no body, and never reused."""
    protocol = await exchange(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", head_only=True)
    assert protocol.status == 200
    assert await protocol.read_chunk(1) == b""
    assert not protocol.reusable


async def test_head_answer_on_a_reused_connection() -> None:
    """begin(head_only=True) on a used connection applies to the next answer too."""
    protocol = await exchange(OK)
    assert await body(protocol) == b"ok"
    protocol.finish()
    protocol.begin(head_only=True)
    protocol.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n")
    await protocol.read_head(1)
    assert await protocol.read_chunk(1) == b""
    assert not protocol.reusable


async def test_no_content_answers_are_complete_without_a_length() -> None:
    """204 and 304 end at their head and keep the connection; a 200 without length or
    chunked is delimited by the close and is not reused."""
    for status in (b"204 No Content", b"304 Not Modified"):
        protocol = await exchange(b"HTTP/1.1 " + status + b"\r\n\r\n")
        assert await body(protocol) == b""
        assert protocol.reusable
    protocol = await exchange(b"HTTP/1.1 200 OK\r\n\r\nuntil ")
    protocol.data_received(b"close")
    assert await protocol.read_chunk(1) == b"until "
    assert await protocol.read_chunk(1) == b"close"
    assert not protocol.reusable
    protocol.connection_lost(None)
    assert await protocol.read_chunk(1) == b""
    assert not protocol.reusable


async def test_chunked_answer_and_its_trailers() -> None:
    """A chunked body is read; trailer fields are not taken as headers."""
    protocol = await exchange(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n0\r\nX-Trailer: t\r\n\r\n"
    )
    assert await body(protocol) == b"hello"
    assert protocol.headers == [(b"Transfer-Encoding", b"chunked")]
    assert protocol.reusable


# --- interim answers --------------------------------------------------------------------


async def test_interim_answers_are_skipped() -> None:
    """100 and 103 answers are passed over: the final answer's status, reason and headers
    alone are read, and the connection stays reusable."""
    protocol = await exchange(
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n"
        b"HTTP/1.1 200 Fine\r\nContent-Length: 2\r\n\r\nok"
    )
    assert (protocol.status, protocol.reason) == (200, b"Fine")
    assert protocol.headers == [(b"Content-Length", b"2")]
    assert await body(protocol) == b"ok"
    assert protocol.reusable


async def test_interim_answer_alone_is_no_answer_yet() -> None:
    """A 100 Continue alone leaves the head outstanding (a timeout, not a response)."""
    protocol, _ = connection()
    protocol.data_received(b"HTTP/1.1 100 Continue\r\n\r\n")
    with pytest.raises(UpstreamReadTimeout):
        await protocol.read_head(0.01)
    assert protocol.status == 0


async def test_unsolicited_101_is_refused() -> None:
    """A 101 the gateway did not ask for fails the exchange and closes the connection."""
    protocol, transport = connection()
    protocol.data_received(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
    )
    assert await failure(protocol.read_head(1)) == "upstream switched protocols unasked"
    assert transport.closed
    assert not protocol.reusable


# --- ambiguous framing ------------------------------------------------------------------


@pytest.mark.parametrize(
    "coding",
    [
        [b"gzip"],
        [b"gzip, chunked"],
        [b"chunked", b"chunked"],
        [b"identity"],
    ],
)
async def test_transfer_codings_other_than_one_chunked_are_refused(coding: list[bytes]) -> None:
    """Only a single plain 'chunked' transfer coding is accepted (case and spaces aside)."""
    head = b"HTTP/1.1 200 OK\r\n" + b"".join(b"Transfer-Encoding: " + c + b"\r\n" for c in coding)
    protocol, transport = connection()
    protocol.data_received(head + b"\r\n")
    reason = await failure(protocol.read_head(1))
    assert reason == f"unsupported Transfer-Encoding {b', '.join(coding)!r}"
    assert transport.closed


async def test_chunked_in_any_case_is_accepted() -> None:
    """'Transfer-Encoding: Chunked' (another case) frames the body like 'chunked'."""
    protocol = await exchange(
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: Chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"
    )
    assert await body(protocol) == b"ok"
    assert protocol.reusable


async def test_refused_coding_is_quoted_at_most_100_bytes() -> None:
    """The refusal quotes the coding, cut at 100 bytes (the log line stays short)."""
    coding = b"x" * 300
    protocol, _ = connection()
    protocol.data_received(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: " + coding + b"\r\n\r\n")
    assert await failure(protocol.read_head(1)) == f"unsupported Transfer-Encoding {coding[:100]!r}"


async def test_malformed_answer_is_refused_with_the_parsers_reason() -> None:
    """Bytes llhttp refuses fail the exchange as malformed and close the connection."""
    protocol, transport = connection()
    protocol.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 5, 13\r\n\r\nhello")
    assert (await failure(protocol.read_head(1))).startswith("malformed response: ")
    assert transport.closed
    assert protocol.closed


async def test_first_failure_reason_is_kept() -> None:
    """After a failure, later bytes do not replace its reason."""
    protocol, _ = connection()
    protocol.data_received(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n")
    protocol._busy = True  # as if more bytes were fed to the same exchange
    protocol.data_received(b"garbage\r\n\r\n")
    assert await failure(protocol.read_head(1)) == "upstream switched protocols unasked"


# --- head size --------------------------------------------------------------------------


def _head_of(size: int) -> bytes:
    """A 200 head whose header lines (name + value + 4) add up to exactly ``size``."""
    lines = [(b"Content-Length", b"0")]
    used = len(b"Content-Length") + 1 + 4
    while size - used > 0:
        take = min(size - used, 8000)
        value_len = take - len(b"X-Pad-00000") - 4
        if value_len < 1:
            # Too little room for another line: grow the previous value instead.
            name, value = lines[-1]
            lines[-1] = (name, value + b"a" * take)
            used += take
            continue
        name = b"X-Pad-%05d" % len(lines)
        lines.append((name, b"a" * value_len))
        used += take
    return b"HTTP/1.1 200 OK\r\n" + b"".join(n + b": " + v + b"\r\n" for n, v in lines) + b"\r\n"


async def test_head_of_max_size_in_one_read_is_accepted_one_byte_more_refused() -> None:
    """A head arriving in one read whose lines add up to MAX_HEAD is read; one byte more
    fails as too large."""
    protocol, _ = connection()
    head = _head_of(MAX_HEAD)
    protocol.data_received(head)
    await protocol.read_head(1)
    assert protocol.status == 200
    protocol, transport = connection()
    head = _head_of(MAX_HEAD + 1)
    protocol.data_received(head)
    assert await failure(protocol.read_head(1)) == f"response head larger than {MAX_HEAD} bytes"
    assert transport.closed


async def test_interim_head_does_not_count_towards_the_final_heads_size() -> None:
    """After a 103 with headers, a final head of exactly MAX_HEAD is still accepted."""
    protocol, _ = connection()
    interim = b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n"
    protocol.data_received(interim + _head_of(MAX_HEAD))
    await protocol.read_head(1)
    assert protocol.status == 200


async def test_head_bytes_over_the_limit_are_refused_before_the_head_ends() -> None:
    """A head trickling past MAX_HEAD bytes is refused without waiting for its end; up to
    MAX_HEAD bytes it is still awaited."""
    protocol, transport = connection()
    protocol.data_received(b"HTTP/1.1 200 OK\r\nX-Big: ")
    sent = len(b"HTTP/1.1 200 OK\r\nX-Big: ")
    protocol.data_received(b"a" * (MAX_HEAD - sent))
    assert not transport.closed
    assert not protocol.received_nothing
    protocol.data_received(b"a")
    assert await failure(protocol.read_head(1)) == f"response head larger than {MAX_HEAD} bytes"
    assert transport.closed


async def test_body_bytes_do_not_count_as_head() -> None:
    """A body larger than MAX_HEAD after a small head is read in full."""
    size = MAX_HEAD * 2
    protocol = await exchange(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
    protocol.data_received(b"b" * size)
    assert len(await body(protocol)) == size
    assert protocol.reusable


# --- stray bytes and early close --------------------------------------------------------


async def test_bytes_after_a_complete_answer_poison_the_connection() -> None:
    """Bytes after the final answer (same read or later) close it: never reused."""
    protocol = await exchange(OK + b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nSMUGGLED")
    assert await protocol.read_chunk(1) == b"ok"
    assert not protocol.reusable
    protocol = await exchange(OK)
    assert await body(protocol) == b"ok"
    protocol.data_received(b"X")
    assert not protocol.reusable
    assert protocol.closed


async def test_body_bytes_on_a_head_answer_are_not_read() -> None:
    """Body bytes after a HEAD answer's head (same read) are never handed on as a body."""
    smuggled = b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nSMUGGLED"
    protocol = await exchange(
        b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(smuggled) + smuggled,
        head_only=True,
    )
    assert await protocol.read_chunk(1) == b""
    assert not protocol.reusable


async def test_switch_after_a_complete_answer_fails_the_exchange() -> None:
    """A 101 following a complete answer in the same read fails the exchange, saying the
    upstream switched protocols (the stream can frame nothing more)."""
    protocol, transport = connection()
    protocol.data_received(
        OK + b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\n"
    )
    assert await failure(protocol.read_head(1)) == "upstream switched protocols unasked"
    assert transport.closed
    assert not protocol.reusable


async def test_bytes_while_idle_in_the_pool_poison_the_connection() -> None:
    """Bytes arriving between exchanges close the connection; the next exchange sees it
    closed before any answer."""
    protocol = await exchange(OK)
    assert await body(protocol) == b"ok"
    protocol.finish()
    protocol.data_received(OK)
    assert protocol.closed
    protocol.begin(head_only=False)
    assert await failure(protocol.read_head(1)) == "connection closed before a response"


async def test_bytes_before_the_first_request_poison_a_new_connection() -> None:
    """An upstream that speaks before it was asked (a banner, a stale answer): the new
    connection is closed and never framed as the answer to the request sent next."""
    protocol = UpstreamProtocol(asyncio.get_running_loop())
    transport = Transport()
    protocol.connection_made(transport)  # type: ignore[arg-type]
    protocol.data_received(OK)
    assert transport.closed
    protocol.begin(head_only=False)
    assert await failure(protocol.read_head(1)) == "connection closed before a response"
    assert protocol.status == 0


async def test_close_before_any_answer() -> None:
    """A close before the first byte: nothing received (a stale pooled connection)."""
    protocol, _ = connection()
    assert protocol.received_nothing
    protocol.connection_lost(None)
    assert protocol.received_nothing
    assert await failure(protocol.read_head(1)) == "connection closed before a response"


async def test_close_inside_the_head() -> None:
    """A close after part of a head: something was received, no answer."""
    protocol, _ = connection()
    protocol.data_received(b"HTTP/1.1 200 OK\r\nContent-Le")
    protocol.connection_lost(None)
    assert not protocol.received_nothing
    assert await failure(protocol.read_head(1)) == "connection closed before a response"


async def test_close_inside_the_body() -> None:
    """A close before the announced length (or last chunk) fails the body read."""
    for head in (b"Content-Length: 100", b"Transfer-Encoding: chunked"):
        protocol = await exchange(b"HTTP/1.1 200 OK\r\n" + head + b"\r\n\r\n")
        assert not protocol.received_nothing
        protocol.data_received(b"5\r\nshort" if b"chunked" in head else b"short")
        protocol.connection_lost(None)
        assert await protocol.read_chunk(1) == b"short"
        reason = await failure(protocol.read_chunk(1))
        assert reason == "connection closed in the middle of the body"
        assert not protocol.reusable


async def test_close_noticed_while_reading_the_body() -> None:
    """A close that comes while the body is awaited wakes the reader with the cut."""
    protocol = await exchange(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
    reader = asyncio.ensure_future(protocol.read_chunk(5))
    await asyncio.sleep(0)
    protocol.connection_lost(None)
    reason = await failure(reader)
    assert reason == "connection closed in the middle of the body"


async def test_closed_flag_alone_fails_a_body_read() -> None:
    """A connection marked closed mid-body (our side closed it) fails the read too."""
    protocol = await exchange(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
    protocol.close()
    assert await failure(protocol.read_chunk(1)) == "connection closed in the middle of the body"


async def test_close_after_the_head_of_a_head_answer_is_fine() -> None:
    """A HEAD answer is complete at its head: a close after it is no error."""
    protocol = await exchange(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", head_only=True)
    protocol.connection_lost(None)
    assert await protocol.read_chunk(1) == b""


async def test_close_after_a_parse_error_keeps_its_reason() -> None:
    """An early close after a refusal reports the refusal, not the close."""
    protocol = await exchange(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n")
    protocol.data_received(b"abc")
    protocol._fail("first reason")
    protocol.connection_lost(None)
    assert await protocol.read_chunk(1) == b"abc"
    assert await failure(protocol.read_chunk(1)) == "first reason"


async def test_write_after_close_is_refused() -> None:
    """Sending on a closed connection fails; before, bytes go to the transport."""
    protocol, transport = connection()
    protocol.write(b"GET / HTTP/1.1\r\n\r\n")
    assert transport.written == [b"GET / HTTP/1.1\r\n\r\n"]
    protocol.connection_lost(None)
    with pytest.raises(
        UpstreamProtocolError, match=r"^connection closed while sending the request$"
    ):
        protocol.write(b"more")
    unconnected = UpstreamProtocol(asyncio.get_running_loop())
    with pytest.raises(
        UpstreamProtocolError, match=r"^connection closed while sending the request$"
    ):
        unconnected.write(b"x")


async def test_eof_closes_our_side_too() -> None:
    """A half-closed upstream: eof_received asks asyncio to close the transport."""
    protocol, _ = connection()
    assert protocol.eof_received() is None


# --- flow control and timeouts ----------------------------------------------------------


async def test_reading_pauses_above_high_water_and_resumes_at_low_water() -> None:
    """Exactly HIGH_WATER buffered body bytes keep reading on; one more pauses the upstream
    (once); it resumes when a read brings the buffer down to exactly LOW_WATER, not before,
    and only once."""
    block = 32 * 1024
    # Buffered in this order; the first eight add up to HIGH_WATER, and the last four
    # (what is left after six reads) to LOW_WATER.
    pieces = [HIGH_WATER - 6 * block - (LOW_WATER - block - 2), *[block] * 6]
    pieces += [LOW_WATER - block - 2, 1, 1]
    assert sum(pieces[:-2]) == HIGH_WATER
    assert sum(pieces[-4:]) == LOW_WATER
    size = sum(pieces) + 5
    protocol = await exchange(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
    transport = protocol.transport
    assert isinstance(transport, Transport)
    for piece in pieces[:-2]:
        protocol.data_received(b"a" * piece)
    assert not transport.paused
    protocol.data_received(b"b")
    assert transport.paused
    protocol.data_received(b"c")
    assert transport.pauses == 1
    for piece in pieces[:5]:
        assert len(await protocol.read_chunk(1)) == piece
    assert transport.paused  # LOW_WATER + one block left
    assert len(await protocol.read_chunk(1)) == block
    assert not transport.paused  # exactly LOW_WATER left
    assert transport.resumes == 1
    protocol.data_received(b"d" * 5)
    assert len(await body(protocol)) == sum(pieces[-4:]) + 5
    assert transport.resumes == 1


async def test_no_resume_on_a_closed_connection() -> None:
    """A connection closed while paused is not asked to resume reading."""
    size = HIGH_WATER + 1
    protocol = await exchange(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (size + 1))
    transport = protocol.transport
    assert isinstance(transport, Transport)
    protocol.data_received(b"a" * size)
    assert transport.paused
    protocol.close()
    assert len(await protocol.read_chunk(1)) == size
    assert transport.resumes == 0


async def test_write_backpressure_waits_for_resume() -> None:
    """drain() waits while the transport is paused for writing and returns on resume."""
    protocol, _ = connection()
    await protocol.drain(1)  # not paused: at once
    protocol.pause_writing()
    waiting = asyncio.ensure_future(protocol.drain(5))
    await asyncio.sleep(0)
    assert not waiting.done()
    protocol.resume_writing()
    await waiting
    protocol.pause_writing()
    with pytest.raises(UpstreamReadTimeout):
        await protocol.drain(0.01)


async def test_drain_on_a_closed_connection() -> None:
    """A connection closed while sending fails drain(), unless an answer already came."""
    protocol, _ = connection()
    protocol.pause_writing()
    protocol.connection_lost(None)
    assert await failure(protocol.drain(1)) == "connection closed while sending the request"
    answered = await exchange(OK)
    answered.pause_writing()
    answered.connection_lost(None)
    await answered.drain(1)  # the upstream answered early: nothing more to send


async def test_silent_upstream_times_out() -> None:
    """No byte within the read timeout: UpstreamReadTimeout, for the head and the body."""
    protocol, _ = connection()
    with pytest.raises(UpstreamReadTimeout):
        await protocol.read_head(0.01)
    protocol = await exchange(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")
    with pytest.raises(UpstreamReadTimeout):
        await protocol.read_chunk(0.01)
    # The timer is gone with the wait: a later answer is still read.
    protocol.data_received(b"hello")
    assert await protocol.read_chunk(1) == b"hello"


async def test_a_wait_is_woken_by_the_answer() -> None:
    """read_head waits for the bytes and returns once the head is complete."""
    protocol, _ = connection()
    waiting = asyncio.ensure_future(protocol.read_head(5))
    await asyncio.sleep(0)
    protocol.data_received(b"HTTP/1.1 200 OK\r\n")
    await asyncio.sleep(0)
    assert not waiting.done()
    protocol.data_received(b"Content-Length: 0\r\n\r\n")
    await waiting
    assert protocol.status == 200
