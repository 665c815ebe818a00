"""A provider's signing keys (RFC 7517 JWK Set), cached, refetched on an unknown `kid`."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import jwt

from gateway.errors import InvalidToken, ProviderUnavailable
from gateway.idp.addresses import AddressGuard
from gateway.idp.backoff import RetrySchedule
from gateway.idp.http import display_url, fetch_json

log = logging.getLogger(__name__)

UriSource = str | Callable[[], Awaitable[str | None]]

# Asymmetric algorithms only: an HS* key in a provider's JWKS is never used.
KEY_SHAPES: dict[str, tuple[str, frozenset[str] | None]] = {
    **{f"RS{n}": ("RSA", None) for n in (256, 384, 512)},
    **{f"PS{n}": ("RSA", None) for n in (256, 384, 512)},
    "ES256": ("EC", frozenset({"P-256"})),
    "ES384": ("EC", frozenset({"P-384"})),
    "ES512": ("EC", frozenset({"P-521"})),
    "EdDSA": ("OKP", frozenset({"Ed25519", "Ed448"})),
}
SIGNATURE_ALGORITHMS = frozenset(KEY_SHAPES)


class UnknownSigningKey(InvalidToken):
    """No key of the provider matches the token's `kid` and `alg`, even after a refetch."""


def invalid_token(reason: str) -> InvalidToken:
    """An InvalidToken whose reason is also its public error_description."""
    return InvalidToken(reason, public=reason)


def key_fits(jwk: dict[str, Any], alg: str) -> bool:
    """True when the JWK may verify a signature made with `alg` (kty, crv, alg, use)."""
    shape = KEY_SHAPES.get(alg)
    if shape is None or jwk.get("kty") != shape[0]:
        return False
    if shape[1] is not None and jwk.get("crv") not in shape[1]:
        return False
    if jwk.get("alg") not in (None, alg) or jwk.get("use") not in (None, "sig"):
        return False
    ops = jwk.get("key_ops")
    return ops is None or (isinstance(ops, list) and "verify" in ops)


