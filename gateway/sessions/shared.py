"""What gateway instances share through the store besides sessions: sealed, bound, namespaced.

The store is trusted for availability, not for integrity. An entry read back and acted on
(an introspection verdict, a used logout-token jti) counts only if it opens with a key
derived from ``sessions.secrets`` for exactly the store key it was read from (whose name
hashes every input of the entry) and is still within the expiry sealed into it. Anything
else is a miss, counted in ``gateway_shared_cache_rejected_total{cache,reason}``.

Keys are ``<cache>:<namespace>:<name>`` (after the store's own prefix). The namespace is
a short hash of the config that the instances of one deployment share (see
:func:`namespace_inputs`), so two deployments on one Redis never read each other's entries.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from gateway import metrics
from gateway.config.model import Config
from gateway.crypto import KeyRing, SealError, digest
from gateway.errors import StoreUnavailable

__all__ = ["SharedEntry", "SharedState", "SharedStore", "namespace_inputs", "shared_namespace"]

PURPOSE = "shared-state"  # the KeyRing.derive purpose: apart from sessions and CSRF tokens
NAMESPACE_LENGTH = 16  # hex digits of sha256: 64 bits, and a collision still opens nothing
CLAIM_ATTEMPTS = 3  # set-once marks: tries before a mark that keeps changing is a 503

log = logging.getLogger(__name__)


class SharedStore(Protocol):
    """The store operations shared entries need (see SessionStore)."""

    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, ttl: float) -> None: ...

    async def set_if_absent(self, key: str, value: bytes, ttl: float) -> bool: ...

    async def replace(self, key: str, expected: bytes, value: bytes, ttl: float) -> bool: ...

    async def delete(self, *keys: str) -> int: ...


def namespace_inputs(config: Config) -> dict[str, Any]:
    """What must agree between instances of one deployment (never ports or secrets).

    Secrets are left out so that a rotation (a new first secret) keeps the namespace.
    """
    issuers = []
    for trusted in config.bearer.issuers:
        introspection = trusted.introspection
        issuers.append(
            {
                "issuer": trusted.issuer,
                "audiences": sorted(set(trusted.audiences)),
                "introspection": None
                if introspection is None
                else {
                    "client_id": introspection.client_id,
                    "endpoint": introspection.endpoint,
                    "require_audience": introspection.require_audience,
                },
            }
        )
    providers = [{"issuer": p.issuer, "client_id": p.client_id} for p in config.providers]
    return {
        "key_prefix": config.sessions.redis.key_prefix,
        "bearer_issuers": sorted(issuers, key=_canonical),
        "providers": sorted(providers, key=_canonical),
    }


def shared_namespace(config: Config) -> str:
    """A short hash of :func:`namespace_inputs`: equal configs share, others never do."""
    return digest(_canonical(namespace_inputs(config)))[:NAMESPACE_LENGTH]


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class SharedEntry:
    """An opened entry: its value and until when (epoch seconds) it may be used."""

    value: Any
    expires_at: float


class SharedState:
    """Sealed entries in a shared store, under this deployment's namespace."""

    def __init__(
        self,
        store: SharedStore,
        keyring: KeyRing,
        namespace: str,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.namespace = namespace
        self._ring = keyring.derive(PURPOSE)
        self._clock = clock

    def key(self, cache: str, name: str) -> str:
        """The store key of ``name`` in ``cache`` (``name``: a hash of the entry's inputs)."""
        return f"{cache}:{self.namespace}:{name}"

    async def get(self, cache: str, name: str) -> SharedEntry | None:
        """The entry if it is ours and fresh; None when absent, forged, foreign or stale."""
        key = self.key(cache, name)
        raw = await self.store.get(key)
        return None if raw is None else self._open(cache, key, raw)

    async def put(self, cache: str, name: str, value: Any, expires_at: float) -> None:
        """Seal ``value`` under ``name`` until ``expires_at`` (nothing if already past)."""
        ttl = expires_at - self._clock()
        if ttl > 0:
            key = self.key(cache, name)
            await self.store.set(key, self._seal(cache, key, value, expires_at), ttl)

    async def claim(self, cache: str, name: str, ttl: float) -> bool:
        """Mark ``name`` as used for ``ttl`` seconds; False if a genuine mark is there.

        A forged, foreign or stale mark is replaced (compare-and-set), never obeyed.
        """
        key = self.key(cache, name)
        for _ in range(CLAIM_ATTEMPTS):
            mark = self._seal(cache, key, None, self._clock() + ttl)
            if await self.store.set_if_absent(key, mark, ttl):
                return True
            held = await self.store.get(key)
            if held is None:
                continue  # expired or released in between
            if self._open(cache, key, held) is not None:
                return False
            if await self.store.replace(key, held, mark, ttl):
                return True
        raise StoreUnavailable(f"shared {cache} mark keeps changing; try again")

    async def release(self, cache: str, name: str) -> None:
        """Remove the entry (e.g. give a claim back after the work failed)."""
        await self.store.delete(self.key(cache, name))

    def _seal(self, cache: str, key: str, value: Any, expires_at: float) -> bytes:
        plain = _canonical({"exp": expires_at, "value": value}).encode("utf-8")
        return self._ring.seal(plain, key_material=key.encode("utf-8"), context=_context(cache))

    def _open(self, cache: str, key: str, raw: bytes) -> SharedEntry | None:
        try:
            plain = self._ring.open_(raw, key_material=key.encode("utf-8"), context=_context(cache))
            record = json.loads(plain)
            expires_at = float(record["exp"])
            value = record["value"]
        except (SealError, ValueError, TypeError, KeyError) as exc:
            self._reject(cache, key, "invalid", type(exc).__name__)
            return None
        if not expires_at > self._clock():
            self._reject(cache, key, "stale", "past its sealed expiry")
            return None
        return SharedEntry(value, expires_at)

    def _reject(self, cache: str, key: str, reason: str, why: str) -> None:
        metrics.shared_cache_rejected(cache, reason)
        log.warning("shared %s entry %s ignored (%s): %s", cache, key[-12:], reason, why)


def _context(cache: str) -> bytes:
    return b"shared/" + cache.encode("utf-8")
