"""A short-lived per-instance cache of opened sessions, dropped by store invalidations."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from gateway.sessions.codec import SessionMeta

DEFAULT_MAX_ENTRIES = 10_000


@dataclass(frozen=True, slots=True)
class CachedSession:
    """An opened session as read from the store (plaintext JSON: every hit gets fresh objects)."""

    session_key: str
    plaintext: bytes
    meta: SessionMeta
    raw: bytes
    stored_at: float


class SessionCache:
    """Entries live ``ttl`` seconds, only while the invalidation subscription is connected.

    ``generation`` moves on every invalidation: a read that started before one must not
    be cached, or it could bring back a session destroyed while it was in flight.
    """

    def __init__(self, ttl: float, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.live = False
        self.generation = 0
        self._entries: dict[str, CachedSession] = {}

    def get(self, handle: str, session_key: str, now: float) -> CachedSession | None:
        entry = self._entries.get(handle)
        if entry is None:
            return None
        if now - entry.stored_at >= self.ttl or not self.live:
            del self._entries[handle]
            return None
        # A ticket with the right id but another key must not be served from here.
        if not hmac.compare_digest(entry.session_key, session_key):
            return None
        return entry

    def put(self, handle: str, entry: CachedSession, generation: int) -> None:
        if self.ttl <= 0 or not self.live or generation != self.generation:
            return
        self._entries.pop(handle, None)
        while len(self._entries) >= self.max_entries:
            del self._entries[next(iter(self._entries))]
        self._entries[handle] = entry

    def invalidate(self, *handles: str) -> None:
        self.generation += 1
        for handle in handles:
            self._entries.pop(handle, None)

    def set_live(self, live: bool) -> None:
        """The subscription came up or went down: either way, messages may have been missed."""
        self.generation += 1
        self.live = live
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
