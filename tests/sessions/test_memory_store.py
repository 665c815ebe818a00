"""What only the memory store has: a size bound, and StoreUnavailable once closed."""

from __future__ import annotations

import pytest

from gateway.errors import StoreUnavailable
from gateway.sessions.memory import MemoryStore
from tests.sessions.common import FakeClock


async def test_a_full_store_drops_expired_entries_first_then_the_oldest() -> None:
    """At max_entries, expired entries go first, then the least recently written."""
    clock = FakeClock(0)
    store = MemoryStore(max_entries=3, clock=clock)
    await store.set("short", b"1", 1)
    await store.set("a", b"2", 100)
    await store.set("b", b"3", 100)
    clock.advance(2)
    await store.set("c", b"4", 100)  # the expired "short" makes room
    assert len(store) == 3
    assert store.evictions == 0
    await store.set("a", b"rewritten", 100)  # now "b" is the oldest write
    await store.set("d", b"5", 100)
    assert await store.get("b") is None
    assert [await store.get(k) for k in ("a", "c", "d")] == [b"rewritten", b"4", b"5"]
    assert store.evictions == 1


async def test_expiry_follows_the_injected_clock() -> None:
    """Values and indexes expire exactly at their TTL on the store's clock."""
    clock = FakeClock(0)
    store = MemoryStore(clock=clock)
    await store.set("k", b"v", 10)
    await store.add_to_index("i", "m", 10)
    clock.advance(9.999)
    assert await store.get("k") == b"v"
    assert await store.index_members("i") == {"m"}
    clock.advance(0.001)
    assert await store.get("k") is None
    assert await store.index_members("i") == set()


async def test_a_closed_store_is_unavailable() -> None:
    """After close, calls raise StoreUnavailable rather than pretending to be empty."""
    store = MemoryStore()
    await store.set("k", b"v", 10)
    await store.close()
    with pytest.raises(StoreUnavailable):
        await store.get("k")
    with pytest.raises(StoreUnavailable):
        await store.ping()


async def test_a_partition_full_evicts_only_its_own_entries() -> None:
    """Keys under a partition prefix fill their own table: its oldest entry goes, the main
    table's entries (sessions) are never evicted by them."""
    store = MemoryStore(max_entries=2, partitions={"login:": 3})
    await store.set("sess:a", b"A", 100)
    for i in range(50):
        await store.set(f"login:{i}", b"x", 100)
    assert await store.get("sess:a") == b"A"
    assert (len(store), store.partition_size("login:"), store.evictions) == (1, 3, 0)
    assert [await store.get(f"login:{i}") for i in (46, 47, 48, 49)] == [None, b"x", b"x", b"x"]
    assert await store.take("login:49") == b"x"
    assert await store.release_lock("login:48", b"x")
    assert store.partition_size("login:") == 1
