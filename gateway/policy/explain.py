"""A route's policy in plain words, in the order `decide` applies it (`gateway check --explain`)."""

from __future__ import annotations

from gateway.config.model import Policy, Route
from gateway.policy.conditions import describe


def explain_policy(policy: Policy) -> list[str]:
    """One line per step; each refusing step says what must (not) hold."""
    lines: list[str] = []
    if policy.methods is not None:
        lines.append("405 unless the method is one of " + ", ".join(policy.methods))
    lines += [
        f"refuse when {describe(rule)}" + (f" ({rule.reason})" if rule.reason else "")
        for rule in policy.deny
    ]
    if policy.scopes_all:
        lines.append("require every scope of " + ", ".join(policy.scopes_all))
    if policy.scopes_any:
        lines.append("require one scope of " + ", ".join(policy.scopes_any))
    lines += [f"require {describe(rule)}" for rule in policy.claims]
    if policy.groups:
        lines.append("require one of the groups " + ", ".join(policy.groups))
    if policy.emails:
        lines.append("require a verified e-mail of " + ", ".join(policy.emails))
    if policy.email_domains:
        lines.append("require a verified e-mail in " + ", ".join(policy.email_domains))
    if policy.client_ids:
        lines.append("bearer callers: require client id " + ", ".join(policy.client_ids))
    lines += [f"require {describe(c)}" for c in policy.all]
    if policy.any:
        lines.append("require any of: " + "; ".join(describe(c) for c in policy.any))
    if policy.not_ is not None:
        lines.append(f"refuse when {describe(policy.not_)}")
    return lines or ["allow every authenticated caller"]


def _beyond_policy(route: Route) -> list[str]:
    """What a route checks besides its policy, in the order the handler applies it."""
    lines: list[str] = []
    if route.cors_preflight:
        lines.insert(0, "CORS preflights pass to the upstream without sign-in")
    step_up = route.step_up
    if step_up is not None and step_up.acr_values:
        lines.append("step-up: acr one of (or above) " + ", ".join(step_up.acr_values))
    if step_up is not None and step_up.max_age is not None:
        lines.append(f"step-up: signed in at most {step_up.max_age} s ago")
    return lines


def explain_route(route: Route) -> list[str]:
    if route.auth == "public":
        methods = route.policy.methods
        return ["public: no sign-in" + (f"; methods {', '.join(methods)}" if methods else "")]
    after = []
    if route.rego is not None:
        after.append(f"then Rego {route.rego.file} ({route.rego.query}) must allow")
    if route.authorizer is not None:
        after.append(f"then the authorizer {route.authorizer.url} must allow (fails closed)")
    return [f"auth {route.auth}", *_beyond_policy(route), *explain_policy(route.policy), *after]
