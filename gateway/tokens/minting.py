"""Identity tokens: a JWT (RFC 7519) per caller, signed by the gateway for one route's upstream.

Claims: ``iss`` (``issuer``, else ``public_url``: never the request's Host, which the
caller chooses), ``sub``, ``exp``; with
``include_standard_claims`` also ``aud`` (configured, else the upstream URL), ``iat`` and
``jti``; then the route's claim template, whose keys may replace ``iss``, ``sub`` or ``aud``.
A token is reused for the same route and session (or bearer token) until shortly before it
expires, so signing is not on every request's path.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable
from typing import Any

import jwt

from gateway.config.model import Config, IdentityTokenConfig
from gateway.crypto import random_token
from gateway.errors import ConfigError
from gateway.policy.claim_template import compile_template, render_claims
from gateway.policy.routes import CompiledRoute
from gateway.tokens.expiring_cache import ExpiringCache
from gateway.tokens.signing_keys import KEY_TYPES, SigningKeys
from gateway.types import Principal

CACHE_ENTRIES = 10_000
REMINT_BEFORE = 60.0  # seconds before exp a cached token stops being handed out (at most)

Clock = Callable[[], float]
TokenCache = ExpiringCache[tuple[int, str, str], str]


class IdentityTokenMinter:
    """Mints one route's identity tokens; compiled once from its `identity_token` section."""

    def __init__(
        self,
        index: int,
        config: IdentityTokenConfig,
        *,
        audience: str,
        key: Any,
        kid: str | None,
        issuer: str,
        cache: TokenCache,
        clock: Clock,
        where: str,
    ) -> None:
        self.header_name = config.header
        self._index, self._config, self._key = index, config, key
        self._bearer = config.header.lower() == "authorization"
        self._template = compile_template(config.claims, f"{where}.claims")
        self._jose = {**config.headers, **({"kid": kid} if kid else {})}
        self._audience = config.audience or audience
        self._issuer = issuer
        self._cache, self._clock = cache, clock

    def header_value(self, principal: Principal, origin: str | None = None) -> str:
        """What goes into the route's header: the token, or 'Bearer <token>' in Authorization.

        ``origin`` (the request's) is ignored: the issuer is always configured.
        """
        token = self.mint(principal, origin)
        return f"Bearer {token}" if self._bearer else token

    def mint(self, principal: Principal, origin: str | None = None) -> str:
        """A token for this principal: the cached one while fresh enough, else a new one."""
        claims = self._claims(principal)
        cache_key = (self._index, _credential(principal), _digest(claims))
        now = self._clock()
        cached = self._cache.get(cache_key, now)
        if cached is not None:
            return cached
        expires = self._expiry(principal, now)
        payload = {**claims, "exp": expires}
        if self._config.include_standard_claims:
            payload.update(iat=int(now), jti=random_token(16))
        token = jwt.encode(
            payload, self._key, algorithm=self._config.algorithm, headers=self._jose or None
        )
        margin = min(REMINT_BEFORE, self._config.ttl / 4)
        self._cache.put(cache_key, token, expires - margin)
        return token

    def _claims(self, principal: Principal) -> dict[str, Any]:
        claims: dict[str, Any] = {"iss": self._issuer, "sub": principal.subject}
        if self._config.include_standard_claims or self._config.audience:
            claims["aud"] = self._audience
        claims.update(render_claims(self._template, principal))
        return claims

    def _expiry(self, principal: Principal, now: float) -> int:
        expires = int(now + self._config.ttl)
        bearer_exp = principal.claims.get("exp") if principal.kind == "bearer" else None
        if isinstance(bearer_exp, int | float) and not isinstance(bearer_exp, bool):
            # Never vouch for a caller longer than the token that proved who they are.
            expires = min(expires, int(bearer_exp))
        return expires


def _credential(principal: Principal) -> str:
    """What the cache keys a token on: the session, or the bearer token (by its claims)."""
    if principal.session_id:
        return "s:" + principal.session_id
    return "b:" + _digest(principal.claims)


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class IdentityTokens:
    """The signing keys (published as JWKS) and the minter of every route that asks for one."""

    def __init__(self, keys: SigningKeys, minters: dict[int, IdentityTokenMinter]) -> None:
        self.keys = keys
        self.minters = minters

    @classmethod
    def compile(
        cls, config: Config, routes: Iterable[CompiledRoute], clock: Clock = time.time
    ) -> IdentityTokens:
        """Load the keys and compile each route's minter; a ConfigError lists every problem."""
        keys = SigningKeys.load(config.signing_keys)
        cache: TokenCache = ExpiringCache(CACHE_ENTRIES)
        minters: dict[int, IdentityTokenMinter] = {}
        problems: list[str] = []
        for route in routes:
            wanted = route.config.identity_token
            if wanted is None:
                continue
            where = f"routes[{route.index}].identity_token"
            try:
                minters[route.index] = _minter(route, wanted, keys, config, cache, clock, where)
            except ConfigError as exc:
                problems += exc.problems
        if problems:
            raise ConfigError(problems)
        return cls(keys, minters)

    def jwks(self) -> dict[str, Any]:
        return self.keys.jwks()


def _minter(
    route: CompiledRoute,
    wanted: IdentityTokenConfig,
    keys: SigningKeys,
    config: Config,
    cache: TokenCache,
    clock: Clock,
    where: str,
) -> IdentityTokenMinter:
    key: Any
    kid: str | None = None
    issuer = wanted.issuer or (config.public_url.rstrip("/") if config.public_url else None)
    if not issuer:
        # The request's Host would be the default, and the caller picks that.
        raise ConfigError(
            [f"{where}.issuer: set it (or the top-level public_url) to the name upstreams expect"]
        )
    if wanted.algorithm == "HS256":
        if wanted.secret is None:  # the model checks it too; this keeps the type narrow
            raise ConfigError([f"{where}.secret: HS256 needs a shared secret"])
        key = wanted.secret.reveal().encode("utf-8")
    else:
        signer = keys.signer(wanted.algorithm)
        if signer is None:
            kind = KEY_TYPES[wanted.algorithm]
            raise ConfigError(
                [f"{where}.algorithm: {wanted.algorithm} needs an {kind} key in signing_keys"]
            )
        key, kid = signer.private_key, signer.kid
    return IdentityTokenMinter(
        route.index,
        wanted,
        audience=route.config.upstream or route.name,
        key=key,
        kid=kid,
        issuer=issuer,
        cache=cache,
        clock=clock,
        where=where,
    )