def parse_jwks(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The usable public signing keys of a JWK Set; symmetric (oct) keys are dropped."""
    keys = document.get("keys")
    if not isinstance(keys, list):
        raise ProviderUnavailable("the JWKS document has no 'keys' list")
    return [
        key
        for key in keys
        if isinstance(key, dict)
        and key.get("kty") in ("RSA", "EC", "OKP")
        and isinstance(key.get("kid", ""), str)
        and "d" not in key
    ]


def index_by_kid(keys: list[dict[str, Any]]) -> dict[str, list[int]]:
    """Positions of the keys under each `kid`."""
    index: dict[str, list[int]] = {}
    for position, key in enumerate(keys):
        if "kid" in key:
            index.setdefault(key["kid"], []).append(position)
    return index


class JwksCache:
    """Keys of one JWKS URI: one shared refetch for an unknown kid, at most once per cooldown.

    A failed fetch keeps the cached keys in service; failures back off exponentially.
    """

    def __init__(
        self,
        uri_source: UriSource,
        session: aiohttp.ClientSession,
        guard: AddressGuard,
        cooldown: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        *,
        timeout: float = 10.0,
        max_age: float = 3600.0,
    ) -> None:
        self._uri_source = uri_source
        self._session = session
        self._guard = guard
        self._cooldown = cooldown
        self._clock = clock
        self._timeout = timeout
        self._max_age = max_age
        self._keys: list[dict[str, Any]] | None = None
        self._by_kid: dict[str, list[int]] = {}
        self._built: dict[tuple[int, str], jwt.PyJWK] = {}
        self._loaded_at = 0.0
        self._attempts = 0
        self._last_error: ProviderUnavailable | None = None
        self._schedule = RetrySchedule(first_wait=min(cooldown, 2.0), max_wait=max(cooldown, 300.0))
        self._lock = asyncio.Lock()
        self.fetch_count = 0

    async def key_for(self, kid: str | None, alg: str) -> jwt.PyJWK:
        """The key that verifies a token with this `kid` and `alg`.

        Raises InvalidToken (UnknownSigningKey when no key matches) or ProviderUnavailable
        when no key set was ever loaded.
        """
        if alg not in SIGNATURE_ALGORITHMS:
            raise invalid_token(f"The token's signing algorithm {alg[:20]!r} is not accepted.")
        await self._ensure_fresh()
        key = self._find(kid, alg)
        if key is None:
            await self._fetch_once(unknown_kid=True)
            key = self._find(kid, alg)
        if key is None:
            raise UnknownSigningKey(
                "The token was signed with an unknown key.",
                public="The token was signed with an unknown key.",
            )
        return key

    def _find(self, kid: str | None, alg: str) -> jwt.PyJWK | None:
        if kid is not None:
            named = self._by_kid.get(kid, [])  # the kid is only ever a dictionary key
            fitting = [i for i in named if key_fits(self._jwk(i), alg)]
            if named and not fitting:
                raise invalid_token("The token's key cannot be used with its algorithm.")
        else:
            fitting = [i for i, k in enumerate(self._keys or []) if key_fits(k, alg)]
            if len(fitting) > 1:
                raise invalid_token("The token names no key id and several keys could fit.")
        return self._build(fitting[0], alg) if fitting else None

    def _jwk(self, index: int) -> dict[str, Any]:
        return (self._keys or [])[index]

    def _build(self, index: int, alg: str) -> jwt.PyJWK:
        built = self._built.get((index, alg))
        if built is None:
            try:
                built = jwt.PyJWK(self._jwk(index), algorithm=alg)
            except jwt.PyJWTError:
                raise invalid_token("The provider's key for this token is unusable.") from None
            self._built[(index, alg)] = built
        return built

    async def _ensure_fresh(self) -> None:
        if self._keys is None:
            await self._fetch_once()
            if self._keys is None:
                reason = self._last_error or "no fetch succeeded yet"
                raise ProviderUnavailable(f"signing keys unavailable: {reason}")
        elif self._clock() - self._loaded_at > self._max_age and not self._lock.locked():
            await self._fetch_once()

    async def _fetch_once(self, *, unknown_kid: bool = False) -> None:
        attempts_seen = self._attempts
        async with self._lock:
            if self._attempts != attempts_seen or not self._schedule.may_try(self._clock()):
                return  # another caller fetched meanwhile, or we are cooling down
            self._attempts += 1
            try:
                keys = await self.fetch_keys()
            except ProviderUnavailable as exc:
                self._last_error = exc
                self._schedule.failed(self._clock())
                cached = len(self._keys or [])
                log.warning("JWKS fetch failed; keeping %d cached keys: %s", cached, exc)
                return
            now = self._clock()
            self._keys, self._built, self._loaded_at = keys, {}, now
            self._by_kid = index_by_kid(keys)
            # Only refetches forced by unknown kids cool down: they are what an attacker
            # can trigger at will; the first load must not delay a key rotation after it.
            self._schedule.succeeded(now, pause=self._cooldown if unknown_kid else 0.0)

    async def fetch_keys(self) -> list[dict[str, Any]]:
        """Fetch the JWK Set now, bypassing the cache (used by `gateway check`)."""
        uri = await self._uri()
        self.fetch_count += 1
        status, document = await fetch_json(
            self._session, uri, guard=self._guard, timeout=self._timeout, endpoint="jwks"
        )
        if status != 200:
            raise ProviderUnavailable(f"{display_url(uri)} answered HTTP {status}")
        keys = parse_jwks(document)
        kids = [str(k.get("kid", "-")) for k in keys]
        log.debug("JWKS fetched", extra={"url": display_url(uri), "kids": kids})
        return keys

    async def _uri(self) -> str:
        uri = self._uri_source if isinstance(self._uri_source, str) else await self._uri_source()
        if not uri:
            raise ProviderUnavailable("the provider publishes no jwks_uri")
        return uri
