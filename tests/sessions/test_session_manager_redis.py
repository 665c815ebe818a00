"""SessionManager on a real Redis: what Redis holds, several instances, outages, cost."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from gateway.config.model import Sessions
from gateway.crypto import KeyRing
from gateway.errors import StoreUnavailable
from gateway.sessions.manager import SessionManager
from gateway.sessions.redis import RedisStore
from gateway.types import SessionRecord, TokenSet
from tests.sessions.common import SECRET, redis_store
from tests.support.redis import RedisServer

ISSUER = "https://idp.example.com"
SECRETS = ["access-TOKEN-4b1d", "refresh-TOKEN-9c2e", "id-TOKEN-77aa", "alice@example.com"]


def record(sub: str = "alice", sid: str | None = "sid-1") -> SessionRecord:
    return SessionRecord(
        provider="idp",
        issuer=ISSUER,
        subject=sub,
        sid=sid,
        claims={"sub": sub, "email": f"{sub}@example.com"},
        tokens=TokenSet(
            access_token=f"access-TOKEN-4b1d-{sub}",
            refresh_token=f"refresh-TOKEN-9c2e-{sub}",
            id_token=f"id-TOKEN-77aa-{sub}",
        ),
        created_at=0,
        last_seen=0,
        expires_at=0,
    )


@pytest.fixture
async def two_managers(
    redis_server: RedisServer, prefix: str
) -> AsyncIterator[tuple[SessionManager, SessionManager]]:
    """Two instances' managers on one Redis, each with its own cache (60 s)."""
    managers = (
        manager_on(redis_store(redis_server, prefix), cache_ttl=60),
        manager_on(redis_store(redis_server, prefix), cache_ttl=60),
    )
    for manager in managers:
        await manager.start()
    yield managers
    for manager in managers:
        await manager.close()


def manager_on(store: RedisStore, **settings: object) -> SessionManager:
    values: dict[str, object] = {"cache_ttl": 0, **settings}
    return SessionManager(store, KeyRing([SECRET]), Sessions.model_validate(values), time.time)


def dump(server: RedisServer, prefix: str) -> list[bytes]:
    """Every key name and value (strings and set members) under ``prefix``, raw."""
    found: list[bytes] = []
    with server.client() as raw:
        for key in raw.scan_iter(prefix + "*"):
            found.append(key)
            if raw.type(key) == b"set":
                found.extend(raw.smembers(key))
            else:
                found.append(raw.get(key))
    return found


async def test_redis_holds_no_readable_tokens_or_ids(
    redis_server: RedisServer, prefix: str
) -> None:
    """Neither tokens, subject, sid, e-mail nor the ticket's parts appear in Redis."""
    store = redis_store(redis_server, prefix)
    manager = manager_on(store)
    try:
        ticket = await manager.create(record())
        await manager.put_login_state(
            "binding-xyz", {"state": "state-abc", "verifier": "VERIFIER-secret-1"}, 60
        )
    finally:
        await manager.close()
    stored = dump(redis_server, prefix)
    assert len(stored) >= 6  # session, two indexes and their members, login state
    session_id, session_key = ticket.split(".")
    forbidden = [*SECRETS, "sid-1", "alice", "VERIFIER-secret-1", "state-abc", "binding-xyz"]
    for needle in [*forbidden, session_id, session_key]:
        assert not any(needle.encode() in blob for blob in stored), needle


async def test_a_logout_on_one_instance_reaches_the_others_cache(
    redis_server: RedisServer, prefix: str, two_managers: tuple[SessionManager, SessionManager]
) -> None:
    """A caches a session; B destroys it; within 100 ms A's load gives None."""
    a, b = two_managers
    ticket = await a.create(record())
    loaded = await a.load(ticket)
    assert loaded is not None
    with redis_server.client() as raw:  # prove A serves from its cache...
        saved = raw.dump(prefix + "sess:" + loaded.handle)
        raw.delete(prefix + "sess:" + loaded.handle)
        assert await a.load(ticket) is not None
        raw.restore(prefix + "sess:" + loaded.handle, 60_000, saved)
    assert await b.destroy(loaded.session_id)  # ...until B's logout reaches it
    started = time.monotonic()
    while await a.load(ticket) is not None:
        assert time.monotonic() - started < 0.1
        await asyncio.sleep(0.002)


async def test_a_refresh_on_one_instance_reaches_the_others_cache(
    two_managers: tuple[SessionManager, SessionManager],
) -> None:
    """B saves new tokens; A's next loads see them, not its cached copy."""
    a, b = two_managers
    ticket = await a.create(record())
    assert await a.load(ticket) is not None
    on_b = await b.load(ticket)
    assert on_b is not None
    on_b.record.tokens = TokenSet(access_token="fresh")
    assert await b.save(on_b)
    started = time.monotonic()
    while (seen := await a.load(ticket)) and seen.record.tokens.access_token != "fresh":
        assert time.monotonic() - started < 0.1
        await asyncio.sleep(0.002)


@pytest.mark.slow
async def test_a_stopped_store_is_an_error_not_a_logout(persistent_redis: RedisServer) -> None:
    """Redis down: StoreUnavailable (not None); back up: the same session loads again."""
    manager = manager_on(redis_store(persistent_redis, "gw:", timeout=0.5))
    try:
        ticket = await manager.create(record())
        await asyncio.to_thread(persistent_redis.stop)
        with pytest.raises(StoreUnavailable):
            await manager.load(ticket)
        with pytest.raises(StoreUnavailable):
            await manager.destroy_by_sub(ISSUER, "alice")
        with pytest.raises(StoreUnavailable):
            await manager.ping()
        await asyncio.to_thread(persistent_redis.start)
        loaded = await manager.load(ticket)
        assert loaded is not None
        assert loaded.record.subject == "alice"
        await manager.ping()
    finally:
        await manager.close()


def _command_calls(server: RedisServer) -> dict[str, int]:
    """Calls per command since the last CONFIG RESETSTAT (INFO and CONFIG left out)."""
    with server.client() as raw:
        stats = raw.info("commandstats")
    names = {k.removeprefix("cmdstat_"): v["calls"] for k, v in stats.items()}
    return {k: v for k, v in names.items() if k not in {"info", "config", "config|resetstat"}}


@pytest.mark.slow
async def test_destroy_by_sub_costs_only_that_users_sessions(
    redis_server: RedisServer, prefix: str
) -> None:
    """With 10,000 other sessions in Redis, ending 50 reads them in one MGET, no SCAN/KEYS."""
    store = redis_store(redis_server, prefix)
    manager = manager_on(store)
    try:
        for start in range(0, 10_000, 500):
            await asyncio.gather(
                *(
                    manager.create(record(f"user-{i}", f"sid-{i}"))
                    for i in range(start, start + 500)
                )
            )
        mine = [await manager.create(record("alice", f"sid-a{i}")) for i in range(50)]
        with redis_server.client() as raw:
            raw.config_resetstat()
        assert await manager.destroy_by_sub(ISSUER, "alice") == 50
        calls = _command_calls(redis_server)
        # SMEMBERS, one MGET, one DEL, PUBLISH, and one SREM per index touched (the sub
        # index and 50 sid indexes, sent as one pipeline): no command per session read.
        assert calls == {"smembers": 1, "mget": 1, "del": 1, "srem": 51, "publish": 1}
        assert [await manager.load(t) for t in mine] == [None] * 50
        assert await manager.load(await manager.create(record("user-1"))) is not None
        with redis_server.client() as raw:
            assert len(list(raw.scan_iter(prefix + "sess:*", count=1000))) >= 10_000
    finally:
        await manager.close()
