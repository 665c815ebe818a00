"""Send one request upstream on a pooled connection and read the response head."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator

from multidict import CIMultiDict

from gateway.errors import BadRequest, UpstreamError, UpstreamTimeout, UpstreamUnreachable
from gateway.proxy.upstream_pool import Origin, UpstreamPool
from gateway.proxy.upstream_protocol import (
    UpstreamProtocol,
    UpstreamProtocolError,
    UpstreamReadTimeout,
)

# Replayable when a reused connection turns out closed before any answer (RFC 9110 9.2.2).
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})


def encode_head(method: str, target: str, headers: CIMultiDict[str]) -> bytes:
    """The request line and headers; refuses anything that would break the framing."""
    lines = [f"{method} {target} HTTP/1.1\r\n", *[f"{k}: {v}\r\n" for k, v in headers.items()]]
    text = "".join(lines) + "\r\n"
    # One pass in C instead of a check per value: every CR and LF must be ours.
    ours = len(lines) + 1
    if text.count("\n") != ours or text.count("\r") != ours or " " in target:
        raise BadRequest(
            "line break in a header or space in the target for the upstream",
            public="The request cannot be forwarded.",
        )
    return text.encode("utf-8", "surrogateescape")


async def send(
    pool: UpstreamPool,
    origin: Origin,
    timeouts: tuple[float, float],
    method: str,
    head: bytes,
    body: AsyncIterator[bytes] | None,
    *,
    chunked: bool,
) -> UpstreamProtocol:
    """The connection with the response head read; the caller reads the body, then
    gives the connection (and its slot) back with ``pool.release``, whatever happened.
    ``timeouts`` is (connect, read)."""
    await pool.enter(origin)
    try:
        protocol = pool.take(origin)
        if protocol is not None:
            try:
                return await _exchange(protocol, method, head, body, timeouts[1], chunked=chunked)
            except UpstreamTimeout:
                raise  # the upstream may be working on it: never sent twice
            except UpstreamError:
                # An idle connection the upstream had just closed: safe to replay only when
                # nothing came back and the request can be sent again as it was.
                if not (protocol.received_nothing and body is None and method in IDEMPOTENT):
                    raise
        protocol = await _connect(pool, origin, timeouts[0])
        return await _exchange(protocol, method, head, body, timeouts[1], chunked=chunked)
    except BaseException:
        pool.leave(origin)
        raise


async def _connect(pool: UpstreamPool, origin: Origin, within: float) -> UpstreamProtocol:
    try:
        return await pool.connect(origin, within)
    except TimeoutError:
        raise UpstreamTimeout(f"connecting to {origin.host}:{origin.port} timed out") from None
    except ssl.SSLError as exc:
        raise UpstreamUnreachable(f"TLS with {origin.host}:{origin.port} failed: {exc}") from None
    except OSError as exc:
        raise UpstreamUnreachable(f"cannot connect to {origin.host}:{origin.port}: {exc}") from None


async def _exchange(
    protocol: UpstreamProtocol,
    method: str,
    head: bytes,
    body: AsyncIterator[bytes] | None,
    read_timeout: float,
    *,
    chunked: bool,
) -> UpstreamProtocol:
    protocol.begin(head_only=method == "HEAD")
    try:
        protocol.write(head)
        if body is not None:
            await _send_body(protocol, body, read_timeout, chunked=chunked)
        await protocol.read_head(read_timeout)
    except UpstreamProtocolError as exc:
        protocol.close()
        raise UpstreamError(f"upstream failed: {exc}") from None
    except UpstreamReadTimeout:
        protocol.close()
        raise UpstreamTimeout(f"upstream sent nothing for {read_timeout} s") from None
    except BaseException:
        protocol.close()  # a body over the limit, a cancelled request: never reuse
        raise
    return protocol


async def _send_body(
    protocol: UpstreamProtocol, body: AsyncIterator[bytes], within: float, *, chunked: bool
) -> None:
    async for chunk in body:
        if not chunk:
            continue
        protocol.write(b"%x\r\n%b\r\n" % (len(chunk), chunk) if chunked else chunk)
        await protocol.drain(within)
    if chunked:
        protocol.write(b"0\r\n\r\n")
