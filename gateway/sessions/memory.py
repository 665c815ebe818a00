"""An in-process session store: one instance only, gone on restart, bounded in size.

Keys under a configured prefix (``partitions``) live in a table of their own with its own
bound, so a flood of one kind of entry (login states) can only evict its own kind.
"""

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


class _Table:
    """Values with expiry, bounded: when full, expired entries go, then the oldest write."""

    def __init__(self, name: str, max_entries: int) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be positive")
        self.name = name
        self.max_entries = max_entries
        # Insertion order is write order (a write re-inserts), so the first key is the oldest.
        self.values: dict[str, tuple[bytes, float]] = {}
        self.last_sweep = self.last_warning = -math.inf
        self.evictions = 0

    def make_room(self, now: float) -> None:
        if len(self.values) < self.max_entries:
            return
        if now - self.last_sweep >= SWEEP_INTERVAL:
            self.last_sweep = now
            self.values = {k: v for k, v in self.values.items() if v[1] > now}
        while len(self.values) >= self.max_entries:
            del self.values[next(iter(self.values))]
            self.evictions += 1
            if now - self.last_warning >= WARN_INTERVAL:
                self.last_warning = now
                log.warning(
                    "memory store %s full (%d): evicting oldest", self.name, self.max_entries
                )


class MemoryStore:
    """A :class:`~gateway.sessions.store.SessionStore` in dicts; full means oldest write goes.

    ``partitions`` maps a key prefix to the bound of that prefix's own table.
    """

    def __init__(
        self,
        *,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        partitions: Mapping[str, int] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self._main = _Table("sessions", max_entries)
        self._partitions = [(p, _Table(p.rstrip(":"), n)) for p, n in (partitions or {}).items()]
        self._indexes: dict[str, tuple[builtins.set[str], float]] = {}
        self._subscribers: dict[str, list[MessageHandler]] = {}
        self._last_index_sweep = -math.inf
        self._closed = False

    def __len__(self) -> int:
        """Entries in the main table (partitions are counted by ``partition_size``)."""
        return len(self._main.values)

    @property
    def evictions(self) -> int:
        """Entries of the main table dropped because it was full."""
        return self._main.evictions

    def partition_size(self, prefix: str) -> int:
        return len(self._table(prefix).values)

    def _table(self, key: str) -> _Table:
        for prefix, table in self._partitions:
            if key.startswith(prefix):
                return table
        return self._main

    async def get(self, key: str) -> bytes | None:
        """The value under ``key``, or None if absent or expired."""
        self._check_open()
        return self._live(key)

    async def scan(self, prefix: str, cursor: str, count: int) -> tuple[list[str], str]:
        """Keys after ``cursor`` in sorted order (the cursor is the last key returned)."""
        self._check_open()
        now = self._clock()
        table = self._table(prefix)
        keys = sorted(
            k
            for k, (_, exp) in table.values.items()
            if k.startswith(prefix) and exp > now and k > cursor
        )
        page = keys[:count]
        return page, (page[-1] if len(keys) > count else "")

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """The values under ``keys``, in order."""
        self._check_open()
        return [self._live(key) for key in keys]

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        """Store ``value`` under ``key`` for ``ttl`` seconds."""
        self._check_open()
        expires = self._expiry(ttl)
        table = self._table(key)
        table.values.pop(key, None)
        self._make_room(table)
        table.values[key] = (value, expires)

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
            del self._table(key).values[key]
        return len(found)

    async def take(self, key: str) -> bytes | None:
        """Get and delete ``key`` (atomic: no await in between)."""
        self._check_open()
        value = self._live(key)
        if value is not None:
            del self._table(key).values[key]
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
        del self._table(key).values[key]
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
        for table in (self._main, *(t for _, t in self._partitions)):
            table.values.clear()
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
        values = self._table(key).values
        entry = values.get(key)
        if entry is None:
            return None
        if entry[1] <= self._clock():
            del values[key]
            return None
        return entry[0]

    def _live_index(self, index: str) -> tuple[builtins.set[str], float] | None:
        entry = self._indexes.get(index)
        if entry is not None and entry[1] <= self._clock():
            del self._indexes[index]
            return None
        return entry

    def _make_room(self, table: _Table) -> None:
        now = self._clock()
        full = len(table.values) >= table.max_entries
        if full and table is self._main and now - self._last_index_sweep >= SWEEP_INTERVAL:
            self._last_index_sweep = now
            self._indexes = {k: v for k, v in self._indexes.items() if v[1] > now}
        table.make_room(now)


def _deliver(callback: MessageHandler, message: str) -> None:
    try:
        callback(message)
    except Exception:
        log.exception("session store subscriber failed")
