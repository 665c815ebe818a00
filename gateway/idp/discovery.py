"""Provider metadata (OpenID Connect Discovery 1.0 / RFC 8414), cached, or configured by hand."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from gateway.config.issuer import validate_issuer
from gateway.config.model import Endpoints, Provider, TrustedIssuer
from gateway.errors import ConfigError, ProviderMisconfigured, ProviderUnavailable
from gateway.idp.addresses import AddressGuard
from gateway.idp.backoff import RetrySchedule
from gateway.idp.http import display_url, fetch_json

log = logging.getLogger(__name__)

WELL_KNOWN = "/.well-known/openid-configuration"
ENDPOINT_FIELDS = {
    "authorization": "authorization_endpoint",
    "token": "token_endpoint",
    "userinfo": "userinfo_endpoint",
    "jwks": "jwks_uri",
    "end_session": "end_session_endpoint",
    "introspection": "introspection_endpoint",
    "revocation": "revocation_endpoint",
}


@dataclass(frozen=True, slots=True)
class ProviderMetadata:
    """What the gateway needs from a provider's discovery document (`raw` holds all of it)."""

    issuer: str
    authorization_endpoint: str | None = None
    token_endpoint: str | None = None
    userinfo_endpoint: str | None = None
    jwks_uri: str | None = None
    end_session_endpoint: str | None = None
    introspection_endpoint: str | None = None
    revocation_endpoint: str | None = None
    code_challenge_methods_supported: tuple[str, ...] = ()
    token_endpoint_auth_methods_supported: tuple[str, ...] = ()
    id_token_signing_alg_values_supported: tuple[str, ...] = ()
    backchannel_logout_supported: bool = False
    backchannel_logout_session_supported: bool = False
    frontchannel_logout_supported: bool = False
    authorization_response_iss_parameter_supported: bool = False
    raw: dict[str, Any] = field(default_factory=dict, compare=False)


def discovery_url(issuer: str) -> str:
    """Where the discovery document of an issuer lives (OIDC Discovery 1.0, section 4)."""
    return issuer.rstrip("/") + WELL_KNOWN


def _text(document: dict[str, Any], name: str) -> str | None:
    value = document.get(name)
    return value if isinstance(value, str) and value else None


def _texts(document: dict[str, Any], name: str) -> tuple[str, ...]:
    value = document.get(name)
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()


IssuerMatcher = Callable[[object], bool]


def parse_metadata(
    document: dict[str, Any], expected_issuer: str, matches: IssuerMatcher | None = None
) -> ProviderMetadata:
    """Read a discovery document; its `issuer` must equal the configured issuer exactly,
    unless the provider's profile (`matches`) knows its other shape (Entra's {tenantid})."""
    published = document.get("issuer")
    accepted = matches(published) if matches is not None else published == expected_issuer
    if not accepted or not isinstance(published, str):
        raise ProviderMisconfigured(
            f"the discovery document names issuer {str(published)[:200]!r}, but the "
            f"configuration says {expected_issuer!r}; they must be exactly equal"
        )
    return ProviderMetadata(
        issuer=published,
        **{name: _text(document, name) for name in ENDPOINT_FIELDS.values()},
        code_challenge_methods_supported=_texts(document, "code_challenge_methods_supported"),
        token_endpoint_auth_methods_supported=_texts(
            document, "token_endpoint_auth_methods_supported"
        ),
        id_token_signing_alg_values_supported=_texts(
            document, "id_token_signing_alg_values_supported"
        ),
        backchannel_logout_supported=document.get("backchannel_logout_supported") is True,
        backchannel_logout_session_supported=(
            document.get("backchannel_logout_session_supported") is True
        ),
        frontchannel_logout_supported=document.get("frontchannel_logout_supported") is True,
        authorization_response_iss_parameter_supported=(
            document.get("authorization_response_iss_parameter_supported") is True
        ),
        raw=document,
    )


def apply_endpoints(metadata: ProviderMetadata, endpoints: Endpoints) -> ProviderMetadata:
    """Hand-configured endpoints win over discovered ones."""
    overrides = {
        meta_name: getattr(endpoints, cfg_name)
        for cfg_name, meta_name in ENDPOINT_FIELDS.items()
        if getattr(endpoints, cfg_name) is not None
    }
    if not overrides:
        return metadata
    fields = {name: getattr(metadata, name) for name in ProviderMetadata.__dataclass_fields__}
    return ProviderMetadata(**{**fields, **overrides})


