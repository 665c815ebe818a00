"""A dict standing in for the shared (Redis) store, and the sealed layer the gateway puts on it."""

from __future__ import annotations

from collections.abc import Callable

from gateway.crypto import KeyRing
from gateway.secret import Secret
from gateway.sessions.shared import SharedState

SECRET = "shared-state-test-secret-0123456789abcdef"


class DictStore:
    """get / set with TTL (ignored: expiry is judged from the sealed record); may be broken."""

    def __init__(self, *, broken: bool = False) -> None:
        self.values: dict[str, bytes] = {}
        self.broken = broken

    async def get(self, key: str) -> bytes | None:
        if self.broken:
            raise ConnectionError("store down")
        return self.values.get(key)

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        if self.broken:
            raise ConnectionError("store down")
        self.values[key] = value


def sealed(store: DictStore, clock: Callable[[], float], namespace: str = "test") -> SharedState:
    """The store as the gateway shares it: entries sealed with one deployment's secret."""
    return SharedState(store, KeyRing([Secret(SECRET)]), namespace, clock=clock)  # type: ignore[arg-type]
