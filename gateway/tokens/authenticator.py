"""Who a bearer-token caller is: parse, route to local JWT checks or introspection (RFC 6750)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from gateway import metrics, tracing
from gateway.config.model import Bearer, TrustedIssuer
from gateway.crypto import digest
from gateway.errors import (
    BadRequest,
    ConfigError,
    GatewayError,
    InsufficientScope,
    InsufficientUserAuthentication,
    InvalidToken,
    ProviderUnavailable,
)
from gateway.idp.discovery import MetadataSource
from gateway.idp.jwks import JwksCache, invalid_token
from gateway.providers.bearer import bearer_claims, local_validation_allowed
from gateway.sessions.shared import SharedState
from gateway.tokens.bearer import (
    MissingToken,
    one_authorization_header,
    parse_bearer,
    refuse_token_in_query,
)
from gateway.tokens.dpop import DpopVerifier
from gateway.tokens.expiring_cache import ExpiringCache
from gateway.tokens.introspection import (
    IntrospectionCache,
    IntrospectionClient,
    Result,
    UnsupportedTokenType,
    introspection_verdict,
    verdict_scope,
)
from gateway.tokens.jwt_access import (
    JwtAccessTokenValidator,
    looks_like_jwt,
    unverified_parts,
)
from gateway.types import Principal

log = logging.getLogger(__name__)

# A finished principal and whether it came from introspection (counted as a cache hit).
Accepted = tuple[Principal, bool]


@dataclass(frozen=True, slots=True)
class TrustedIssuerClients:
    """One trusted issuer with its metadata, keys and (optional) introspection client."""

    config: TrustedIssuer
    metadata: MetadataSource
    jwks: JwksCache
    introspection: IntrospectionClient | None
    scope: str  # the inputs its introspection verdicts are cached under (verdict_scope)


def trusted_issuer_problems(config: TrustedIssuer) -> list[str]:
    """What makes a trusted issuer unusable, each a plain sentence (for start-up and check)."""
    name = f"bearer issuer {config.issuer!r}"
    introspection = config.introspection
    problems = []
    if not config.discovery and not config.jwks_uri and introspection is None:
        problems.append(f"{name}: discovery is off, so give jwks_uri or introspection")
    if not config.discovery and introspection is not None and not introspection.endpoint:
        problems.append(f"{name}: discovery is off, so introspection needs an endpoint")
    if introspection is not None and introspection.auth_method == "private_key_jwt":
        if not introspection.private_key_file:
            problems.append(f"{name}: introspection private_key_jwt needs private_key_file")
    elif introspection is not None and not introspection.client_secret:
        problems.append(f"{name}: introspection {introspection.auth_method} needs client_secret")
    if any(a.upper().startswith("HS") for a in config.algorithms):
        problems.append(f"{name}: HS* algorithms are never accepted for access tokens")
    return problems


def build_issuer_clients(
    config: TrustedIssuer, session: aiohttp.ClientSession, clock: Callable[[], float]
) -> TrustedIssuerClients:
    """Wire one issuer's metadata source, JWKS cache and introspection client."""
    problems = trusted_issuer_problems(config)
    if problems:
        raise ConfigError(problems)
    metadata = MetadataSource.for_trusted_issuer(config, session, clock=clock)

    async def jwks_uri() -> str | None:
        return (await metadata.get()).jwks_uri

    async def introspection_endpoint() -> str | None:
        return (await metadata.get()).introspection_endpoint

    introspection = None
    if config.introspection is not None:
        introspection = IntrospectionClient(
            config.introspection, config.issuer, introspection_endpoint, session,
            metadata.guard, clock=clock,
        )  # fmt: skip
    jwks = JwksCache(config.jwks_uri or jwks_uri, session, metadata.guard, clock=clock)
    return TrustedIssuerClients(config, metadata, jwks, introspection, verdict_scope(config))


def scopes_of(claims: dict[str, Any]) -> frozenset[str]:
    """Scopes from `scope` (space-separated) or `scp` (list or string)."""
    value = claims.get("scope", claims.get("scp"))
    if isinstance(value, str):
        return frozenset(value.split())
    if isinstance(value, list):
        return frozenset(item for item in value if isinstance(item, str))
    return frozenset()


