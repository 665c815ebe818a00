"""Strict framing at the upstream boundary, judged on raw sockets at both ends.

A scripted upstream answers each case with exact bytes; a strict client on one keep-alive
connection reads what the gateway made of it. For every case: the exact status (502 where
the upstream's answer is ambiguous; a cut connection where the answer was already
streaming), and the next request gets its own answer, on a fresh upstream connection
unless the previous response was complete and clean (no pooled-connection poisoning).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
import yaml
from aiohttp.test_utils import TestServer

from gateway.config import parse_config
from gateway.web.app import build_app
from tests.support.raw_http import RawClient, RawUpstream, Script, ok_response

CUT = 0  # the gateway cut the client's connection: the answer was already streaming
SMUGGLED = b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nSMUGGLED"
BIG = 200_000  # above the gateway's whole-body threshold: such answers stream


def answer(data: bytes, close: bool = False, then: bytes = b"") -> Script:
    """Write ``data``, then (after a pause) ``then``; close after if ``close``."""
    return lambda method, path: ([data, then] if then else [data], close)


def head(*lines: str) -> bytes:
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@dataclass(frozen=True)
class Case:
    name: str
    script: Script
    status: int  # what the client gets, or CUT
    reused: bool  # whether the upstream connection may serve the next request
    method: str = "GET"
    body: bytes | None = None  # the body the client must get when the answer is complete
    # Stray bytes after a complete answer (in the same read) make the stream ambiguous:
    # whether that is noticed before the answer leaves depends on how the parser reads,
    # so either the answer or 502 is right; never the stray bytes, never reuse.
    stray: bool = False


CASES = [
    # Controls: clean answers keep the connection (so reuse is observable at all).
    Case(
        "clean_length",
        answer(ok_response("/case/clean_length")),
        200,
        True,
        body=b"ok /case/clean_length",
    ),
    Case(
        "clean_chunked",
        answer(head("HTTP/1.1 200 OK", "Transfer-Encoding: chunked") + b"5\r\nhello\r\n0\r\n\r\n"),
        200,
        True,
        body=b"hello",
    ),
    Case(
        "interim_100",
        answer(b"HTTP/1.1 100 Continue\r\n\r\n" + ok_response("x")),
        200,
        True,
        body=b"ok x",
    ),
    Case(
        "interim_103",
        answer(head("HTTP/1.1 103 Early Hints", "Link: </a.css>") + ok_response("y")),
        200,
        True,
        body=b"ok y",
    ),
    Case(
        "close_after_clean_answer", answer(ok_response("w"), close=True), 200, False, body=b"ok w"
    ),
    Case(
        "close_delimited",
        answer(head("HTTP/1.1 200 OK") + b"until close", close=True),
        200,
        False,
        body=b"until close",
    ),
    # Both or bad lengths: the body's end is ambiguous.
    Case(
        "length_and_chunked",
        answer(
            head("HTTP/1.1 200 OK", "Content-Length: 5", "Transfer-Encoding: chunked")
            + b"5\r\nhello\r\n0\r\n\r\n"
        ),
        502,
        False,
    ),
    Case(
        "chunked_and_length",
        answer(
            head("HTTP/1.1 200 OK", "Transfer-Encoding: chunked", "Content-Length: 5")
            + b"5\r\nhello\r\n0\r\n\r\n"
        ),
        502,
        False,
    ),
    Case(
        "two_lengths",
        answer(
            head("HTTP/1.1 200 OK", "Content-Length: 5", "Content-Length: 13")
            + b"hello"
            + SMUGGLED[:8]
        ),
        502,
        False,
    ),
    Case(
        "length_list",
        answer(head("HTTP/1.1 200 OK", "Content-Length: 5, 13") + b"hello" + SMUGGLED[:8]),
        502,
        False,
    ),
    Case(
        "length_not_a_number",
        answer(head("HTTP/1.1 200 OK", "Content-Length: abc") + b"hello"),
        502,
        False,
    ),
    Case(
        "length_negative", answer(head("HTTP/1.1 200 OK", "Content-Length: -1") + b"x"), 502, False
    ),
    Case(
        "length_with_sign",
        answer(head("HTTP/1.1 200 OK", "Content-Length: +5") + b"hello"),
        502,
        False,
    ),
    Case(
        "length_hex", answer(head("HTTP/1.1 200 OK", "Content-Length: 0x5") + b"hello"), 502, False
    ),
    # Bad chunk sizes: the head is fine, so the answer streams; the cut is the only signal.
    Case(
        "chunk_size_not_hex",
        answer(
            head("HTTP/1.1 200 OK", "Transfer-Encoding: chunked"), then=b"zz\r\nhello\r\n0\r\n\r\n"
        ),
        CUT,
        False,
    ),
    Case(
        "chunk_size_overflow",
        answer(
            head("HTTP/1.1 200 OK", "Transfer-Encoding: chunked"),
            then=b"1" + b"0" * 20 + b"\r\nhello\r\n0\r\n\r\n",
        ),
        CUT,
        False,
    ),
    Case(
        "chunk_size_negative",
        answer(
            head("HTTP/1.1 200 OK", "Transfer-Encoding: chunked"), then=b"-5\r\nhello\r\n0\r\n\r\n"
        ),
        CUT,
        False,
    ),
    Case(
        "chunk_without_crlf",
        answer(
            head("HTTP/1.1 200 OK", "Transfer-Encoding: chunked"), then=b"5\r\nhelloXX0\r\n\r\n"
        ),
        CUT,
        False,
    ),
    # Header syntax that parsers disagree on.
    Case(
        "obs_fold",
        answer(b"HTTP/1.1 200 OK\r\nX-Folded: a\r\n b\r\nContent-Length: 2\r\n\r\nok"),
        502,
        False,
    ),
    Case("bare_lf_everywhere", answer(b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok"), 502, False),
    Case(
        "bare_lf_in_one_header",
        answer(b"HTTP/1.1 200 OK\r\nX-A: 1\nContent-Length: 2\r\n\r\nok"),
        502,
        False,
    ),
    Case(
        "space_before_colon", answer(b"HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nok"), 502, False
    ),
    Case("bad_status_line", answer(b"HTTP/1.1 2x0 OK\r\nContent-Length: 2\r\n\r\nok"), 502, False),
    Case("not_http", answer(b"SSH-2.0-OpenSSH_9.2\r\n\r\n"), 502, False),
    # Bodies where none may be: the answer is delivered, the connection is not reused.
    Case(
        "body_on_head",
        answer(head("HTTP/1.1 200 OK", f"Content-Length: {len(SMUGGLED)}") + SMUGGLED),
        200,
        False,
        method="HEAD",
        stray=True,
    ),
    Case("body_on_204", answer(head("HTTP/1.1 204 No Content") + SMUGGLED), 204, False, stray=True),
    Case(
        "body_on_304", answer(head("HTTP/1.1 304 Not Modified") + SMUGGLED), 304, False, stray=True
    ),
    Case(
        "bytes_after_body",
        answer(ok_response("z") + SMUGGLED),
        200,
        False,
        body=b"ok z",
        stray=True,
    ),
    # Unexpected switching protocols: the gateway asked for no upgrade.
    Case(
        "unsolicited_101",
        answer(
            head("HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade")
            + SMUGGLED
        ),
        502,
        False,
    ),
    # Early close.
    Case("close_before_answer", answer(b"", close=True), 502, False),
    Case("close_in_head", answer(b"HTTP/1.1 200 OK\r\nContent-Le", close=True), 502, False),
    Case(
        "close_in_small_body",
        answer(head("HTTP/1.1 200 OK", "Content-Length: 100") + b"short", close=True),
        502,
        False,
    ),
    Case(
        "close_in_big_body",
        answer(head("HTTP/1.1 200 OK", f"Content-Length: {BIG}") + b"x" * 1000, close=True),
        CUT,
        False,
    ),
    Case(
        "close_in_chunked_body",
        answer(
            head("HTTP/1.1 200 OK", "Transfer-Encoding: chunked") + b"5\r\nhello\r\n", close=True
        ),
        CUT,
        False,
    ),
    # Oversized heads.
    Case(
        "huge_header_line",
        answer(head("HTTP/1.1 200 OK", "X-Big: " + "a" * 100_000, "Content-Length: 2") + b"ok"),
        502,
        False,
    ),
    Case(
        "huge_header_block",
        answer(
            head(
                "HTTP/1.1 200 OK",
                *(f"X-H{i}: {'b' * 60}" for i in range(2000)),
                "Content-Length: 2",
            )
            + b"ok"
        ),
        502,
        False,
    ),
]


@pytest.fixture
async def raw_upstream() -> AsyncIterator[RawUpstream]:
    upstream = RawUpstream({case.name: case.script for case in CASES})
    await upstream.start()
    yield upstream
    await upstream.close()


@pytest.fixture
async def gateway_port(
    aiohttp_server: Callable[..., Awaitable[TestServer]], raw_upstream: RawUpstream
) -> int:
    route: dict[str, Any] = {
        "path": "/",
        "upstream": f"http://127.0.0.1:{raw_upstream.port}",
        "auth": "public",
        "timeouts": {"connect": 5, "read": 5},
    }
    server = await aiohttp_server(build_app(parse_config(yaml.safe_dump({"routes": [route]}))))
    return int(server.port)  # type: ignore[arg-type]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
async def test_upstream_framing_case_and_next_request(
    case: Case, raw_upstream: RawUpstream, gateway_port: int
) -> None:
    """Each upstream answer yields its exact status (or a cut), never a desynchronised
    answer, and the next request gets its own answer on a connection that is reused only
    after a complete, clean response."""
    client = await RawClient.connect(gateway_port)
    path = f"/case/{case.name}"
    try:
        response = await client.request(case.method, path)
    except Exception:  # the gateway closed before a complete head: also a cut
        response = None
    if case.status == CUT:
        assert response is None or not response.complete, response
        assert await client.at_eof()
        await client.close()
        client = await RawClient.connect(gateway_port)
    else:
        assert response is not None
        assert response.status in ((case.status, 502) if case.stray else (case.status,))
        assert response.complete
        if case.body is not None and response.status == case.status:
            assert response.body == case.body
        assert b"SMUGGLED" not in response.body
    try:
        following = await client.request("GET", f"/next/{case.name}")
    finally:
        await client.close()
    assert following.status == 200
    assert following.body == f"ok /next/{case.name}".encode()
    conn = raw_upstream.connection_of(path)
    if case.reused:
        assert raw_upstream.connection_of(f"/next/{case.name}") == conn
    else:
        assert raw_upstream.requests_on(conn) == [path]


async def test_a_timed_out_request_is_never_sent_twice(
    aiohttp_server: Callable[..., Awaitable[TestServer]],
) -> None:
    """A request that timed out on a reused connection gets 504 and reached the upstream
    once: only a request that got nothing back because the connection was already closed
    is replayed, never one the upstream may still be working on."""
    upstream = RawUpstream({"silent": lambda method, path: ([], False)})
    await upstream.start()
    route = {
        "path": "/",
        "upstream": f"http://127.0.0.1:{upstream.port}",
        "auth": "public",
        "timeouts": {"connect": 5, "read": 0.5},
    }
    server = await aiohttp_server(build_app(parse_config(yaml.safe_dump({"routes": [route]}))))
    client = await RawClient.connect(int(server.port))  # type: ignore[arg-type]
    try:
        assert (await client.request("GET", "/warm")).status == 200  # pools a connection
        assert (await client.request("GET", "/case/silent")).status == 504
    finally:
        await client.close()
        await upstream.close()
    assert [path for _, _, path in upstream.seen].count("/case/silent") == 1
    assert upstream.connection_of("/case/silent") == upstream.connection_of("/warm")
