"""An in-process session store: one instance only, gone on restart, bounded in size."""

from __future__ import annotations

import asyncio
import builtins
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence

from gateway.errors import StoreUnavailable
from gateway.sessions.store import ConnectionHandler, MessageHandler

__all__ = ["DEFAULT_MAX_ENTRIES", "MemoryStore"]

DEFAULT_MAX_ENTRIES = 100_000
SWEEP_INTERVAL = 1.0  # seconds between full sweeps of expired entries when the store is full
WARN_INTERVAL = 60.0  # an eviction on every write when full must not flood the log

log = logging.getLogger(__name__)


class MemoryStore:
    """A :class:`~gateway.sessions.store.SessionStore` in a dict; full means oldest write goes."""

    def __init__(
        self,
        *,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be positive")
        self._max_entries = max_entries
        self._clock = clock
        # Insertion order is write order (a write re-inserts), so the first key is the oldest.
        self._values: dict[str, tuple[bytes, float]] = {}
        self._indexes: dict[str, tuple[builtins.set[str], float]] = {}
        self._subscribers: dict[str, list[MessageHandler]] = {}
        self._last_sweep = self._last_warning = -math.inf
        self.evictions = 0
        self._closed = False

    def __len__(self) -> int:
        return len(self._values)

    async def get(self, key: str) -> bytes | None:
        """The value under ``key``, or None if absent or expired."""
        self._check_open()
        return self._live(key)

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """The values under ``keys``, in order."""
        self._check_open()
        return [self._live(key) for key in keys]

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        """Store ``value`` under ``key`` for ``ttl`` seconds."""
        self._check_open()
        expires = self._expiry(ttl)
        self._values.pop(key, None)
        self._make_room()
        self._values[key] = (value, expires)

    async def set_if_exists(self, key: str, value: bytes, ttl: float) -> bool:
        """Store ``value`` only if ``key`` exists."""
        self._check_open()
        if self._live(key) is None:
            return False
        await self.set(key, value, ttl)
        return True

    async def replace(self, key: str, expected: bytes, value: bytes, ttl: float) -> bool:
        """Store ``value`` only if ``key`` still holds ``expected``."""
        self._check_open()
        if self._live(key) != expected:
            return False
        await self.set(key, value, ttl)
        return True

    async def delete(self, *keys: str) -> int:
        """Delete ``keys``; return how many existed."""
        self._check_open()
        found = [k for k in keys if self._live(k) is not None]
        for key in found:
            del self._values[key]
        return len(found)

    async def take(self, key: str) -> bytes | None:
        """Get and delete ``key`` (atomic: no await in between)."""
        self._check_open()
        value = self._live(key)
        if value is not None:
            del self._values[key]
        return value

    async def add_to_index(self, index: str, member: str, ttl: float) -> None:
        """Add ``member`` to ``index``, which lives at least ``ttl`` more seconds."""
        self._check_open()
        expires = self._expiry(ttl)
        members, current = self._live_index(index) or (set(), expires)
        members.add(member)
        self._indexes[index] = (members, max(current, expires))

    async def remove_from_index(self, index: str, *members: str) -> None:
        """Remove ``members`` from ``index``; an emptied index disappears (as in Redis)."""
        self._check_open()
        entry = self._live_index(index)
        if entry is not None:
            entry[0].difference_update(members)
            if not entry[0]:
                del self._indexes[index]

    async def remove_from_indexes(self, changes: Mapping[str, Sequence[str]]) -> None:
        """Remove from each index its members."""
        for index, members in changes.items():
            await self.remove_from_index(index, *members)

    async def index_members(self, index: str) -> builtins.set[str]:
        """Every member of ``index`` (a copy)."""
        self._check_open()
        entry = self._live_index(index)
        return set(entry[0]) if entry else set()

    async def set_if_absent(self, key: str, value: bytes, ttl: float) -> bool:
        """Store ``value`` only if ``key`` is absent; return whether it was stored."""
        self._check_open()
        if self._live(key) is not None:
            return False
        await self.set(key, value, ttl)
        return True

    async def release_lock(self, key: str, token: bytes) -> bool:
        """Delete ``key`` only if it still holds ``token``."""
        self._check_open()
        if self._live(key) != token:
            return False
        del self._values[key]
        return True

    async def publish(self, channel: str, message: str) -> None:
        """Deliver ``message`` to this process's subscribers, soon (never inside this call)."""
        self._check_open()
        loop = asyncio.get_running_loop()
        for callback in self._subscribers.get(channel, ()):
            loop.call_soon(_deliver, callback, message)

    async def subscribe(
        self,
        channel: str,
        callback: MessageHandler,
        *,
        on_connection: ConnectionHandler | None = None,
    ) -> None:
        """Register ``callback``; an in-process subscription is live at once and never lost."""
        self._check_open()
        self._subscribers.setdefault(channel, []).append(callback)
        if on_connection is not None:
            on_connection(True)

    async def ping(self) -> None:
        """Succeed unless closed."""
        self._check_open()

    async def close(self) -> None:
        """Drop everything; later calls raise StoreUnavailable."""
        self._closed = True
        self._values.clear()
        self._indexes.clear()
        self._subscribers.clear()

    def _check_open(self) -> None:
        if self._closed:
            raise StoreUnavailable("memory store is closed")

    def _expiry(self, ttl: float) -> float:
        if not ttl > 0:
            raise ValueError(f"ttl must be positive, got {ttl!r}")
        return self._clock() + ttl

    def _live(self, key: str) -> bytes | None:
        entry = self._values.get(key)
        if entry is None:
            return None
        if entry[1] <= self._clock():
            del self._values[key]
            return None
        return entry[0]

    def _live_index(self, index: str) -> tuple[builtins.set[str], float] | None:
        entry = self._indexes.get(index)
        if entry is not None and entry[1] <= self._clock():
            del self._indexes[index]
            return None
        return entry

    def _make_room(self) -> None:
        if len(self._values) < self._max_entries:
            return
        now = self._clock()
        if now - self._last_sweep >= SWEEP_INTERVAL:
            self._last_sweep = now
            self._values = {k: v for k, v in self._values.items() if v[1] > now}
            self._indexes = {k: v for k, v in self._indexes.items() if v[1] > now}
        while len(self._values) >= self._max_entries:
            oldest = next(iter(self._values))
            del self._values[oldest]
            self.evictions += 1
            if now - self._last_warning >= WARN_INTERVAL:
                self._last_warning = now
                log.warning("memory session store full (%d): evicting oldest", self._max_entries)


def _deliver(callback: MessageHandler, message: str) -> None:
    try:
        callback(message)
    except Exception:
        log.exception("session store subscriber failed")
