"""Static review of each route's policy against the rest of the config (for `gateway check`)."""

from __future__ import annotations

from gateway.config.model import Config, Policy, Route
from gateway.policy.authz import policy_problems
from gateway.types import Level

Problem = tuple[Level, str, str]  # level, key path, plain sentence


def caller_issuers(config: Config, route: Route) -> set[str]:
    """Issuers whose callers can reach the route: its login providers and/or bearer issuers."""
    issuers: set[str] = set()
    if route.auth in ("login", "login_or_bearer"):
        pinned = [p for p in config.providers if route.provider in (None, p.name)]
        issuers |= {p.issuer for p in pinned}
    if route.auth in ("bearer", "login_or_bearer"):
        issuers |= {i.issuer for i in config.bearer.issuers}
    return issuers


def issuer_rule_problems(policy: Policy, reachable: set[str]) -> list[tuple[Level, str]]:
    """`iss` rules naming an issuer (provider) no caller of the route can come from."""
    problems: list[tuple[Level, str]] = []
    for rule in policy.claims:
        if rule.claim != "iss" or rule.contains is not None:
            continue
        named = [rule.equals] if rule.equals is not None else list(rule.one_of or [])
        unknown = [value for value in named if value not in reachable]
        level: Level = "error" if len(unknown) == len(named) else "warn"
        problems += [
            (level, f"claims: iss {value!r} refers to an unknown provider: no caller of this "
                    "route comes from it (see providers, bearer.issuers, provider)")
            for value in unknown
        ]  # fmt: skip
    return problems


def _mode_problems(route: Route) -> list[tuple[Level, str]]:
    problems: list[tuple[Level, str]] = []
    if route.auth == "login" and route.policy.client_ids:
        problems.append(("warn", "client_ids restricts bearer callers only; this route has none"))
    if route.auth in ("bearer", "login_or_bearer") and route.provider is not None:
        problems.append(
            ("warn", f"provider {route.provider!r} pins browser sign-in only: bearer tokens of "
                     "every bearer issuer pass (add a claims rule on iss to restrict them)")
        )  # fmt: skip
    return problems


def route_policy_problems(config: Config) -> list[Problem]:
    """Every route's policy: self-contradictions, unknown providers, settings with no effect."""
    found: list[Problem] = []
    for i, route in enumerate(config.routes):
        where = f"routes[{i}].policy"
        found += [("error", where, problem) for problem in policy_problems(route.policy)]
        if route.auth != "public":
            reachable = caller_issuers(config, route)
            found += [
                (lvl, where, msg) for lvl, msg in issuer_rule_problems(route.policy, reachable)
            ]
        found += [(lvl, f"routes[{i}]", msg) for lvl, msg in _mode_problems(route)]
    return found
