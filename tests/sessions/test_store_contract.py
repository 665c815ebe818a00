"""The SessionStore contract: the memory store and the Redis store behave alike."""

from __future__ import annotations

import asyncio

import pytest

from gateway.sessions.store import SessionStore

SHORT = 0.15  # seconds: a TTL that runs out during the test
WAIT = 0.35  # seconds: comfortably longer than SHORT, Redis expiry included


async def test_get_of_a_missing_key_is_none(store: SessionStore) -> None:
    """An absent key reads as None (not an error)."""
    assert None is await store.get("missing")


async def test_set_then_get_returns_the_bytes(store: SessionStore) -> None:
    """What is set is read back byte for byte, and a second set overwrites."""
    await store.set("k", b"\x00\xffvalue", 10)
    assert await store.get("k") == b"\x00\xffvalue"
    await store.set("k", b"second", 10)
    assert await store.get("k") == b"second"


async def test_values_expire_after_their_ttl(store: SessionStore) -> None:
    """A key is gone once its TTL has passed."""
    await store.set("k", b"v", SHORT)
    assert await store.get("k") == b"v"
    await asyncio.sleep(WAIT)
    assert None is await store.get("k")


@pytest.mark.parametrize("ttl", [0, -1.0])
async def test_a_ttl_must_be_positive(store: SessionStore, ttl: float) -> None:
    """Zero or negative TTLs are programming errors, refused before touching the store."""
    with pytest.raises(ValueError, match="ttl"):
        await store.set("k", b"v", ttl)


async def test_set_if_exists_only_overwrites(store: SessionStore) -> None:
    """set_if_exists never creates a key, and replaces an existing one."""
    assert False is await store.set_if_exists("k", b"v", 10)
    assert None is await store.get("k")
    await store.set("k", b"old", 10)
    assert True is await store.set_if_exists("k", b"new", 10)
    assert await store.get("k") == b"new"


async def test_replace_is_compare_and_set(store: SessionStore) -> None:
    """replace writes only over the expected value, never over another or a missing key."""
    assert False is await store.replace("k", b"old", b"new", 10)
    await store.set("k", b"old", 10)
    assert False is await store.replace("k", b"other", b"new", 10)
    assert await store.get("k") == b"old"
    assert True is await store.replace("k", b"old", b"new", SHORT)
    assert await store.get("k") == b"new"
    await asyncio.sleep(WAIT)
    assert None is await store.get("k")


async def test_delete_counts_the_keys_that_existed(store: SessionStore) -> None:
    """delete removes every given key and returns how many were there."""
    await store.set("a", b"1", 10)
    await store.set("b", b"2", 10)
    assert await store.delete("a", "b", "missing") == 2
    assert None is await store.get("a")
    assert await store.delete() == 0


async def test_take_returns_the_value_exactly_once(store: SessionStore) -> None:
    """Of many concurrent takers, one gets the value and the others None."""
    await store.set("state", b"once", 10)
    results = await asyncio.gather(*(store.take("state") for _ in range(20)))
    assert [r for r in results if r is not None] == [b"once"]
    assert None is await store.get("state")
    assert None is await store.take("missing")


async def test_index_add_list_remove(store: SessionStore) -> None:
    """Indexes are sets: adding twice keeps one, removing takes several at once."""
    assert set() == await store.index_members("idx")
    for member in ("a", "b", "c", "a"):
        await store.add_to_index("idx", member, 10)
    assert {"a", "b", "c"} == await store.index_members("idx")
    await store.remove_from_index("idx", "a", "c", "missing")
    assert {"b"} == await store.index_members("idx")
    await store.remove_from_index("idx", "b")
    assert set() == await store.index_members("idx")
    await store.remove_from_index("idx")  # no members: nothing to do


async def test_get_many_keeps_order_and_reports_missing_keys(store: SessionStore) -> None:
    """get_many answers each key in order, None where absent, across slots and batches."""
    keys = [f"k{i}" for i in range(1_200)]
    await asyncio.gather(*(store.set(k, k.encode(), 10) for k in keys[::2]))
    values = await store.get_many(keys)
    assert values == [k.encode() if i % 2 == 0 else None for i, k in enumerate(keys)]
    assert [] == await store.get_many([])


