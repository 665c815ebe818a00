"""Client connections, in-process on real sockets: the request-head deadline, the bound on
open connections in all and per client address, and the listener's settings; judged by
what a client on the wire sees (answers, closed sockets)."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

from gateway.config import parse_config
from gateway.config.model import Config
from gateway.web.access_log import GatewayAccessLogger, access_log
from gateway.web.connections import (
    BoundedSite,
    ConnectionCount,
    ConnectionFactory,
    _peer_address,
    bounded_site,
    close_unread,
    handler_args,
)
from tests.support.ports import free_port
from tests.support.tls import self_signed

HEAD_TIMEOUT = 0.3
BUSY = b"HTTP/1.1 503 Service Unavailable\r\n"
GET = b"GET / HTTP/1.1\r\nHost: gw\r\n\r\n"


def config(**listen: Any) -> Config:
    settings = {"header_timeout": HEAD_TIMEOUT, "keepalive_timeout": 60, **listen}
    return parse_config(
        yaml.safe_dump(
            {
                "routes": [{"path": "/", "upstream": "http://127.0.0.1:1", "auth": "public"}],
                "listen": settings,
                "limits": {"max_header_size": 1024},
            }
        )
    )


async def hello(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def read_body(request: web.Request) -> web.Response:
    return web.Response(text=str(len(await request.read())))


async def refuse_unread(request: web.Request) -> web.Response:
    """Refuses without reading the body, as the gateway's 413 does."""
    response = web.Response(status=413, text="no")
    close_unread(request, response)
    return response


class Listener:
    """A running BoundedSite and the port it listens on."""

    def __init__(self, site: BoundedSite, port: int) -> None:
        self.site = site
        self.port = port
        self.writers: list[asyncio.StreamWriter] = []

    @property
    def count(self) -> ConnectionCount:
        return self.site._factory.count

    async def connect(
        self, source: str = "127.0.0.1"
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", self.port, local_addr=(source, 0)
        )
        self.writers.append(writer)
        return reader, writer

    async def close(self) -> None:
        for writer in self.writers:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


