"""What only the Redis store has: key prefix, failures as StoreUnavailable, resubscribing."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from cryptography.x509.oid import NameOID

from gateway.config.model import RedisConfig
from gateway.errors import StoreUnavailable
from gateway.secret import Secret
from gateway.sessions.redis import RedisStore
from tests.sessions.common import redis_store
from tests.support.ports import free_port
from tests.support.processes import ManagedProcess
from tests.support.redis import RedisServer

CALLS: dict[str, Callable[[RedisStore], Awaitable[object]]] = {
    "get": lambda s: s.get("k"),
    "set": lambda s: s.set("k", b"v", 10),
    "set_if_exists": lambda s: s.set_if_exists("k", b"v", 10),
    "replace": lambda s: s.replace("k", b"v", b"w", 10),
    "delete": lambda s: s.delete("k"),
    "take": lambda s: s.take("k"),
    "add_to_index": lambda s: s.add_to_index("i", "m", 10),
    "remove_from_index": lambda s: s.remove_from_index("i", "m"),
    "index_members": lambda s: s.index_members("i"),
    "set_if_absent": lambda s: s.set_if_absent("k", b"v", 10),
    "release_lock": lambda s: s.release_lock("k", b"v"),
    "publish": lambda s: s.publish("c", "m"),
    "ping": lambda s: s.ping(),
}


@pytest.fixture
async def silent_server() -> AsyncIterator[int]:
    """A TCP port that accepts connections and never answers (a hung Redis)."""
    held: list[asyncio.StreamWriter] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    for writer in held:
        writer.close()
    server.close()
    await server.wait_closed()


async def test_keys_and_channels_carry_the_prefix(redis_server: RedisServer, prefix: str) -> None:
    """Every key lands under the configured prefix, with its TTL."""
    store = redis_store(redis_server, prefix)
    try:
        await store.set("sess:x", b"v", 30)
        await store.add_to_index("idx:y", "m", 30)
    finally:
        await store.close()
    with redis_server.client() as raw:
        assert {f"{prefix}sess:x".encode(), f"{prefix}idx:y".encode()} == set(
            raw.keys(prefix + "*")
        )
        assert 0 < raw.pttl(f"{prefix}sess:x") <= 30_000
        assert 0 < raw.pttl(f"{prefix}idx:y") <= 30_000


@pytest.mark.parametrize("method", sorted(CALLS))
async def test_refused_connections_raise_store_unavailable(method: str) -> None:
    """Nothing listening: every method raises StoreUnavailable, never returns None or hangs."""
    store = _store_at(free_port(), timeout=0.5)
    try:
        with pytest.raises(StoreUnavailable, match="redis"):
            async with asyncio.timeout(10):  # a hang guard, not a speed claim
                await CALLS[method](store)
    finally:
        await store.close()


@pytest.mark.parametrize("method", ["get", "take", "index_members"])
async def test_a_hung_server_times_out_as_store_unavailable(
    method: str, silent_server: int
) -> None:
    """A server that never answers ends in StoreUnavailable (Timeout), never a hang."""
    store = _store_at(silent_server, timeout=0.3)
    try:
        with pytest.raises(StoreUnavailable, match="Timeout"):
            async with asyncio.timeout(10):  # a hang guard, not a speed claim
                await CALLS[method](store)
    finally:
        await store.close()


@pytest.mark.slow
async def test_subscription_comes_back_after_a_restart(persistent_redis: RedisServer) -> None:
    """After Redis restarts, the listener resubscribes and reports the gap (False, True)."""
    listener, publisher = redis_store(persistent_redis, "p:"), redis_store(persistent_redis, "p:")
    received: asyncio.Queue[str] = asyncio.Queue()
    states: asyncio.Queue[bool] = asyncio.Queue()
    try:
        await listener.subscribe("chan", received.put_nowait, on_connection=states.put_nowait)
        assert await states.get() is True
        await publisher.publish("chan", "before")
        assert await asyncio.wait_for(received.get(), 2) == "before"
        await asyncio.to_thread(persistent_redis.stop)
        assert await asyncio.wait_for(states.get(), 10) is False
        await asyncio.to_thread(persistent_redis.start)
        assert await asyncio.wait_for(states.get(), 10) is True
        await publisher.publish("chan", "after")
        assert await asyncio.wait_for(received.get(), 2) == "after"
        assert states.empty()
    finally:
        await listener.close()
        await publisher.close()


def _store_at(port: int, *, timeout: float) -> RedisStore:
    return RedisStore.from_config(RedisConfig(url=f"redis://127.0.0.1:{port}/0", timeout=timeout))


def _self_signed_ca_and_server(workdir: Path) -> tuple[Path, Path, Path]:
    """A CA, and a server certificate for 127.0.0.1 signed by it, as PEM files."""
    now = datetime.datetime.now(datetime.UTC)

    def build(
        subject: str,
        issuer: str,
        key: ec.EllipticCurvePrivateKey,
        signer: ec.EllipticCurvePrivateKey,
        ca: bool,
    ) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
            builder = builder.add_extension(san, critical=False)
        return builder.sign(signer, hashes.SHA256())

    ca_key, server_key = (
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP256R1()),
    )
    paths = workdir / "ca.pem", workdir / "server.pem", workdir / "server.key"
    paths[0].write_bytes(
        build("test ca", "test ca", ca_key, ca_key, True).public_bytes(Encoding.PEM)
    )
    paths[1].write_bytes(
        build("127.0.0.1", "test ca", server_key, ca_key, False).public_bytes(Encoding.PEM)
    )
    paths[2].write_bytes(
        server_key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    )
    return paths


@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """redis-server with TLS only and a password ("pw"); yields its port and CA file."""
    ca, cert, key = _self_signed_ca_and_server(tmp_path)
    port = free_port()
    argv = [
        "redis-server",
        "--port",
        "0",
        "--tls-port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--tls-cert-file",
        str(cert),
        "--tls-key-file",
        str(key),
        "--tls-ca-cert-file",
        str(ca),
        "--tls-auth-clients",
        "no",
        "--requirepass",
        "pw",
        "--save",
        "",
    ]
    process = ManagedProcess(
        "redis-tls", argv, log_path=tmp_path / "redis.log", cwd=tmp_path, ready_port=port
    )
    process.start()
    yield port, ca
    process.stop()


@pytest.mark.slow
async def test_rediss_with_ca_file_and_password(tls_redis: tuple[int, Path]) -> None:
    """rediss:// verifies the server against ca_file and authenticates with the password."""
    port, ca = tls_redis
    url = f"rediss://127.0.0.1:{port}/0"
    good = RedisConfig(url=url, ca_file=str(ca), password=Secret("pw"), timeout=1)
    store = RedisStore.from_config(good)
    try:
        await store.set("k", b"over tls", 10)
        assert await store.get("k") == b"over tls"
    finally:
        await store.close()
    for bad in (
        RedisConfig(url=url, ca_file=str(ca), password=Secret("wrong"), timeout=1),
        RedisConfig(url=url, password=Secret("pw"), timeout=1),  # system CAs do not know it
    ):
        store = RedisStore.from_config(bad)
        try:
            with pytest.raises(StoreUnavailable):
                await store.get("k")
        finally:
            await store.close()
