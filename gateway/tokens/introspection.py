"""OAuth 2.0 Token Introspection (RFC 7662) as a resource server, with a shared verdict cache."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from gateway import metrics
from gateway.config.model import Introspection, TrustedIssuer
from gateway.crypto import digest
from gateway.errors import ConfigError, ProviderUnavailable
from gateway.idp.addresses import AddressGuard
from gateway.idp.http import display_url, fetch_json
from gateway.idp.jwks import UriSource
from gateway.sessions.shared import SharedState
from gateway.tokens.dpop import bound_key
from gateway.tokens.expiring_cache import ExpiringCache

log = logging.getLogger(__name__)

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
BEARER_TOKEN_TYPES = frozenset(
    {"bearer", "access_token", "urn:ietf:params:oauth:token-type:access_token"}
)
Result = dict[str, Any]
Verdict = tuple[Result, float]  # a result and until when it may be cached
SHARED_CACHE = "introspection"  # the shared store's cache name (keys, metrics)
VERDICT_RULES = 2  # bump when the verdict rules change: older cached verdicts stop counting
SigningKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


class UnsupportedTokenType(ProviderUnavailable):
    """The endpoint refuses this kind of token (oidc-provider: JWTs, HTTP 400)."""


def load_assertion_key(path: str) -> tuple[SigningKey, str]:
    """A PEM private key for private_key_jwt and the algorithm it signs with."""
    try:
        key = load_pem_private_key(Path(path).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError([f"introspection.private_key_file: cannot read a key: {exc}"]) from None
    if isinstance(key, rsa.RSAPrivateKey):
        return key, "RS256"
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1":
        return key, "ES256"
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key, "EdDSA"
    raise ConfigError(["introspection.private_key_file: use an RSA, P-256 or Ed25519 key"])


class IntrospectionClient:
    """Calls one issuer's introspection endpoint, authenticated as the resource server."""

    def __init__(
        self,
        config: Introspection,
        issuer: str,
        endpoint_source: UriSource,
        session: aiohttp.ClientSession,
        guard: AddressGuard,
        *,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._config = config
        self._issuer = issuer
        self._endpoint_source = endpoint_source
        self._session = session
        self._guard = guard
        self._timeout = timeout
        self._clock = clock
        self._assertion_key: tuple[SigningKey, str] | None = None
        if config.auth_method == "private_key_jwt":
            if config.private_key_file is None:
                raise ConfigError(["introspection: private_key_jwt needs private_key_file"])
            self._assertion_key = load_assertion_key(config.private_key_file)
        elif config.client_secret is None:
            raise ConfigError([f"introspection: {config.auth_method} needs client_secret"])
        self.call_count = 0

    async def introspect(self, token: str) -> Result:
        """The endpoint's answer for the token (`active` may be false)."""
        endpoint = await self._endpoint()
        form, auth = self._credentials()
        form.update(token=token, token_type_hint="access_token")
        self.call_count += 1
        status, body = await fetch_json(
            self._session, endpoint, guard=self._guard, timeout=self._timeout,
            method="POST", data=form, auth=auth, endpoint="introspection",
        )  # fmt: skip
        if status == 400 and body.get("error") == "unsupported_token_type":
            raise UnsupportedTokenType(f"{display_url(endpoint)} does not introspect this token")
        if status != 200:
            hint = " (check the resource server's credentials)" if status in (400, 401) else ""
            raise ProviderUnavailable(f"{display_url(endpoint)} answered HTTP {status}{hint}")
        return body

    async def _endpoint(self) -> str:
        source = self._endpoint_source
        endpoint = source if isinstance(source, str) else await source()
        if not endpoint:
            raise ProviderUnavailable("the issuer publishes no introspection_endpoint")
        return endpoint

    def _credentials(self) -> tuple[dict[str, str], tuple[str, str] | None]:
        client_id = self._config.client_id
        secret = self._config.client_secret.reveal() if self._config.client_secret else ""
        if self._config.auth_method == "client_secret_basic":
            # RFC 6749 2.3.1: both parts are form-encoded before Basic encoding.
            return {}, (quote(client_id, safe=""), quote(secret, safe=""))
        if self._config.auth_method == "client_secret_post":
            return {"client_id": client_id, "client_secret": secret}, None
        return {
            "client_id": client_id,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": self.client_assertion(),
        }, None

    def client_assertion(self) -> str:
        """A private_key_jwt assertion (RFC 7523); `aud` is the issuer identifier."""
        if self._assertion_key is None:
            raise ConfigError(["introspection: private_key_jwt needs private_key_file"])
        key, alg = self._assertion_key
        now = int(self._clock())
        claims = {
            "iss": self._config.client_id,
            "sub": self._config.client_id,
            "aud": self._issuer,
            "jti": secrets.token_urlsafe(24),
            "iat": now,
            "exp": now + 60,
        }
        return jwt.encode(claims, key, algorithm=alg)


def _claim_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def introspection_verdict(response: Result, trusted: TrustedIssuer, now: float) -> Result:
    """The response when it describes a usable access token for us, else {'active': False}."""
    refused = _refusal(response, trusted, now)
    return {"active": False, "reason": refused} if refused else response


def _refusal(response: Result, trusted: TrustedIssuer, now: float) -> str | None:
    if response.get("active") is not True:
        return "The access token is not active."
    if "iss" in response and response["iss"] != trusted.issuer:
        return "The token's issuer is not trusted."
    token_type = response.get("token_type")
    if token_type is not None and str(token_type).lower() == "dpop":
        # RFC 9449 6.2: a DPoP token is introspected with its binding; without one, the
        # binding cannot be checked, so the token cannot be used at all.
        if not bound_key(response):
            return "The DPoP token's introspection answer names no key (cnf.jkt)."
    elif token_type is not None and str(token_type).lower() not in BEARER_TOKEN_TYPES:
        return "The token is not a bearer access token."
    if "aud" in response:
        if not set(_claim_list(response["aud"])) & set(trusted.audiences):
            return "The token is not meant for this service (audience)."
    elif trusted.introspection is None or trusted.introspection.require_audience:
        return "The token names no audience, so it is not meant for this service."
    exp, nbf = response.get("exp"), response.get("nbf")
    if isinstance(exp, int | float) and now >= exp + trusted.leeway:
        return "The access token has expired."
    if isinstance(nbf, int | float) and nbf > now + trusted.leeway:
        return "The access token is not valid yet."
    return None


def cache_lifetime(
    result: Result, now: float, *, positive_ttl: float, negative_ttl: float
) -> float:
    """Seconds a verdict may be cached: until the token's exp, bounded by positive_ttl."""
    if result.get("active") is not True:
        return negative_ttl
    exp = result.get("exp")
    if isinstance(exp, int | float) and not isinstance(exp, bool):
        return max(0.0, min(float(exp) - now, positive_ttl))
    return positive_ttl


def verdict_scope(trusted: TrustedIssuer) -> str:
    """Every input of a verdict besides the token; verdicts are cached per (scope, token).

    So an instance with other audiences, another endpoint or another client never uses
    this verdict, from memory or from the shared store.
    """
    introspection = trusted.introspection
    inputs = {
        "rules": VERDICT_RULES,
        "issuer": trusted.issuer,
        "audiences": sorted(set(trusted.audiences)),
        "leeway": trusted.leeway,
        "require_audience": introspection is None or introspection.require_audience,
        "endpoint": introspection.endpoint if introspection else None,
        "client_id": introspection.client_id if introspection else None,
    }
    return json.dumps(inputs, sort_keys=True, separators=(",", ":"))


class IntrospectionCache:
    """Verdicts by sha256 of (scope, token): in memory (LRU), optionally in a shared store.

    Shared entries are sealed and bound to their key (see gateway.sessions.shared): one
    that is forged, written for other inputs or past its expiry is a miss.
    Concurrent lookups of one token share a single introspection call.
    """

    def __init__(
        self,
        *,
        max_entries: int,
        positive_ttl: float,
        negative_ttl: float,
        shared: SharedState | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._memory: ExpiringCache[str, Result] = ExpiringCache(max_entries)
        self._positive_ttl = positive_ttl
        self._negative_ttl = negative_ttl
        self._shared = shared
        self._clock = clock
        self._inflight: dict[str, asyncio.Task[Verdict]] = {}

    async def lookup(
        self, scope: str, token: str, introspect: Callable[[], Awaitable[Result]]
    ) -> Result:
        """The cached verdict, or the one `introspect` returns (once for concurrent callers)."""
        return (await self.lookup_until(scope, token, introspect))[0]

    async def lookup_until(
        self, scope: str, token: str, introspect: Callable[[], Awaitable[Result]]
    ) -> Verdict:
        """Like `lookup`, plus until when the verdict is cached (<= now: not cached)."""
        key = digest(f"{scope}\n{token}")
        hit = self._memory.get_entry(key, self._clock())
        if hit is not None:
            metrics.introspection_cache("hit")
            return dict(hit[1]), hit[0]
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.create_task(self._resolve(key, introspect))
            self._inflight[key] = task
            task.add_done_callback(lambda done: self._forget(key, done))
        else:
            metrics.introspection_cache("hit")  # joins the call in flight
        result, expires_at = await asyncio.shield(task)
        return dict(result), expires_at

    def _forget(self, key: str, done: asyncio.Task[Verdict]) -> None:
        if self._inflight.get(key) is done:
            del self._inflight[key]
        if not done.cancelled():
            done.exception()  # retrieved here so an unawaited failure is not logged as lost

    async def _resolve(self, key: str, introspect: Callable[[], Awaitable[Result]]) -> Verdict:
        shared = await self._shared_get(key)
        if shared is not None:
            metrics.introspection_cache("hit")
            return shared
        metrics.introspection_cache("miss")
        result = await introspect()
        now = self._clock()
        lifetime = cache_lifetime(
            result, now, positive_ttl=self._positive_ttl, negative_ttl=self._negative_ttl
        )
        if lifetime > 0:
            self._memory.put(key, result, now + lifetime)
            await self._shared_put(key, result, now + lifetime)
        return result, now + lifetime

    async def _shared_get(self, key: str) -> Verdict | None:
        if self._shared is None:
            return None
        try:
            entry = await self._shared.get(SHARED_CACHE, key)
        except Exception as exc:  # the shared layer is an optimisation only
            log.warning("shared introspection cache unreadable: %s", type(exc).__name__)
            return None
        if entry is None or not isinstance(entry.value, dict):
            return None
        # Never longer than this instance would cache it itself (a shorter cache_ttl here).
        expires_at = min(entry.expires_at, self._clock() + self._lifetime_cap(entry.value))
        self._memory.put(key, entry.value, expires_at)
        return dict(entry.value), expires_at

    def _lifetime_cap(self, result: Result) -> float:
        return self._positive_ttl if result.get("active") is True else self._negative_ttl

    async def _shared_put(self, key: str, result: Result, expires_at: float) -> None:
        if self._shared is None:
            return
        try:
            await self._shared.put(SHARED_CACHE, key, result, expires_at)
        except Exception as exc:  # the shared layer is an optimisation only
            log.warning("shared introspection cache unwritable: %s", type(exc).__name__)
