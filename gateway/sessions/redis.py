"""The Redis session store (redis-py asyncio): standalone, TLS, Sentinel or Cluster.

Every key and channel carries the configured prefix. Indexes are Redis sets whose TTL
is raised to the longest member's. Pub/sub runs on its own connection without retries,
so that a lost connection is noticed, reported and resubscribed.
"""

from __future__ import annotations

import asyncio
import builtins
import functools
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from functools import partial
from typing import Any
from urllib.parse import unquote, urlsplit

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.exceptions import RedisClusterException, RedisError

from gateway import metrics, tracing
from gateway.config.model import RedisConfig
from gateway.errors import StoreUnavailable
from gateway.sessions.store import ConnectionHandler, MessageHandler

__all__ = ["RedisStore"]

Client = Redis | RedisCluster

# One quick retry rides out a dropped pooled connection (server restart, failover) without
# letting a dead server hold a request for long: each try is bounded by config.timeout.
COMMAND_RETRIES = 1
LISTEN_POLL = 1.0  # seconds a listener blocks on a read before looping
PUBSUB_HEALTH_CHECK = 5.0  # seconds between PINGs on an idle pub/sub connection
RECONNECT_MIN, RECONNECT_MAX = 0.05, 2.0  # listener reconnect back-off, seconds
BATCH = 1000  # keys per MGET and commands per pipeline: bounds one reply's size

_STORE_ERRORS = (RedisError, RedisClusterException, OSError)

