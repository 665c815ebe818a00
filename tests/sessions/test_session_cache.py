"""The per-instance cache of opened sessions: copies, clock checks, eviction, pruning."""

from __future__ import annotations

import pytest

from gateway.sessions.cache import CachedSession, SessionCache
from gateway.sessions.codec import SessionMeta, Ticket
from gateway.sessions.layout import sess_key
from gateway.sessions.manager import SessionManager
from gateway.sessions.store import SessionStore
from gateway.types import SessionRecord, TokenSet
from tests.sessions.common import FakeClock, ManagerFactory
from tests.sessions.test_session_manager import ISSUER, record

IDLE, ABSOLUTE = 600.0, 900.0


@pytest.fixture
def cached(make_manager: ManagerFactory) -> SessionManager:
    """A manager whose cache outlives every timeout in these tests."""
    manager = make_manager(idle_timeout=IDLE, absolute_timeout=ABSOLUTE, cache_ttl=10_000)
    manager._cache.set_live(True)  # as start() does once subscribed
    return manager


async def _forget_behind_its_back(store: SessionStore, ticket: str) -> None:
    """Delete the stored session without an invalidation: only the cache still has it."""
    parsed = Ticket.parse(ticket)
    assert parsed is not None
    await store.delete(sess_key(parsed.handle))


async def test_a_hit_is_a_copy_the_caller_may_change(
    cached: SessionManager, store: SessionStore
) -> None:
    """Changing a loaded record (as a refresh does) never reaches other readers of the cache."""
    ticket = await cached.create(record())
    first = await cached.load(ticket)
    assert first is not None
    original = SessionRecord(**{f: getattr(first.record, f) for f in first.record.__slots__})
    first.record.tokens = TokenSet(access_token="half-done")
    first.record.last_seen += 1
    await _forget_behind_its_back(store, ticket)
    second = await cached.load(ticket)  # served by the cache: the store has nothing
    assert second is not None
    assert second.record is not first.record
    assert original == second.record


async def test_cache_ttl_zero_reads_the_store_every_time(
    make_manager: ManagerFactory, store: SessionStore
) -> None:
    """With cache_ttl 0 nothing is kept: a session gone from the store is gone at once."""
    manager = make_manager(cache_ttl=0)
    manager._cache.set_live(True)
    ticket = await manager.create(record())
    assert await manager.load(ticket) is not None
    await _forget_behind_its_back(store, ticket)
    assert None is await manager.load(ticket)


async def test_cached_sessions_still_meet_idle_and_absolute_timeouts(
    cached: SessionManager, clock: FakeClock
) -> None:
    """Each hit checks the clock: idle and absolute timeouts end a cached session on time."""
    idle_one, busy_one = await cached.create(record()), await cached.create(record("bob"))
    assert await cached.load(idle_one) is not None
    clock.advance(IDLE * 0.9)
    assert await cached.load(busy_one) is not None
    clock.advance(IDLE * 0.2)
    assert None is await cached.load(idle_one)
    clock.advance(ABSOLUTE - IDLE * 1.1 - 1)
    assert await cached.load(busy_one) is not None
    clock.advance(2)
    assert None is await cached.load(busy_one)


async def test_a_cached_session_ends_at_once_on_destroy_and_by_sub(
    cached: SessionManager,
) -> None:
    """destroy and destroy_by_sub evict the cached copies on the same instance immediately."""
    one, two = await cached.create(record()), await cached.create(record("alice", "sid-2"))
    assert await cached.load(one) is not None
    assert await cached.load(two) is not None
    loaded = await cached.load(one)
    assert loaded is not None
    assert await cached.destroy(loaded.session_id)
    assert None is await cached.load(one)
    assert await cached.destroy_by_sub(ISSUER, "alice") == 1
    assert None is await cached.load(two)


async def test_the_right_id_with_another_key_is_not_served_from_cache(
    cached: SessionManager,
) -> None:
    """A ticket whose id is cached but whose key differs loads as None."""
    ticket = await cached.create(record())
    assert await cached.load(ticket) is not None
    session_id, _, key = ticket.partition(".")
    for other in (Ticket.new().session_key, key[:-1] + ("A" if key[-1] != "A" else "B")):
        assert None is await cached.load(f"{session_id}.{other}")
    assert None is await cached.load(f"{session_id}.{key[:-1]}\u00e9")
    assert await cached.load(ticket) is not None


def _entry(stored_at: float) -> CachedSession:
    rec = record()
    return CachedSession(Ticket.new(), rec, SessionMeta.of(rec), b"raw", stored_at)


def test_expired_entries_are_dropped_when_others_are_added() -> None:
    """Many distinct sessions never pile up: an insert drops every entry past its ttl."""
    cache = SessionCache(ttl=2.0, max_entries=1_000)
    cache.set_live(True)
    for i in range(500):
        cache.put(_entry(100.0 + i / 1000), cache.generation)
    assert len(cache) == 500
    late = _entry(103.0)
    cache.put(late, cache.generation)
    assert len(cache) == 1
    assert cache.find(str(late.ticket), 103.5) is late


def test_the_cache_is_bounded_and_cleared_when_the_subscription_drops() -> None:
    """At most max_entries (oldest go first); a lost subscription empties and disables it."""
    cache = SessionCache(ttl=60.0, max_entries=10)
    cache.set_live(True)
    entries = [_entry(100.0) for _ in range(25)]
    for entry in entries:
        cache.put(entry, cache.generation)
    assert len(cache) == 10
    assert cache.find(str(entries[0].ticket), 100.0) is None
    assert cache.find(str(entries[-1].ticket), 100.0) is entries[-1]
    cache.invalidate(entries[-1].ticket.handle)
    assert cache.find(str(entries[-1].ticket), 100.0) is None
    cache.set_live(False)
    assert len(cache) == 0
    cache.put(_entry(100.0), cache.generation)
    assert len(cache) == 0
