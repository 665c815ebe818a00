"""Every rule about a configuration, in one place: `check` prints them, `run` obeys them.

A rule looks at a schema-valid Config (no network) and returns Findings; an "error" is
something that cannot work, so `gateway run` refuses to start on it with the same words
that `gateway check` prints. Live probes (network) are in checks.py.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from gateway.config.model import Config
from gateway.errors import ConfigError
from gateway.policy.route_checks import route_policy_problems
from gateway.providers import profile_for
from gateway.providers.detect import profile_findings
from gateway.sessions.shared import shared_namespace
from gateway.tokens.authenticator import trusted_issuer_problems
from gateway.types import Finding
from gateway.web.pages.contrast import ui_contrast_problems
from gateway.web.pages.site import Site

Rule = Callable[[Config], list[Finding]]


def provider_rules(config: Config) -> list[Finding]:
    """Provider names are unique and every name that refers to one exists."""
    findings: list[Finding] = []
    names = [p.name for p in config.providers]
    for name, count in Counter(names).items():
        if count > 1:
            findings.append(
                Finding(
                    "error",
                    "providers",
                    f"name {name!r} is used {count} times: names must be unique",
                )
            )
    for i, route in enumerate(config.routes):
        if route.provider is not None and route.provider not in names:
            findings.append(
                Finding("error", f"routes[{i}].provider", f"no provider named {route.provider!r}")
            )
    for name in config.ui.provider_logos:
        if name not in names:
            findings.append(
                Finding("error", f"ui.provider_logos.{name}", f"no provider named {name!r}")
            )
    for i, provider in enumerate(config.providers):
        findings += _profile(f"providers[{i}]", provider.issuer, provider.profile)
        findings += [
            Finding("warn", f"providers[{i}]", w) for w in profile_for(provider).warnings()
        ]
    return findings


def route_rules(config: Config) -> list[Finding]:
    """Each route can authenticate its callers; names are unique; TLS is verified."""
    findings: list[Finding] = []
    for i, route in enumerate(config.routes):
        where = f"routes[{i}]"
        if route.auth in ("login", "login_or_bearer") and not config.providers:
            findings.append(
                Finding(
                    "error",
                    where,
                    f"auth '{route.auth}' needs a provider, "
                    "none configured (every request would get 503)",
                )
            )
        if route.auth in ("bearer", "login_or_bearer") and not config.bearer.issuers:
            findings.append(
                Finding("error", where, f"auth '{route.auth}' needs bearer.issuers, none set")
            )
        if not route.tls.verify:
            findings.append(
                Finding("warn", f"{where}.tls.verify", "upstream TLS verification is turned off")
            )
    seen: set[str] = set()
    for i, route in enumerate(config.routes):
        if route.name is None:
            continue
        if route.name in seen:
            findings.append(Finding("error", f"routes[{i}].name", f"{route.name!r} is used by "
                                    "another route too: names label logs and metrics, so they "
                                    "must be unique"))  # fmt: skip
        seen.add(route.name)
    findings += [Finding(*problem) for problem in route_policy_problems(config)]
    return findings


def bearer_rules(config: Config) -> list[Finding]:
    """Each trusted issuer has a way to verify tokens and accepts no HMAC."""
    findings: list[Finding] = []
    for i, issuer in enumerate(config.bearer.issuers):
        where = f"bearer.issuers[{i}]"
        findings += [Finding("error", where, p) for p in trusted_issuer_problems(issuer)]
        findings += _profile(where, issuer.issuer, issuer.profile)
    return findings


def session_rules(config: Config) -> list[Finding]:
    """Keys and stores that keep sessions alive across restarts and instances."""
    sessions = config.sessions
    findings: list[Finding] = []
    if not sessions.cookie_secure:
        findings.append(Finding("warn", "sessions.cookie_secure", "cookies are not marked Secure"))
    if sessions.store == "redis" and not sessions.secrets:
        findings.append(
            Finding(
                "error",
                "sessions.secrets",
                "not set: the redis store is shared "
                "across instances, so every instance needs the same secrets "
                "(with a random key no session would survive a restart)",
            )
        )
    elif config.providers and not sessions.secrets:
        findings.append(
            Finding(
                "warn",
                "sessions.secrets",
                "not set: a random key is made at "
                "each start, so every session ends when the process restarts",
            )
        )
    if config.listen.workers > 1 and sessions.store == "memory" and config.providers:
        findings.append(
            Finding(
                "error",
                "listen.workers",
                "each worker process has its own "
                "memory store, so a session made by one is unknown to the "
                "others; use sessions.store: redis with more than one worker",
            )
        )
    if sessions.store == "redis":
        findings.append(
            Finding(
                "ok",
                "sessions.redis",
                f"shared caches use namespace "
                f"{shared_namespace(config)}: instances share introspection verdicts and "
                "logout-token marks only when key_prefix, bearer issuers (audiences, "
                "introspection client) and providers (issuer, client_id) are equal",
            )
        )
    return findings


def exposure_rules(config: Config) -> list[Finding]:
    """What the main listener shows to anyone who reaches it."""
    if config.metrics.enabled and config.metrics.public:
        return [
            Finding(
                "warn",
                "metrics.public",
                f"{config.prefix.rstrip('/')}/metrics is "
                "readable by anyone who reaches the gateway (route names, provider "
                "names, error rates); serve it on metrics.listen only",
            )
        ]
    return []


def file_rules(config: Config) -> list[Finding]:
    """Key, certificate and CA files named in the config exist and hold what they should."""
    checks: list[tuple[str, str | None, Callable[[bytes], object]]] = []
    for i, provider in enumerate(config.providers):
        checks.append((f"providers[{i}].private_key_file", provider.private_key_file, _key))
    for i, issuer in enumerate(config.bearer.issuers):
        file = issuer.introspection.private_key_file if issuer.introspection else None
        checks.append((f"bearer.issuers[{i}].introspection.private_key_file", file, _key))
    for i, route in enumerate(config.routes):
        checks.append((f"routes[{i}].tls.ca_file", route.tls.ca_file, _certificates))
    checks.append(("sessions.redis.ca_file", config.sessions.redis.ca_file, _certificates))
    if config.listen.tls is not None:
        checks.append(("listen.tls.cert_file", config.listen.tls.cert_file, _certificates))
        checks.append(("listen.tls.key_file", config.listen.tls.key_file, _key))
    findings: list[Finding] = []
    for where, path, parse in checks:
        if path is None:
            continue
        try:
            parse(Path(path).read_bytes())
        except OSError as exc:
            findings.append(Finding("error", where, f"cannot read {path!r}: {exc.strerror}"))
        except (ValueError, TypeError, UnsupportedAlgorithm):
            what = "an unencrypted PEM private key" if parse is _key else "PEM certificates"
            findings.append(Finding("error", where, f"{path!r} does not hold {what}"))
    return findings


def _key(data: bytes) -> object:
    return load_pem_private_key(data, password=None)


def _certificates(data: bytes) -> object:
    return x509.load_pem_x509_certificates(data)


def page_rules(config: Config) -> list[Finding]:
    """The pages' templates and logo files load, and the colours stay readable."""
    try:
        Site.compile(config.ui, config.prefix)
    except ConfigError as exc:
        return [Finding("error", "ui", problem) for problem in exc.problems]
    return [Finding("warn", where, problem) for where, problem in ui_contrast_problems(config.ui)]


def rego_rules(config: Config) -> list[Finding]:
    """Rego policies that do not load or compile (they would stop start-up)."""
    from gateway.policy.routes import RouteTable
    from gateway.web.services import rego_policies

    try:
        rego_policies(RouteTable(config.routes))
    except ConfigError as exc:
        return [Finding("error", "routes", problem) for problem in exc.problems]
    return []


def _profile(where: str, issuer: str, profile: str) -> list[Finding]:
    applied, warnings = profile_findings(issuer, profile)
    return [Finding("ok", where, applied), *(Finding("warn", where, w) for w in warnings)]


RULES: tuple[Rule, ...] = (
    provider_rules,
    route_rules,
    bearer_rules,
    session_rules,
    exposure_rules,
    file_rules,
    page_rules,
    rego_rules,
)


def config_findings(config: Config) -> list[Finding]:
    """Every rule's findings for ``config``, in a stable order."""
    return [finding for rule in RULES for finding in rule(config)]


def refuse_on_errors(config: Config) -> None:
    """Raise ConfigError with every error `check` reports (what `run` and reload obey)."""
    errors = [f.line() for f in config_findings(config) if f.level == "error"]
    if errors:
        raise ConfigError(errors)