_RELEASE_LOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_REPLACE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
"""
# PTTL is -1 without a TTL and -2 for a missing key, both below any real TTL.
_ADD_TO_INDEX = """
redis.call('SADD', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1
"""

log = logging.getLogger(__name__)


def _ms(ttl: float) -> int:
    if not ttl > 0:
        raise ValueError(f"ttl must be positive, got {ttl!r}")
    return max(1, math.ceil(ttl * 1000))


def _retry(retries: int) -> Retry:
    return Retry(ExponentialBackoff(cap=0.5, base=0.05) if retries else NoBackoff(), retries)


def _connection_kwargs(config: RedisConfig, *, retries: int) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "socket_timeout": config.timeout,
        "socket_connect_timeout": config.timeout,
        "retry": _retry(retries),
    }
    if config.password is not None:
        kwargs["password"] = config.password.reveal()
    if config.ca_file is not None:
        kwargs["ssl_ca_certs"] = config.ca_file
    return kwargs


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return (host.strip("[]") or address, int(port) if port else 26379)


def _sentinel_clients(config: RedisConfig) -> tuple[Sentinel, Redis, Redis]:
    """Clients for the master named in config, found through the sentinels."""
    url = urlsplit(config.url)
    master: dict[str, Any] = {"db": int(url.path.lstrip("/") or 0), "ssl": url.scheme == "rediss"}
    if url.username:
        master["username"] = unquote(url.username)
    if url.password and config.password is None:
        master["password"] = unquote(url.password)
    base = _connection_kwargs(config, retries=COMMAND_RETRIES)
    # Sentinels get the timeouts, retry and TLS settings, but not the data password.
    to_sentinels = {k: v for k, v in base.items() if k != "password"}
    if master["ssl"]:
        to_sentinels["ssl"] = True
    hosts = [_host_port(a) for a in config.sentinel or ()]
    sentinel = Sentinel(hosts, sentinel_kwargs=to_sentinels, **base, **master)  # type: ignore[no-untyped-call]
    name = config.master_name or ""
    client = sentinel.master_for(name)
    listener = sentinel.master_for(name, retry=_retry(0), health_check_interval=PUBSUB_HEALTH_CHECK)
    return sentinel, client, listener


class RedisStore:
    """A :class:`~gateway.sessions.store.SessionStore` on Redis."""

    def __init__(
        self,
        client: Client,
        listener_client: Redis,
        *,
        key_prefix: str,
        timeout: float,
        sentinel: Sentinel | None = None,
    ) -> None:
        self._client = client
        self._listener_client = listener_client
        self._prefix = key_prefix
        self._timeout = timeout
        self._sentinel = sentinel
        self._tasks: list[asyncio.Task[None]] = []
        # redis-py's async cluster client breaks connections when its first commands run
        # concurrently before it has read the slot map; initialise it once, alone.
        self._initialised = not isinstance(client, RedisCluster)
        self._init_lock = asyncio.Lock()

    @classmethod
    def from_config(cls, config: RedisConfig) -> RedisStore:
        """Build clients for the configured deployment; nothing connects until first use."""
        prefix, timeout = config.key_prefix, config.timeout
        if config.sentinel:
            sentinel, client, listener = _sentinel_clients(config)
            return cls(client, listener, key_prefix=prefix, timeout=timeout, sentinel=sentinel)
        listener_kwargs = _connection_kwargs(config, retries=0)
        listener_kwargs["health_check_interval"] = PUBSUB_HEALTH_CHECK
        # Classic pub/sub is broadcast to the whole cluster, so one node serves the listener.
        listener = Redis.from_url(config.url, **listener_kwargs)
        kwargs = _connection_kwargs(config, retries=COMMAND_RETRIES)
        commands: Client
        if config.cluster:
            commands = RedisCluster.from_url(config.url, **kwargs)
        else:
            commands = Redis.from_url(config.url, **kwargs)
        return cls(commands, listener, key_prefix=prefix, timeout=timeout)

    def _key(self, key: str) -> str:
        return self._prefix + key

    async def _call(self, what: str, command: Callable[[Client], Awaitable[Any] | Any]) -> Any:
        # redis-py types results as "Awaitable[X] | X" for its sync and async clients alike.
        # ``what`` is a fixed command word: a bounded metrics label, never a key.
        started = time.perf_counter()
        failed = False
        try:
            with tracing.span(f"redis {what}", _span_attributes(what), client=True):
                if not self._initialised:
                    await self._initialise()
                return await command(self._client)
        except _STORE_ERRORS as exc:
            failed = True
            raise StoreUnavailable(f"redis {what} failed: {type(exc).__name__}: {exc}") from exc
        finally:
            metrics.redis_command(what, time.perf_counter() - started, failed=failed)

    async def _initialise(self) -> None:
        async with self._init_lock:
            if not self._initialised and isinstance(self._client, RedisCluster):
                await self._client.initialize()
            self._initialised = True

    async def get(self, key: str) -> bytes | None:
        """The value under ``key``, or None if absent or expired."""
        value: bytes | None = await self._call("GET", lambda c: c.get(self._key(key)))
        return value

    async def scan(self, prefix: str, cursor: str, count: int) -> tuple[list[str], str]:
        """SCAN MATCH <prefix>* (a cluster is scanned node by node; its cursor is an offset)."""
        pattern = _glob_escape(self._key(prefix)) + "*"
        if isinstance(self._client, RedisCluster):
            everything = sorted(
                await self._call("SCAN", lambda c: _scan_all(c, pattern))
            )  # fmt: skip
            start = int(cursor or 0)
            page = everything[start : start + count]
            rest = str(start + count) if start + count < len(everything) else ""
            return [self._unkey(k) for k in page], rest
        next_cursor, found = await self._call(
            "SCAN", lambda c: c.scan(int(cursor or 0), match=pattern, count=count)
        )
        keys = [self._unkey(k) for k in found]
        return keys, ("" if int(next_cursor) == 0 else str(next_cursor))

    def _unkey(self, key: bytes | str) -> str:
        text = key.decode() if isinstance(key, bytes) else key
        return text[len(self._prefix) :]

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """MGET per batch; the cluster client splits each by slot and pipelines the parts."""
        values: list[bytes | None] = []
        for start in range(0, len(keys), BATCH):
            batch = [self._key(k) for k in keys[start : start + BATCH]]
            values.extend(await self._call("MGET", partial(_mget, keys=batch)))
        return values

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        """SET PX."""
        ms = _ms(ttl)
        await self._call("SET", lambda c: c.set(self._key(key), value, px=ms))

    async def set_if_exists(self, key: str, value: bytes, ttl: float) -> bool:
        """SET XX PX."""
        ms = _ms(ttl)
        return bool(
            await self._call("SET XX", lambda c: c.set(self._key(key), value, px=ms, xx=True))
        )

    async def replace(self, key: str, expected: bytes, value: bytes, ttl: float) -> bool:
        """Compare and set in one script."""
        args = (self._key(key), expected, value, _ms(ttl))
        return bool(await self._call("replace", lambda c: c.eval(_REPLACE, 1, *args)))

    async def delete(self, *keys: str) -> int:
        """DEL (split per slot by the cluster client)."""
        if not keys:
            return 0
        full = [self._key(k) for k in keys]
        count: int = await self._call("DEL", lambda c: c.delete(*full))
        return count

    async def take(self, key: str) -> bytes | None:
        """GETDEL: atomic on the server."""
        value: bytes | None = await self._call("GETDEL", lambda c: c.getdel(self._key(key)))
        return value

    async def add_to_index(self, index: str, member: str, ttl: float) -> None:
        """SADD, then raise the set's TTL to ``ttl`` if it is shorter (one script)."""
        args = (self._key(index), member, _ms(ttl))
        await self._call("SADD", lambda c: c.eval(_ADD_TO_INDEX, 1, *args))

    async def remove_from_index(self, index: str, *members: str) -> None:
        """SREM; Redis drops a set once it is empty."""
        if members:
            await self._call("SREM", lambda c: c.srem(self._key(index), *members))

    async def remove_from_indexes(self, changes: Mapping[str, Sequence[str]]) -> None:
        """One SREM per index, pipelined (without MULTI, so cluster slots may differ)."""
        pending = [(self._key(index), list(members)) for index, members in changes.items()]
        pending = [(index, members) for index, members in pending if members]
        for start in range(0, len(pending), BATCH):
            batch = pending[start : start + BATCH]
            await self._call("SREM", partial(_srem_pipelined, batch=batch))

    async def index_members(self, index: str) -> builtins.set[str]:
        """SMEMBERS."""
        raw: builtins.set[bytes] = await self._call(
            "SMEMBERS", lambda c: c.smembers(self._key(index))
        )
        return {m.decode() for m in raw}

    async def set_if_absent(self, key: str, value: bytes, ttl: float) -> bool:
        """SET NX PX."""
        ms = _ms(ttl)
        return bool(
            await self._call("SET NX", lambda c: c.set(self._key(key), value, px=ms, nx=True))
        )

    async def release_lock(self, key: str, token: bytes) -> bool:
        """Compare and delete in one script, so a lock taken over after expiry is kept."""
        full = self._key(key)
        return bool(
            await self._call("release lock", lambda c: c.eval(_RELEASE_LOCK, 1, full, token))
        )

    async def publish(self, channel: str, message: str) -> None:
        """PUBLISH."""
        # execute_command: the cluster client has no publish(); any node broadcasts it.
        full = self._key(channel)
        await self._call("PUBLISH", lambda c: c.execute_command("PUBLISH", full, message))

    async def ping(self) -> None:
        """PING."""
        await self._call("PING", lambda c: c.ping())

    async def subscribe(
        self,
        channel: str,
        callback: MessageHandler,
        *,
        on_connection: ConnectionHandler | None = None,
    ) -> None:
        """Start a listener task; wait up to the command timeout for its first subscription."""
        first_attempt = asyncio.Event()
        listener = _Listener(self._listener_client.pubsub(), self._key(channel), callback)
        listener.on_connection = on_connection
        task = asyncio.create_task(listener.run(first_attempt), name=f"redis-listener:{channel}")
        self._tasks.append(task)
        try:
            async with asyncio.timeout(self._timeout):
                await first_attempt.wait()
        except TimeoutError:
            log.warning("redis: subscription to %s not confirmed yet; still trying", channel)

    async def close(self) -> None:
        """Stop listeners, then close every connection pool."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await self._listener_client.aclose()
        await self._client.aclose()
        if self._sentinel is not None:
            for sentinel in self._sentinel.sentinels:
                await sentinel.aclose()


@functools.cache
def _span_attributes(what: str) -> dict[str, str]:
    return {"db.system.name": "redis", "db.operation.name": what}


async def _mget(client: Client, keys: list[str]) -> list[bytes | None]:
    if isinstance(client, RedisCluster):
        return await client.mget_nonatomic(keys)
    values: list[bytes | None] = await client.mget(keys)
    return values


async def _srem_pipelined(client: Client, batch: list[tuple[str, list[str]]]) -> None:
    pipe = client.pipeline() if isinstance(client, RedisCluster) else client.pipeline(False)
    async with pipe:
        for index, members in batch:
            pipe.srem(index, *members)
        await pipe.execute()


class _Listener:
    """One channel on a dedicated pub/sub connection, resubscribed after every reconnect."""

    def __init__(self, pubsub: PubSub, channel: str, callback: MessageHandler) -> None:
        self.pubsub = pubsub
        self.channel = channel
        self.callback = callback
        self.on_connection: ConnectionHandler | None = None
        self.connected = False

    async def run(self, first_attempt: asyncio.Event) -> None:
        delay = RECONNECT_MIN
        try:
            while True:
                try:
                    await self._step()
                except _STORE_ERRORS as exc:
                    first_attempt.set()
                    self._lost(exc)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, RECONNECT_MAX)
                    continue
                if self.connected:
                    first_attempt.set()
                    delay = RECONNECT_MIN
        finally:
            await self.pubsub.aclose()  # type: ignore[no-untyped-call]

    async def _step(self) -> None:
        if not self.pubsub.channels:
            await self.pubsub.subscribe(self.channel)
        message = await self.pubsub.get_message(timeout=LISTEN_POLL)
        if message is None:
            return
        if message["type"] == "subscribe":
            # Also sent after redis-py reconnects and resubscribes: anything published
            # meanwhile was missed, which the handler learns from a fresh True.
            self.connected = True
            self._notify(True)
        elif message["type"] == "message":
            try:
                self.callback(message["data"].decode("utf-8"))
            except Exception:
                log.exception("redis: subscriber of %s failed", self.channel)

    def _lost(self, exc: BaseException) -> None:
        if self.connected:
            self.connected = False
            log.warning("redis: lost subscription to %s: %s", self.channel, exc)
            self._notify(False)

    def _notify(self, up: bool) -> None:
        if self.on_connection is not None:
            try:
                self.on_connection(up)
            except Exception:
                log.exception("redis: connection handler of %s failed", self.channel)


def _glob_escape(text: str) -> str:
    """``text`` matched literally by a Redis glob (a key prefix may hold * ? [ ])."""
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)


async def _scan_all(client: Any, pattern: str) -> list[Any]:
    return [key async for key in client.scan_iter(match=pattern, count=500)]
