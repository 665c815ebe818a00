"""`gateway check`: what to register, every rule in one pass, then live probes of each service."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import aiohttp

from gateway import __version__
from gateway.config.load import read_raw
from gateway.config.model import Config
from gateway.config.partial import IndexMap, validate_partially
from gateway.idp.check import check_provider
from gateway.idp.resolver import idp_connector
from gateway.providers import profile_for
from gateway.types import Finding
from gateway.web.probes import (
    probe_bearer_issuer,
    probe_client_credentials,
    probe_redis,
    probe_upstreams,
)
from gateway.web.rules import config_findings


def registration_uris(config: Config) -> list[tuple[str, list[tuple[str, str]]]]:
    """Per provider, the URIs to register there: (provider name, [(metadata name, URI)])."""
    base = _origin(config) + config.prefix.rstrip("/")
    out: list[tuple[str, list[tuple[str, str]]]] = []
    for provider in config.providers:
        uris = [("redirect_uri", f"{base}/callback")]
        if not profile_for(provider).uses_id_token:  # OAuth 2.0 only: no logout to register
            out.append((provider.name, uris))
            continue
        post_logout = provider.post_logout_redirect_uri or f"{base}/logged-out"
        uris.append(("post_logout_redirect_uri", post_logout))
        if provider.backchannel_logout:
            suffix = f"/{provider.name}" if len(config.providers) > 1 else ""
            uris.append(("backchannel_logout_uri", f"{base}/backchannel-logout{suffix}"))
        if provider.frontchannel_logout:
            uris.append(("frontchannel_logout_uri", f"{base}/frontchannel-logout"))
        out.append((provider.name, uris))
    return out


def _origin(config: Config) -> str:
    # The same origin the login handlers put in redirect_uri (login_services.callback_url).
    if config.public_url is None:
        return "https://<gateway host>"
    parts = urlsplit(config.public_url)
    return f"{parts.scheme}://{parts.netloc}"


async def run_checks(path: Path, *, offline: bool) -> int:
    """Print what to register, then every finding; exit 2 on schema errors, 1 on others."""
    raw, file_problems = read_raw(path)
    schema_problems, config, index = validate_partially(raw)
    # An unset ${VAR} or unreadable secret file also fails validation: say it once.
    unset = [p.partition(": ")[0] for p in file_problems]
    schema_problems = [p for p in schema_problems if not p.startswith(tuple(unset) or ("\0",))]
    problems = [*file_problems, *schema_problems]
    findings = [Finding("error", *_split(problem)) for problem in problems]
    if config is not None:
        _print_registration(config)
        found = config_findings(config)
        if not offline:
            found += await live_findings(config)
        mapped = [Finding(f.level, index.original(f.subject), f.message) for f in found]
        findings += [
            f for f in mapped
            if not index.touches_pruned(f.subject) and not _follows_from_pruning(f, index)
        ]  # fmt: skip
        if problems:
            findings.append(Finding("ok", "", "the rules above were checked on the file "
                                    "without the keys that failed validation"))  # fmt: skip
    for f in findings:
        print(f"[{f.level.upper():5}] {f.line()}")
    errors = sum(f.level == "error" for f in findings)
    warnings = sum(f.level == "warn" for f in findings)
    print(f"configuration checked: {errors} error(s), {warnings} warning(s)")
    if problems:
        return 2
    return 1 if errors else 0


# Rule findings that only say a section is empty, which it may be because its entries
# failed validation (those errors are listed already).
_EMPTY_SECTION = {"needs a provider": "providers", "needs bearer.issuers": "bearer.issuers"}


def _follows_from_pruning(finding: Finding, index: IndexMap) -> bool:
    return any(
        words in finding.message and index.pruned_under(section)
        for words, section in _EMPTY_SECTION.items()
    )


def _split(problem: str) -> tuple[str, str]:
    subject, sep, message = problem.partition(": ")
    return (subject, message) if sep and " " not in subject else ("", problem)


def _print_registration(config: Config) -> None:
    for name, uris in registration_uris(config):
        print(f"Register at provider {name!r}:")
        for what, uri in uris:
            print(f"  {what + ':':<26} {uri}")
    if config.providers and config.public_url is None:
        print("  (public_url is not set: replace <gateway host> by the external host name)")
    if config.providers:
        print()


async def live_findings(config: Config) -> list[Finding]:
    """Each provider, bearer issuer, the session store and each upstream, checked live."""
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
            redirect_uri = _origin(config) + config.prefix.rstrip("/") + "/callback"
            findings.append(await probe_client_credentials(provider, session, redirect_uri, where))
        for i, issuer in enumerate(config.bearer.issuers):
            findings += await probe_bearer_issuer(issuer, session, f"bearer.issuers[{i}]")
    if config.sessions.store == "redis":
        findings += await probe_redis(config)
    findings += await probe_upstreams(config)
    return findings