@pytest.fixture
async def start() -> AsyncIterator[Any]:
    runners: list[web.AppRunner] = []
    listeners: list[Listener] = []
    # A protocol callback that raises (connection_made/_lost, a timer) is only logged by
    # asyncio: record it, so that a broken connection bookkeeping fails the test.
    crashes: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda _, context: crashes.append(context))

    async def start(
        cfg: Config | None = None,
        *,
        port: int | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> Listener:
        app = web.Application()
        app.router.add_get("/", hello)
        app.router.add_post("/body", read_body)
        app.router.add_post("/refuse", refuse_unread)
        runner = web.AppRunner(app, handle_signals=False)
        await runner.setup()
        runners.append(runner)
        port = port or free_port()
        site = bounded_site(runner, cfg or config(), "127.0.0.1", port, ssl_context=ssl_context)
        await site.start()
        listeners.append(Listener(site, port))
        return listeners[-1]

    yield start
    for listener in listeners:
        await listener.close()
    for runner in runners:
        await runner.cleanup()
    assert crashes == []


async def until_closed(reader: asyncio.StreamReader, limit: float = 10.0) -> bytes:
    """What the server sent until it closed the connection; fails if it stays open."""
    received = b""
    async with asyncio.timeout(limit):
        while chunk := await reader.read(4096):
            received += chunk
    return received


async def still_open(reader: asyncio.StreamReader, seconds: float) -> bool:
    """True if nothing (not even a close) arrives within ``seconds``."""
    try:
        await asyncio.wait_for(reader.read(1), seconds)
    except TimeoutError:
        return True
    return False


async def until(condition: Callable[[], bool]) -> None:
    """Wait (a bounded poll) until ``condition`` holds: the server's count is updated in
    its connection_lost, which no event of ours can await."""
    async with asyncio.timeout(10):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def answer(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> bytes:
    writer.write(request)
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    return head.split(b"\r\n")[0] + b" " + await reader.readexactly(length)


# --- the head deadline ------------------------------------------------------------------


async def test_silent_connection_is_closed_at_the_head_deadline(start: Any) -> None:
    """A connection that never sends a head is closed (keepalive_timeout is 60 s)."""
    listener = await start()
    reader, writer = await listener.connect()
    assert await until_closed(reader) == b""
    writer.close()


async def test_trickled_head_is_closed_even_while_bytes_arrive(start: Any) -> None:
    """A head sent a byte at a time is closed: bytes do not restart the deadline."""
    listener = await start()
    reader, writer = await listener.connect()
    async with asyncio.timeout(10):
        for byte in GET[:-2]:
            try:
                writer.write(bytes([byte]))
                await writer.drain()
            except ConnectionError:
                break
            if not await still_open(reader, HEAD_TIMEOUT / 6):
                break
        else:
            raise AssertionError("the trickled head was answered or the connection kept")
    writer.close()


async def test_slow_body_is_not_cut_by_the_head_deadline(start: Any) -> None:
    """Once the head is complete the deadline is off: a body arriving slowly over several
    head deadlines is read and answered."""
    listener = await start()
    reader, writer = await listener.connect()
    writer.write(b"POST /body HTTP/1.1\r\nHost: gw\r\nContent-Length: 4\r\n\r\n")
    for byte in b"abcd":
        await asyncio.sleep(HEAD_TIMEOUT / 2)
        writer.write(bytes([byte]))
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    assert head.startswith(b"HTTP/1.1 200")
    assert await reader.readexactly(1) == b"4"
    # Body bytes started no head deadline: the connection idles on as keep-alive.
    assert await still_open(reader, HEAD_TIMEOUT * 3)
    assert await answer(reader, writer, GET) == b"HTTP/1.1 200 OK ok"
    writer.close()


async def test_idle_keep_alive_is_not_cut_by_the_head_deadline(start: Any) -> None:
    """Between requests a keep-alive connection may idle past the head deadline; the next
    request's head, once begun, must be complete in time."""
    listener = await start()
    reader, writer = await listener.connect()
    assert await answer(reader, writer, GET) == b"HTTP/1.1 200 OK ok"
    assert await still_open(reader, HEAD_TIMEOUT * 3)
    assert await answer(reader, writer, GET) == b"HTTP/1.1 200 OK ok"
    writer.write(GET[:10])
    assert await until_closed(reader) == b""
    writer.close()


async def test_pipelined_requests_are_answered(start: Any) -> None:
    """Two requests in one write are both answered before any deadline applies."""
    listener = await start()
    reader, writer = await listener.connect()
    writer.write(GET + GET)
    first = await asyncio.wait_for(reader.readuntil(b"ok"), 10)
    second = await asyncio.wait_for(reader.readuntil(b"ok"), 10)
    assert first.startswith(b"HTTP/1.1 200")
    assert second.startswith(b"HTTP/1.1 200")
    writer.close()


# --- bounds on connections --------------------------------------------------------------


async def test_connections_beyond_the_limit_get_503_until_one_closes(start: Any) -> None:
    """max_connections 2: a third connection is told 'Too many connections' and closed;
    once one closes, a new one is served."""
    listener = await start(config(max_connections=2, max_connections_per_client=0))
    held = [await listener.connect() for _ in range(2)]
    reader, writer = await listener.connect()
    refused = await until_closed(reader)
    assert refused.startswith(BUSY)
    assert refused.endswith(b"\r\n\r\nToo many connections\n")
    writer.close()
    reader, writer = await listener.connect()
    assert (await until_closed(reader)).startswith(BUSY)
    assert listener.count.refused == 2
    assert listener.count.open == 2
    held[0][1].close()
    await until(lambda: listener.count.open == 1)
    reader, writer = await listener.connect()
    assert await answer(reader, writer, GET) == b"HTTP/1.1 200 OK ok"
    writer.close()
    held[1][1].close()


async def test_connections_beyond_the_per_address_cap_get_503(start: Any) -> None:
    """max_connections_per_client 2: a third connection from one address is told so and
    closed; another address is served; after one closes, the address may connect again."""
    listener = await start(config(max_connections=10, max_connections_per_client=2))
    held = [await listener.connect() for _ in range(2)]
    reader, writer = await listener.connect()
    refused = await until_closed(reader)
    assert refused.startswith(BUSY)
    assert refused.endswith(b"\r\n\r\nToo many connections from your address\n")
    writer.close()
    reader, writer = await listener.connect()
    assert (await until_closed(reader)).startswith(BUSY)
    other_reader, other_writer = await listener.connect("127.0.0.2")
    assert await answer(other_reader, other_writer, GET) == b"HTTP/1.1 200 OK ok"
    other_writer.close()
    held[0][1].close()
    await until(lambda: listener.count.by_client.get("127.0.0.1") == 1)
    reader, writer = await listener.connect()
    assert await answer(reader, writer, GET) == b"HTTP/1.1 200 OK ok"
    writer.close()
    held[1][1].close()
    await until(lambda: listener.count.open == 0)
    assert listener.count.by_client == {}  # no entry left behind per address
    assert listener.count.refused == 2


def test_count_admits_up_to_the_cap_per_address() -> None:
    """admit counts up to per_client per address; release undoes it and forgets an address
    at zero; per_client 0 means no cap."""
    count = ConnectionCount(limit=100, per_client=2)
    assert count.admit("a")
    assert count.admit("a")
    assert not count.admit("a")
    assert count.by_client == {"a": 2}
    assert count.admit("b")
    count.release("a")
    assert count.by_client == {"a": 1, "b": 1}
    count.release("a")
    count.release("b")
    assert count.by_client == {}
    count.release("never")
    assert count.by_client == {}
    unlimited = ConnectionCount(limit=100)
    assert all(unlimited.admit("a") for _ in range(1000))
    assert unlimited.by_client == {"a": 1000}


# --- the listener -----------------------------------------------------------------------


def test_peer_address_is_the_address_without_port() -> None:
    """IPv4 and IPv6 peers give their address; a socket without one (unix) gives None."""

    class Transport:
        def __init__(self, peer: Any) -> None:
            self.peer = peer

        def get_extra_info(self, name: str) -> Any:
            return self.peer if name == "peername" else None

    assert _peer_address(Transport(("192.0.2.1", 5000))) == "192.0.2.1"  # type: ignore[arg-type]
    assert _peer_address(Transport(("::1", 5000, 0, 0))) == "::1"  # type: ignore[arg-type]
    for peer in ("", None, (), (b"x", 1)):
        assert _peer_address(Transport(peer)) is None  # type: ignore[arg-type]


async def test_oversized_header_is_refused(start: Any) -> None:
    """A header line over limits.max_header_size is refused (400), not read."""
    listener = await start()
    reader, writer = await listener.connect()
    writer.write(b"GET / HTTP/1.1\r\nHost: gw\r\nX-Big: " + b"a" * 2000 + b"\r\n\r\n")
    refused = await until_closed(reader)
    assert b" 400 Bad Request\r\n" in refused
    assert b"Got more than 1024 bytes" in refused
    writer.close()


def test_handler_settings_come_from_the_config() -> None:
    """The request handler gets the access logger, keepalive_timeout and header sizes."""
    cfg = config(keepalive_timeout=7)
    assert handler_args(cfg) == {
        "access_log": access_log,
        "access_log_class": GatewayAccessLogger,
        "keepalive_timeout": 7,
        "max_line_size": 1024,
        "max_field_size": 1024,
    }


async def test_site_wiring_and_name() -> None:
    """bounded_site hands listen's timeouts and bounds to its factory; its name says the
    scheme it serves."""
    runner = web.AppRunner(web.Application(), handle_signals=False)
    await runner.setup()
    try:
        cfg = config(max_connections=7, max_connections_per_client=3, header_timeout=4)
        site = bounded_site(
            runner, cfg, "127.0.0.1", 8443, ssl_context=ssl.create_default_context()
        )
        factory: ConnectionFactory = site._factory
        assert (factory.count.limit, factory.count.per_client) == (7, 3)
        assert factory._head_timeout == 4
        assert factory._handler_args == handler_args(cfg)
        assert site.name == "https://127.0.0.1:8443"
        assert bounded_site(runner, cfg, "::1", 80).name == "http://::1:80"
    finally:
        await runner.cleanup()


async def test_reuse_port_lets_two_listeners_share_a_port() -> None:
    """With reuse_port two sites bind the same port (workers); by default a third fails."""
    runners = []
    try:
        port = free_port()
        sites = []
        for reuse in (True, True, None):
            runner = web.AppRunner(web.Application(), handle_signals=False)
            await runner.setup()
            runners.append(runner)
            if reuse is None:  # the default: no port sharing
                sites.append(bounded_site(runner, config(), "127.0.0.1", port))
            else:
                sites.append(bounded_site(runner, config(), "127.0.0.1", port, reuse_port=reuse))
        await sites[0].start()
        await sites[1].start()
        with pytest.raises(OSError, match=r"(?i)in use"):
            await sites[2].start()
    finally:
        for runner in runners:
            await runner.cleanup()


async def test_refusal_closes_without_reading_the_body(start: Any) -> None:
    """close_unread: the refusal is sent with Connection: close and the connection closes
    while the client is still sending, instead of the body being read for nothing."""
    listener = await start()
    reader, writer = await listener.connect()
    writer.write(b"POST /refuse HTTP/1.1\r\nHost: gw\r\nContent-Length: 100000000\r\n\r\n")
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    assert head.startswith(b"HTTP/1.1 413")
    assert b"Connection: close" in head
    closed = False
    async with asyncio.timeout(5):  # aiohttp would go on reading for 10 s
        while not closed:
            try:
                writer.write(b"x" * 65536)
                await writer.drain()
                closed = await asyncio.wait_for(reader.read(4096), 0.05) in (b"", b"no")
            except TimeoutError:
                continue
            except ConnectionError:
                closed = True


async def test_tls_listener_serves_tls(start: Any, tmp_path: Path) -> None:
    """With an ssl_context the site speaks TLS (and is named https)."""
    cert, key = self_signed(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    listener = await start(ssl_context=server_tls)
    assert listener.site.name.startswith("https://")
    client_tls = ssl.create_default_context(cafile=str(cert))
    client_tls.check_hostname = False
    reader, writer = await asyncio.open_connection("127.0.0.1", listener.port, ssl=client_tls)
    listener.writers.append(writer)
    assert await answer(reader, writer, GET) == b"HTTP/1.1 200 OK ok"


async def test_a_restarted_listener_binds_its_port_despite_time_wait(start: Any) -> None:
    """A listener started on the port of one that just closed connections itself (they
    linger in TIME_WAIT) binds it: the address is reusable (a restart does not fail)."""
    first = await start()
    reader, _ = await first.connect()
    assert await until_closed(reader) == b""  # closed by the server: TIME_WAIT on its side
    await first.close()
    await first.site.stop()
    second = await start(port=first.port)
    reader, writer = await second.connect()
    assert await answer(reader, writer, GET) == b"HTTP/1.1 200 OK ok"


async def test_the_listener_binds_only_its_host(start: Any) -> None:
    """A listener on 127.0.0.1 is not reachable on another local address."""
    listener = await start()
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.2", listener.port)


async def test_the_kernel_queues_at_most_1024_connections_not_yet_accepted(start: Any) -> None:
    """The listener's accept backlog is 1024, read from the kernel (`ss`): a connection
    burst beyond it is refused by the kernel rather than queued (aiohttp's own default
    is 128, which a busy gateway outgrows)."""
    listener = await start()
    ss = await asyncio.create_subprocess_exec(
        "ss", "-ltnH", f"sport = :{listener.port}", stdout=asyncio.subprocess.PIPE
    )
    shown = (await ss.communicate())[0].decode().split()
    assert shown[0] == "LISTEN"
    assert int(shown[2]) == 1024  # Send-Q of a listening socket: its backlog