def principal_from_claims(
    issuer: str, claims: dict[str, Any], trusted: TrustedIssuer | None = None
) -> Principal:
    """The bearer principal described by verified claims (groups/roles at their paths)."""
    client_id = claims.get("client_id", claims.get("azp"))
    client_id = client_id if isinstance(client_id, str) else None
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        subject = client_id  # client-credentials tokens may name only the client
    if subject is None:
        raise invalid_token("The token names neither a subject nor a client.")
    return Principal(
        kind="bearer",
        issuer=issuer,
        subject=subject,
        # a copy: the verified-token cache keeps the original
        claims=bearer_claims(trusted, claims) if trusted is not None else dict(claims),
        scopes=scopes_of(claims),
        client_id=client_id,
    )


class BearerAuthenticator:
    """Turns an Authorization header into a Principal, or raises InvalidToken / 503."""

    def __init__(
        self,
        config: Bearer,
        session: aiohttp.ClientSession,
        shared_cache: SharedState | None = None,
        clock: Callable[[], float] = time.time,
        *,
        dpop_replay: SharedState | None = None,
    ) -> None:
        self.config = config
        self.dpop = DpopVerifier(config.dpop, dpop_replay, clock=clock)
        self.issuers = [build_issuer_clients(i, session, clock) for i in config.issuers]
        self._by_issuer = {clients.config.issuer: clients for clients in self.issuers}
        self._clock = clock
        # Issuer -> until when its JWTs are checked locally, after its introspection
        # endpoint refused one of its own (validly signed) JWTs: a pause, never for good.
        self._jwt_introspection_paused: dict[str, float] = {}
        self.jwt = JwtAccessTokenValidator(
            [(c.config, c.jwks) for c in self.issuers],
            clock=clock,
            max_entries=config.cache_max_entries,
        )
        # Accepted tokens by sha256, until exp + leeway (JWT) or the introspection cache's
        # expiry: the hot path skips parsing and rebuilding. Refusals stay in the layers below.
        self._accepted: ExpiringCache[str, Accepted] = ExpiringCache(config.cache_max_entries)
        self.introspection_cache = IntrospectionCache(
            max_entries=config.cache_max_entries,
            positive_ttl=config.cache_ttl,
            negative_ttl=config.negative_cache_ttl,
            shared=shared_cache if config.shared_cache else None,
            clock=clock,
        )

    async def authenticate(
        self,
        authorization_header: str | Sequence[str] | None,
        query_string: str = "",
        *,
        gate: Callable[[], None] | None = None,
    ) -> Principal:
        """The caller's principal; the header may be given as all its values.

        ``gate`` runs before any work on a token not seen yet (signature check or
        introspection call) and may raise to refuse it, e.g. a rate limit.
        """
        try:
            with tracing.span("bearer validate"):
                principal = await self._authenticate(authorization_header, query_string, gate)
        except MissingToken:
            metrics.authentication("bearer", "missing")
            raise
        except (InvalidToken, BadRequest):
            metrics.authentication("bearer", "invalid")
            raise
        except ProviderUnavailable:
            metrics.authentication("bearer", "unavailable")
            raise
        metrics.authentication("bearer", "ok")
        return principal

    async def _authenticate(
        self,
        authorization_header: str | Sequence[str] | None,
        query_string: str,
        gate: Callable[[], None] | None,
    ) -> Principal:
        refuse_token_in_query(query_string)
        header = authorization_header
        if header is not None and not isinstance(header, str):
            header = one_authorization_header(list(header))
        token = parse_bearer(header, dpop=self.config.dpop.enabled)
        key = digest(token)
        accepted = self._accepted.get(key, self._clock())
        if accepted is not None:
            if accepted[1]:
                metrics.introspection_cache("hit")  # the verdict, held here
            return accepted[0]
        if gate is not None:
            gate()
        principal, until, introspected = await self._resolve(token)
        if until > self._clock():
            self._accepted.put(key, (principal, introspected), until)
        return principal

    async def _resolve(self, token: str) -> tuple[Principal, float, bool]:
        """The principal, until when it may be reused, and whether introspection said so."""
        if not looks_like_jwt(token):
            return await self._introspect_opaque(token)
        iss = unverified_parts(token)[1].get("iss")
        clients = self._by_issuer.get(iss) if isinstance(iss, str) else None
        if clients is None:
            raise invalid_token("The token's issuer is not trusted.")
        refused = False
        if self._introspects_jwts(clients):
            try:
                return await self._introspect_with(clients, token)
            except UnsupportedTokenType:
                if not local_validation_allowed(clients.config):
                    log.warning("%s refused to introspect a token that cannot be checked "
                                "locally (okta org server)", clients.config.issuer)  # fmt: skip
                    raise invalid_token("The token could not be verified.") from None
                refused = True  # e.g. oidc-provider: its JWTs are for local checks
        verified = await self.jwt.validate(token)
        if refused:
            self._pause_jwt_introspection(clients)
        principal = principal_from_claims(verified.issuer.issuer, verified.claims, verified.issuer)
        return principal, verified.usable_until, False

    def _introspects_jwts(self, clients: TrustedIssuerClients) -> bool:
        introspection = clients.config.introspection
        if introspection is None or introspection.mode != "all":
            return False
        paused_until = self._jwt_introspection_paused.get(clients.config.issuer)
        return paused_until is None or paused_until <= self._clock()

    def _pause_jwt_introspection(self, clients: TrustedIssuerClients) -> None:
        """Check this issuer's JWTs locally for cache_ttl seconds, then ask again.

        Only a JWT that passed the local checks gets here, so a forged token that draws
        the refusal pauses nothing; and the pause ends, so a transient refusal does not
        turn introspection off for good (revocations would then go unseen until exp).
        """
        issuer = clients.config.issuer
        if self._introspects_jwts(clients):
            log.warning(
                "%s does not introspect its JWTs; checking them locally for %gs",
                issuer,
                self.config.cache_ttl,
            )
        self._jwt_introspection_paused[issuer] = self._clock() + self.config.cache_ttl

    async def _introspect_opaque(self, token: str) -> tuple[Principal, float, bool]:
        # The config allows one opaque introspector: a token never reaches another issuer.
        clients = next(
            (
                c
                for c in self.issuers
                if c.introspection is not None
                and c.config.introspection
                and c.config.introspection.opaque
            ),
            None,
        )
        if clients is None:
            raise invalid_token("The access token is malformed.")
        return await self._introspect_with(clients, token)

    async def _introspect_with(
        self, clients: TrustedIssuerClients, token: str
    ) -> tuple[Principal, float, bool]:
        client = clients.introspection
        if client is None:
            raise invalid_token("The access token is not active.")

        async def introspect() -> Result:
            response = await client.introspect(token)
            return introspection_verdict(response, clients.config, self._clock())

        cache = self.introspection_cache
        result, until = await cache.lookup_until(clients.scope, token, introspect)
        if result.get("active") is not True:
            reason = result.get("reason")
            raise invalid_token(reason if isinstance(reason, str) else "The token is not active.")
        claims = {k: v for k, v in result.items() if k != "active"}
        return principal_from_claims(clients.config.issuer, claims, clients.config), until, True


