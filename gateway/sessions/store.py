"""The session store interface: bytes under keys with a TTL, indexes, locks and pub/sub.

Implementations (``memory``, ``redis``) know nothing of sessions; the manager adds tickets
and encryption. Every method raises :class:`gateway.errors.StoreUnavailable` when the
store cannot be reached in time: a failed read is never reported as a missing key.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

MessageHandler = Callable[[str], None]
"""Called on the event loop with each message of a subscribed channel; must not block."""

ConnectionHandler = Callable[[bool], None]
"""Called with True when a subscription is (re)established, False when it is lost:
messages published in between were missed."""


class SessionStore(Protocol):
    """A small key-value store; TTLs are in seconds and must be positive."""

    async def get(self, key: str) -> bytes | None:
        """The value under ``key``, or None if absent or expired."""
        ...

    async def scan(self, prefix: str, cursor: str, count: int) -> tuple[list[str], str]:
        """About ``count`` keys starting with ``prefix`` from ``cursor`` ('' to begin), and
        the cursor of the rest ('' when done). For admin listings, not the request path."""
        ...

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """The values under ``keys``, in order, in a few round trips (not atomic)."""
        ...

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        """Store ``value`` under ``key`` for ``ttl`` seconds."""
        ...

    async def set_if_exists(self, key: str, value: bytes, ttl: float) -> bool:
        """Store ``value`` only if ``key`` exists; return whether it was stored."""
        ...

    async def replace(self, key: str, expected: bytes, value: bytes, ttl: float) -> bool:
        """Store ``value`` only if ``key`` still holds ``expected`` (compare-and-set)."""
        ...

    async def delete(self, *keys: str) -> int:
        """Delete ``keys``; return how many existed."""
        ...

    async def take(self, key: str) -> bytes | None:
        """Atomically get and delete ``key``: at most one caller ever sees the value."""
        ...

    async def add_to_index(self, index: str, member: str, ttl: float) -> None:
        """Add ``member`` to the set ``index``, which lives at least ``ttl`` more seconds."""
        ...

    async def remove_from_index(self, index: str, *members: str) -> None:
        """Remove ``members`` from the set ``index``."""
        ...

    async def remove_from_indexes(self, changes: Mapping[str, Sequence[str]]) -> None:
        """Remove from each set ``index`` its ``members``, in a few round trips (not atomic)."""
        ...

    async def index_members(self, index: str) -> builtins.set[str]:
        """Every member of the set ``index`` (empty if it does not exist)."""
        ...

    async def set_if_absent(self, key: str, value: bytes, ttl: float) -> bool:
        """Store ``value`` only if ``key`` is absent; return whether it was stored."""
        ...

    async def release_lock(self, key: str, token: bytes) -> bool:
        """Delete ``key`` only if it still holds ``token``; return whether it was deleted."""
        ...

    async def publish(self, channel: str, message: str) -> None:
        """Send ``message`` to every subscriber of ``channel``, on every instance."""
        ...

    async def subscribe(
        self,
        channel: str,
        callback: MessageHandler,
        *,
        on_connection: ConnectionHandler | None = None,
    ) -> None:
        """Call ``callback`` for each message on ``channel`` from a background task until close."""
        ...

    async def ping(self) -> None:
        """Return if the store answers; raise StoreUnavailable otherwise."""
        ...

    async def close(self) -> None:
        """Stop listeners and release connections."""
        ...
