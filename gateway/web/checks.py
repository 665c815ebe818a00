"""`gateway check`: the config's own consistency, then each provider checked live."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import aiohttp

from gateway import __version__
from gateway.config.model import Config
from gateway.errors import ConfigError
from gateway.idp.check import check_provider
from gateway.idp.resolver import idp_connector
from gateway.policy.route_checks import route_policy_problems
from gateway.policy.routes import RouteTable
from gateway.providers import profile_for
from gateway.providers.detect import profile_findings
from gateway.sessions.shared import shared_namespace
from gateway.tokens.authenticator import trusted_issuer_problems
from gateway.web.pages.contrast import ui_contrast_problems
from gateway.web.pages.site import Site
from gateway.web.services import rego_policies

Level = Literal["ok", "warn", "error"]


@dataclass(frozen=True, slots=True)
class Finding:
    level: Level
    subject: str
    message: str


def static_findings(config: Config) -> list[Finding]:
    """Problems visible in the config alone (no network)."""
    findings: list[Finding] = []
    for i, route in enumerate(config.routes):
        where = f"routes[{i}]"
        if route.auth in ("login", "login_or_bearer") and not config.providers:
            findings.append(
                Finding("error", where, f"auth '{route.auth}' needs a provider, none configured")
            )
        if route.auth in ("bearer", "login_or_bearer") and not config.bearer.issuers:
            findings.append(
                Finding("error", where, f"auth '{route.auth}' needs bearer.issuers, none set")
            )
        if not route.tls.verify:
            findings.append(Finding("warn", where, "upstream TLS verification is turned off"))
    findings += [Finding(*problem) for problem in route_policy_problems(config)]
    for i, provider in enumerate(config.providers):
        findings += _profile_findings(f"providers[{i}]", provider.issuer, provider.profile)
        findings += [Finding("warn", f"providers[{i}]", w)
                     for w in profile_for(provider).warnings()]  # fmt: skip
    findings += rego_findings(config)
    for i, issuer in enumerate(config.bearer.issuers):
        where = f"bearer.issuers[{i}]"
        findings += [Finding("error", where, p) for p in trusted_issuer_problems(issuer)]
        findings += _profile_findings(where, issuer.issuer, issuer.profile)
    if not config.sessions.cookie_secure:
        findings.append(Finding("warn", "sessions.cookie_secure", "cookies are not marked Secure"))
    if config.sessions.store == "redis" and not config.sessions.secrets:
        findings.append(
            Finding(
                "error",
                "sessions.secrets",
                "the redis store is shared across instances, so every instance needs the "
                "same secrets",
            )
        )
    if config.sessions.store == "redis":
        findings.append(namespace_finding(config))
    findings += page_findings(config)
    return findings


def _profile_findings(where: str, issuer: str, profile: str) -> list[Finding]:
    applied, warnings = profile_findings(issuer, profile)
    return [Finding("ok", where, applied), *(Finding("warn", where, w) for w in warnings)]


def page_findings(config: Config) -> list[Finding]:
    """The pages' templates and logo files load, and the colours stay readable."""
    try:
        Site.compile(config.ui, config.prefix)
    except ConfigError as exc:
        return [Finding("error", "ui", problem) for problem in exc.problems]
    return [Finding("warn", where, problem) for where, problem in ui_contrast_problems(config.ui)]


def rego_findings(config: Config) -> list[Finding]:
    """Rego policies that do not load or compile (they would stop start-up)."""
    try:
        rego_policies(RouteTable(config.routes))
    except ConfigError as exc:
        return [Finding("error", "routes", problem) for problem in exc.problems]
    return []


def namespace_finding(config: Config) -> Finding:
    """Which namespace the shared caches in Redis use (equal only for equal configs)."""
    return Finding(
        "ok",
        "sessions.redis",
        f"shared caches use namespace {shared_namespace(config)}: instances share "
        "introspection verdicts and logout-token marks only when key_prefix, bearer issuers "
        "(audiences, introspection client) and providers (issuer, client_id) are equal",
    )


async def run_checks(config: Config, *, offline: bool) -> int:
    """Print findings; exit code 1 when any is an error."""
    findings = static_findings(config)
    if not offline:
        findings += await live_findings(config)
    for f in findings:
        print(f"[{f.level.upper():5}] {f.subject}: {f.message}")
    errors = sum(f.level == "error" for f in findings)
    print(
        f"configuration checked: {errors} error(s), "
        f"{sum(f.level == 'warn' for f in findings)} warning(s)"
    )
    return 1 if errors else 0


async def live_findings(config: Config) -> list[Finding]:
    """Each provider checked live (discovery, keys, logout support) and its logout URLs."""
    findings: list[Finding] = []
    async with aiohttp.ClientSession(
        connector=idp_connector(config),
        cookie_jar=aiohttp.DummyCookieJar(),
        headers={"User-Agent": f"oidc-gateway/{__version__}"},
    ) as session:
        for i, provider in enumerate(config.providers):
            where = f"providers[{i}]"
            profile = profile_for(provider)
            results = await check_provider(
                provider,
                session,
                issuer_matches=profile.discovery_issuer_matches,
                needs_id_token=profile.uses_id_token,
            )
            findings += [Finding(r.level, where, r.message) for r in results]
            findings += logout_uri_findings(config, i)
    if config.providers and config.public_url is None:
        message = "not set: replace <gateway host> in the logout URIs by the external URL"
        findings.append(Finding("warn", "public_url", message))
    return findings


def logout_uri_findings(config: Config, index: int) -> list[Finding]:
    """The URLs to register at the provider as backchannel/frontchannel_logout_uri."""
    provider = config.providers[index]
    where = f"providers[{index}]"
    base = (config.public_url or "https://<gateway host>").rstrip("/") + config.prefix.rstrip("/")
    suffix = f"/{provider.name}" if len(config.providers) > 1 else ""
    findings: list[Finding] = []
    if provider.backchannel_logout:
        url = f"{base}/backchannel-logout{suffix}"
        findings.append(Finding("ok", where, f"register backchannel_logout_uri: {url}"))
    if provider.frontchannel_logout:
        url = f"{base}/frontchannel-logout"
        findings.append(Finding("ok", where, f"register frontchannel_logout_uri: {url}"))
    return findings