def _header_text(value: str) -> str:
    """Characters RFC 6750 allows in a challenge's quoted values (no quote, no backslash)."""
    return "".join(ch for ch in value if " " <= ch <= "~" and ch not in '"\\')


def www_authenticate(error: GatewayError, realm: str) -> str:
    """The RFC 6750 section 3 challenge for a refused bearer request."""
    params = [("realm", realm)]
    if isinstance(error, InsufficientScope):
        params += [("error", "insufficient_scope"), ("error_description", error.public_message)]
        params.append(("scope", error.scope))
    elif isinstance(error, MissingToken):
        pass  # no credentials at all: no error code (RFC 6750 3.1)
    elif isinstance(error, InsufficientUserAuthentication):
        params += [("error", error.code), ("error_description", error.public_message)]
        if error.acr_values:
            params.append(("acr_values", " ".join(error.acr_values)))
        if error.max_age is not None:
            params.append(("max_age", str(error.max_age)))
    elif isinstance(error, InvalidToken):
        params += [("error", "invalid_token"), ("error_description", error.public_message)]
    elif isinstance(error, BadRequest):
        params += [("error", "invalid_request"), ("error_description", error.public_message)]
    return "Bearer " + ", ".join(f'{name}="{_header_text(value)}"' for name, value in params)