async def test_remove_from_indexes_edits_several_sets(store: SessionStore) -> None:
    """remove_from_indexes removes members from each named set and leaves the rest."""
    for index in ("i1", "i2", "i3"):
        for member in ("a", "b"):
            await store.add_to_index(index, member, 10)
    await store.remove_from_indexes({"i1": ["a"], "i2": ["a", "b", "missing"], "i3": []})
    assert {"b"} == await store.index_members("i1")
    assert set() == await store.index_members("i2")
    assert {"a", "b"} == await store.index_members("i3")
    await store.remove_from_indexes({})


async def test_index_lives_as_long_as_its_longest_ttl(store: SessionStore) -> None:
    """An index expires, but a later short TTL never shortens it."""
    await store.add_to_index("short", "m", SHORT)
    await store.add_to_index("long", "m1", 10)
    await store.add_to_index("long", "m2", SHORT)
    await asyncio.sleep(WAIT)
    assert set() == await store.index_members("short")
    assert {"m1", "m2"} == await store.index_members("long")


async def test_index_ttl_is_raised_by_a_longer_one(store: SessionStore) -> None:
    """Adding with a longer TTL extends the whole index."""
    await store.add_to_index("idx", "m1", SHORT)
    await store.add_to_index("idx", "m2", 10)
    await asyncio.sleep(WAIT)
    assert {"m1", "m2"} == await store.index_members("idx")


async def test_set_if_absent_is_a_lock(store: SessionStore) -> None:
    """Of many concurrent callers only one wins; once the key expires, the next one wins."""
    results = await asyncio.gather(*(store.set_if_absent("lock", b"t", 10) for _ in range(10)))
    assert results.count(True) == 1
    assert await store.set_if_absent("short", b"first", SHORT) is True
    assert await store.set_if_absent("short", b"other", SHORT) is False
    await asyncio.sleep(WAIT)
    assert await store.set_if_absent("short", b"late", 10) is True
    assert await store.get("short") == b"late"


async def test_release_lock_needs_the_holders_token(store: SessionStore) -> None:
    """A lock is released only with the token that took it."""
    await store.set_if_absent("lock", b"mine", 10)
    assert False is await store.release_lock("lock", b"theirs")
    assert await store.get("lock") == b"mine"
    assert True is await store.release_lock("lock", b"mine")
    assert None is await store.get("lock")
    assert False is await store.release_lock("lock", b"mine")


async def test_published_messages_reach_every_subscriber(store: SessionStore) -> None:
    """Each subscriber of a channel gets each message; other channels stay quiet."""
    first: asyncio.Queue[str] = asyncio.Queue()
    second: asyncio.Queue[str] = asyncio.Queue()
    other: asyncio.Queue[str] = asyncio.Queue()
    states: list[bool] = []
    await store.subscribe("chan", first.put_nowait, on_connection=states.append)
    await store.subscribe("chan", second.put_nowait)
    await store.subscribe("other", other.put_nowait)
    assert states == [True]
    await store.publish("chan", "hello")
    await store.publish("chan", "wörld")
    for queue in (first, second):
        assert await asyncio.wait_for(queue.get(), 2) == "hello"
        assert await asyncio.wait_for(queue.get(), 2) == "wörld"
    await asyncio.sleep(0.05)
    assert other.empty()


async def test_a_failing_subscriber_does_not_stop_delivery(store: SessionStore) -> None:
    """An exception in one callback is logged; later messages still arrive."""
    received: asyncio.Queue[str] = asyncio.Queue()

    def flaky(message: str) -> None:
        if message == "boom":
            raise RuntimeError("subscriber bug")
        received.put_nowait(message)

    await store.subscribe("chan", flaky)
    await store.publish("chan", "boom")
    await store.publish("chan", "fine")
    assert await asyncio.wait_for(received.get(), 2) == "fine"


async def test_ping_answers(store: SessionStore) -> None:
    """A reachable store pings without error."""
    await store.ping()
