"""Listing every session a page at a time, on each store (memory, Redis, sentinel, cluster)."""

from __future__ import annotations

from gateway.sessions.store import SessionStore


async def test_scan_pages_through_every_key_of_a_prefix_once(store: SessionStore) -> None:
    """Pages of about two keys together hold each `sess:` key exactly once, and no key of
    another prefix (a pending login is not a session)."""
    for i in range(7):
        await store.set(f"sess:h{i}", b"x", 60)
    await store.set("login:other", b"y", 60)
    seen: list[str] = []
    keys, cursor = await store.scan("sess:", "", 2)
    seen += keys
    for _ in range(50):
        if not cursor:
            break
        keys, cursor = await store.scan("sess:", cursor, 2)
        seen += keys
    assert sorted(seen) == [f"sess:h{i}" for i in range(7)]
