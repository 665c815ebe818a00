"""A short-lived per-instance cache of opened sessions, dropped by store invalidations."""

from __future__ import annotations

import hmac
from collections import OrderedDict
from dataclasses import dataclass

from gateway.sessions.codec import ID_LENGTH, TICKET_LENGTH, SessionMeta, Ticket
from gateway.types import SessionRecord

DEFAULT_MAX_ENTRIES = 10_000


@dataclass(frozen=True, slots=True)
class CachedSession:
    """An opened session; ``record`` is a snapshot nobody changes: hits get shallow copies."""

    ticket: Ticket
    record: SessionRecord
    meta: SessionMeta
    raw: bytes
    stored_at: float


class SessionCache:
    """Entries live ``ttl`` seconds, only while the invalidation subscription is connected.

    ``generation`` moves on every invalidation: a read that started before one must not
    be cached, or it could bring back a session destroyed while it was in flight.
    Entries are keyed by session id (so a hit needs no ticket parsing or hashing) and
    found by handle for invalidations.
    """

    def __init__(self, ttl: float, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.live = False
        self.generation = 0
        # Insertion order is store order (put re-inserts), so the oldest entry is first;
        # OrderedDict finds its first entry in O(1) however many were dropped before it.
        self._entries: OrderedDict[str, CachedSession] = OrderedDict()
        self._ids: dict[str, str] = {}  # handle -> session id

    def find(self, ticket: str, now: float) -> CachedSession | None:
        """The entry of the cookie value ``ticket`` if it is cached, fresh and its key matches."""
        if len(ticket) != TICKET_LENGTH:
            return None
        entry = self._entries.get(ticket[:ID_LENGTH])
        if entry is None:
            return None
        if now - entry.stored_at >= self.ttl or not self.live:
            self._drop(entry.ticket.handle)
            return None
        # A ticket with the right id but another key must not be served from here.
        key = ticket[ID_LENGTH + 1 :]
        if ticket[ID_LENGTH] != "." or not key.isascii():
            return None
        return entry if hmac.compare_digest(entry.ticket.session_key, key) else None

    def put(self, entry: CachedSession, generation: int) -> None:
        if self.ttl <= 0 or not self.live or generation != self.generation:
            return
        self._drop(entry.ticket.handle)
        self._prune(entry.stored_at)
        self._entries[entry.ticket.session_id] = entry
        self._ids[entry.ticket.handle] = entry.ticket.session_id

    def invalidate(self, *handles: str) -> None:
        self.generation += 1
        for handle in handles:
            self._drop(handle)

    def set_live(self, live: bool) -> None:
        """The subscription came up or went down: either way, messages may have been missed."""
        self.generation += 1
        self.live = live
        self._entries.clear()
        self._ids.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def _drop(self, handle: str) -> None:
        session_id = self._ids.pop(handle, None)
        if session_id is not None:
            del self._entries[session_id]

    def _prune(self, now: float) -> None:
        """Drop expired entries from the oldest end, then the oldest while full."""
        while self._entries:
            oldest = next(iter(self._entries.values()))
            if now - oldest.stored_at < self.ttl and len(self._entries) < self.max_entries:
                return
            self._drop(oldest.ticket.handle)
