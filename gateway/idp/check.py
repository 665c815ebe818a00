"""`gateway check` for a login provider: the live verification a relying party should run."""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp

from gateway.config.model import Provider
from gateway.errors import ConfigError, ProviderUnavailable
from gateway.idp.discovery import IssuerMatcher, MetadataSource, ProviderMetadata
from gateway.idp.jwks import SIGNATURE_ALGORITHMS, JwksCache, key_fits
from gateway.types import Level

CheckLevel = Level
UNSAFE_ALGORITHMS = frozenset({"none", "HS256", "HS384", "HS512"})


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One finding of a check, as a plain sentence."""

    level: CheckLevel
    message: str


def ok(message: str) -> CheckResult:
    return CheckResult("ok", message)


def warn(message: str) -> CheckResult:
    return CheckResult("warn", message)


def error(message: str) -> CheckResult:
    return CheckResult("error", message)


async def check_provider(
    provider: Provider,
    session: aiohttp.ClientSession,
    *,
    issuer_matches: IssuerMatcher | None = None,
    needs_id_token: bool = True,
) -> list[CheckResult]:
    """Fetch the provider's metadata and keys live and report what would break a login.

    `issuer_matches` and `needs_id_token` come from the provider's profile (an Entra
    issuer template; GitHub has no id_token, so no keys and no algorithms to check).
    """
    label = f"Provider {provider.name!r}"
    if not needs_id_token:
        return [ok(f"{label}: OAuth 2.0 provider: no discovery, no id_token; identity "
                   "is read from its API at login.")]  # fmt: skip
    try:
        source = MetadataSource.for_provider(provider, session, issuer_matches=issuer_matches)
    except ConfigError as exc:
        return [error(f"{label}: {problem}") for problem in exc.problems]
    try:
        metadata = await source.fetch() if provider.discovery else await source.get()
    except ProviderUnavailable as exc:
        return [error(f"{label}: cannot load the discovery document: {exc}.")]
    results = [ok(f"{label}: discovery document loaded; its issuer matches exactly.")]
    if not provider.discovery:
        results = [ok(f"{label}: endpoints are configured by hand (no discovery).")]
    from gateway.idp.modern_check import modern_findings  # it builds on this module

    findings = [
        *endpoint_findings(provider, metadata),
        *pkce_findings(provider, metadata),
        *auth_method_findings(provider, metadata),
        *algorithm_findings(provider, metadata),
        *logout_findings(provider, metadata),
        *modern_findings(provider, metadata),
    ]
    findings.extend(await address_findings(source, metadata))
    findings.append(await jwks_finding(source, session, metadata))
    return results + [CheckResult(r.level, f"{label}: {r.message}") for r in findings]


def endpoint_findings(provider: Provider, metadata: ProviderMetadata) -> list[CheckResult]:
    """Endpoints a login needs are present; optional ones are noted."""
    results: list[CheckResult] = []
    for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        if getattr(metadata, name) is None:
            results.append(error(f"{name} is missing, so sign-in cannot work."))
    if not results:
        results.append(ok("authorization, token and JWKS endpoints are present."))
    if provider.fetch_userinfo and metadata.userinfo_endpoint is None:
        results.append(warn("no userinfo_endpoint; set fetch_userinfo: false or configure it."))
    if metadata.end_session_endpoint is None:
        results.append(warn("no end_session_endpoint; logout will end the gateway session only."))
    return results


def pkce_findings(provider: Provider, metadata: ProviderMetadata) -> list[CheckResult]:
    """PKCE S256 is advertised when the gateway will send it."""
    methods = metadata.code_challenge_methods_supported
    if not provider.pkce:
        return [warn("PKCE is switched off; turn it on unless the provider rejects it.")]
    if "S256" in methods:
        return [ok("PKCE S256 is advertised.")]
    if not methods:
        return [warn("code_challenge_methods_supported is not advertised; S256 will be sent.")]
    return [error(f"PKCE S256 is not advertised (only {', '.join(methods)}).")]


def auth_method_findings(provider: Provider, metadata: ProviderMetadata) -> list[CheckResult]:
    """The configured token endpoint auth method is one the provider accepts."""
    chosen = provider.token_endpoint_auth_method
    advertised = metadata.token_endpoint_auth_methods_supported or ("client_secret_basic",)
    if chosen in advertised:
        return [ok(f"token endpoint auth method {chosen} is advertised.")]
    listed = ", ".join(advertised)
    if not metadata.token_endpoint_auth_methods_supported:
        return [warn(f"{chosen} is configured; the provider advertises none (default {listed}).")]
    return [error(f"{chosen} is configured, but the provider accepts only {listed}.")]


def algorithm_findings(provider: Provider, metadata: ProviderMetadata) -> list[CheckResult]:
    """The id_token signing algorithms leave at least one safe choice."""
    advertised = metadata.id_token_signing_alg_values_supported
    usable = [a for a in advertised if a not in UNSAFE_ALGORITHMS]
    if provider.id_token_algorithms is not None:
        chosen = [a for a in provider.id_token_algorithms if a not in UNSAFE_ALGORITHMS]
        usable = [a for a in chosen if a in advertised] if advertised else chosen
        if not usable:
            return [error("none of id_token_algorithms is advertised by the provider.")]
    if not advertised and provider.id_token_algorithms is None:
        return [warn("id_token_signing_alg_values_supported is not advertised; RS256 assumed.")]
    if not usable:
        return [error(f"the provider signs id_tokens only with {', '.join(advertised)}.")]
    return [ok(f"id_tokens will be accepted when signed with {', '.join(usable)}.")]


def logout_findings(provider: Provider, metadata: ProviderMetadata) -> list[CheckResult]:
    """Back-channel logout support, as far as the gateway relies on it."""
    if not provider.backchannel_logout:
        return []
    if not metadata.backchannel_logout_supported:
        return [warn("back-channel logout is not advertised; sessions end only locally.")]
    if not metadata.backchannel_logout_session_supported:
        return [warn("logout tokens carry no sid; a logout will end all of the user's sessions.")]
    return [ok("back-channel logout with session ids is advertised.")]


async def address_findings(source: MetadataSource, metadata: ProviderMetadata) -> list[CheckResult]:
    """Endpoints the gateway calls itself pass the SSRF guard and the https rule."""
    results: list[CheckResult] = []
    for name in ("token_endpoint", "userinfo_endpoint", "jwks_uri", "introspection_endpoint"):
        url = getattr(metadata, name)
        if url is None or "{" in url:
            continue
        try:
            await source.guard.check(url)
        except ProviderUnavailable as exc:
            results.append(error(f"{name}: {exc}."))
    return results


async def jwks_finding(
    source: MetadataSource, session: aiohttp.ClientSession, metadata: ProviderMetadata
) -> CheckResult:
    """The JWKS is reachable and holds at least one asymmetric signing key."""
    if metadata.jwks_uri is None:
        return error("no JWKS to check.")
    cache = JwksCache(metadata.jwks_uri, session, source.guard, cooldown=0.0)
    try:
        keys = await cache.fetch_keys()
    except ProviderUnavailable as exc:
        return error(f"cannot load the JWKS: {exc}.")
    usable = [k for k in keys if any(key_fits(k, a) for a in SIGNATURE_ALGORITHMS)]
    if not usable:
        return error("the JWKS holds no asymmetric signing key.")
    return ok(f"the JWKS holds {len(usable)} signing key(s).")