class MetadataSource:
    """The metadata of one provider: discovered and cached, or built from `endpoints`.

    A fresh document is kept for `ttl` seconds; failed fetches back off exponentially
    (capped) and a stale document keeps being served while refetches fail.
    """

    def __init__(
        self,
        issuer: str,
        session: aiohttp.ClientSession,
        *,
        guard: AddressGuard,
        discovery: bool = True,
        endpoints: Endpoints | None = None,
        timeout: float = 10.0,
        ttl: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
        issuer_matches: IssuerMatcher | None = None,
    ) -> None:
        if discovery:
            problems = validate_issuer(issuer, allow_insecure_http=guard.allow_insecure_http)
            if problems:
                raise ConfigError(problems)
        self.issuer = issuer
        self.url = discovery_url(issuer)
        self._session = session
        self._guard = guard
        self._endpoints = endpoints or Endpoints()
        self._timeout = timeout
        self._ttl = ttl
        self._clock = clock
        self._issuer_matches = issuer_matches
        static = apply_endpoints(ProviderMetadata(issuer), self._endpoints)
        self._static = None if discovery else static
        self._cached: ProviderMetadata | None = None
        self._fresh_until = 0.0
        self._schedule = RetrySchedule(first_wait=1.0, max_wait=300.0)
        self._last_error: ProviderUnavailable | None = None
        self._lock = asyncio.Lock()

    @classmethod
    def for_provider(
        cls, provider: Provider, session: aiohttp.ClientSession, **options: Any
    ) -> MetadataSource:
        """The source for a login provider entry."""
        guard = AddressGuard(
            allow_private_network=provider.allow_private_network,
            allow_insecure_http=provider.allow_insecure_http,
        )
        return cls(
            provider.issuer,
            session,
            guard=guard,
            discovery=provider.discovery,
            endpoints=provider.endpoints,
            timeout=provider.timeout,
            **options,
        )

    @classmethod
    def for_trusted_issuer(
        cls, trusted: TrustedIssuer, session: aiohttp.ClientSession, **options: Any
    ) -> MetadataSource:
        """The source for a bearer-token issuer (jwks_uri / introspection endpoint)."""
        guard = AddressGuard(
            allow_private_network=trusted.allow_private_network,
            allow_insecure_http=trusted.allow_insecure_http,
        )
        introspection = trusted.introspection.endpoint if trusted.introspection else None
        endpoints = Endpoints(jwks=trusted.jwks_uri, introspection=introspection)
        return cls(
            trusted.issuer,
            session,
            guard=guard,
            discovery=trusted.discovery,
            endpoints=endpoints,
            **options,
        )

    @property
    def guard(self) -> AddressGuard:
        return self._guard

    async def get(self) -> ProviderMetadata:
        """The current metadata; raises ProviderUnavailable only when none was ever loaded."""
        if self._static is not None:
            return self._static
        if self._cached is not None and (self._clock() < self._fresh_until or self._lock.locked()):
            return self._cached
        async with self._lock:
            now = self._clock()
            if self._cached is not None and now < self._fresh_until:
                return self._cached
            if not self._schedule.may_try(now):
                return self._stale_or_raise()
            return await self._refresh()

    async def _refresh(self) -> ProviderMetadata:
        try:
            metadata = await self.fetch()
        except ProviderUnavailable as exc:
            self._schedule.failed(self._clock())
            self._last_error = exc
            if self._cached is not None:
                log.warning("discovery refetch failed, serving the cached document: %s", exc)
            return self._stale_or_raise()
        now = self._clock()
        self._cached = metadata
        self._fresh_until = now + self._ttl
        self._schedule.succeeded(now)
        return metadata

    def _stale_or_raise(self) -> ProviderMetadata:
        if self._cached is not None:
            return self._cached
        reason = str(self._last_error) if self._last_error else "no attempt succeeded yet"
        raise ProviderUnavailable(f"provider metadata unavailable: {reason}")

    async def fetch(self) -> ProviderMetadata:
        """Fetch and check the discovery document now, bypassing the cache."""
        status, document = await fetch_json(
            self._session, self.url, guard=self._guard, timeout=self._timeout, endpoint="discovery"
        )
        if status != 200:
            raise ProviderUnavailable(f"{display_url(self.url)} answered HTTP {status}")
        metadata = parse_metadata(document, self.issuer, self._issuer_matches)
        log.debug(
            "discovery document fetched",
            extra={"url": display_url(self.url), "issuer": metadata.issuer},
        )
        return apply_endpoints(metadata, self._endpoints)
