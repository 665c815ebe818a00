"""Authorization: may this principal call this route with this method? (pure decisions)"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gateway.config.model import ClaimRule, Condition, Policy
from gateway.policy.claim_paths import MISSING, read_claim
from gateway.policy.conditions import Facts, Indeterminate, compare, describe, holds, why_not
from gateway.policy.query import framework_names, query_pairs
from gateway.types import Principal

METHOD_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome: allowed (200), or refused with 403 / 405 and a plain reason."""

    allowed: bool
    status: int
    reason: str
    missing_scope: str | None = None


ALLOW = Decision(True, 200, "allowed")


def deny(reason: str, *, status: int = 403, missing_scope: str | None = None) -> Decision:
    return Decision(False, status, reason, missing_scope)


def claim_value(claims: dict[str, Any], name: str) -> Any:
    """The claim at `name`: a dotted path or a JSON Pointer (see policy/claim_paths.py)."""
    return read_claim(claims, name)


def present_claim(claims: dict[str, Any], name: str) -> Any:
    """The claim at `name`, None when absent (what conditions compare)."""
    value = claim_value(claims, name)
    return None if value is MISSING else value


def claim_rule_holds(rule: ClaimRule, claims: dict[str, Any]) -> bool:
    """Whether one claim rule holds (equals typed, one_of, contains, prefix, matches, ...).

    Indeterminate (a value too long to match a pattern) propagates: the caller refuses."""
    return compare(present_claim(claims, rule.claim), rule)


def verified_email(principal: Principal) -> str | None:
    """The principal's e-mail in lower case, unless the provider says it is unverified."""
    # Some providers send the flag as a string: "false" is as unverified as False.
    verified = principal.claims.get("email_verified")
    if verified is False or str(verified).lower() == "false" or principal.email is None:
        return None
    return principal.email.strip().lower()


def email_domain(email: str) -> str:
    return email.rsplit("@", 1)[-1] if "@" in email else ""


def _check_scopes(policy: Policy, principal: Principal) -> Decision | None:
    missing = [s for s in policy.scopes_all if s not in principal.scopes]
    if missing:
        return deny(f"missing scope {' '.join(missing)}", missing_scope=" ".join(missing))
    if policy.scopes_any and not set(policy.scopes_any) & principal.scopes:
        wanted = " ".join(policy.scopes_any)
        return deny(f"needs one of the scopes {wanted}", missing_scope=wanted)
    return None


def decision_claims(principal: Principal) -> dict[str, Any]:
    return {**principal.claims, "iss": principal.issuer}  # introspection may omit iss


def _check_claims(policy: Policy, principal: Principal) -> Decision | None:
    claims = decision_claims(principal)
    for rule in policy.claims:
        if not claim_rule_holds(rule, claims):
            return deny(f"{describe(rule)} does not hold")
    if policy.groups and not set(policy.groups) & principal.groups:
        return deny("not in any of the route's groups")
    return None


def _check_identity(policy: Policy, principal: Principal) -> Decision | None:
    email = verified_email(principal)
    if policy.emails and (email is None or email not in {e.lower() for e in policy.emails}):
        return deny("e-mail address not allowed")
    domains = {d.lower().lstrip("@") for d in policy.email_domains}
    if domains and (email is None or email_domain(email) not in domains):
        return deny("e-mail domain not allowed")
    bearer = principal.kind == "bearer"  # client_ids restrict bearer callers only
    if policy.client_ids and bearer and principal.client_id not in policy.client_ids:
        return deny("client not allowed")
    return None


CHECKS: tuple[Callable[[Policy, Principal], Decision | None], ...] = (
    _check_scopes,
    _check_claims,
    _check_identity,
)


def method_allowed(methods: list[str] | None, method: str) -> bool:
    """None allows every method; HEAD is allowed wherever GET is."""
    if methods is None:
        return True
    method = method.upper()
    return method in methods or (method == "HEAD" and "GET" in methods)


def override_methods(query_string: str) -> list[str]:
    """Methods a `_method` query parameter asks for (Express method-override, Laravel,
    Rails, Symfony turn a POST into that method): each must pass `policy.methods` too.

    The name counts in every spelling a framework reads as `_method`: percent-encoded
    (`%5Fmethod`), PHP's (`.method`, `[method`, cut at a NUL), nested (`_method[]`),
    qs's bracketed (`[_method]`), after a stray `?`, in any case; pairs split on `&` and
    `;`."""
    if "method" not in query_string.lower() and "%" not in query_string:
        return []
    return [
        value.strip().upper()
        for name, value in query_pairs(query_string)
        if "_method" in framework_names(name)
    ]


@dataclass(frozen=True, slots=True)
class RequestFacts:
    """The request as a decision sees it, with every reading an upstream may act on."""

    methods: tuple[str, ...]  # the method, then any a `_method` parameter asks for
    paths: tuple[str, ...] | None = None  # canonical decoded path below the prefix, all readings
    client_ip: str | None = None  # None: unknown (conditions on it refuse)


def deny_rule_reason(rule: Condition) -> str:
    return rule.reason or f"deny rule matched: {describe(rule)}"


def _conditions(policy: Policy, facts: Facts) -> Decision | None:
    """The combinators: deny rules are checked first by the caller; here all, any, not."""
    for condition in policy.all:
        reason = why_not(condition, facts)
        if reason is not None:
            return deny(reason)
    if policy.any and not any(holds(c, facts) for c in policy.any):
        return deny("none of the `any` conditions holds: " + "; ".join(
            c.reason or describe(c) for c in policy.any))  # fmt: skip
    if policy.not_ is not None and holds(policy.not_, facts):
        return deny(policy.not_.reason or f"{describe(policy.not_)} must not hold")
    return None


def _decide_reading(policy: Policy, principal: Principal, facts: Facts) -> Decision:
    try:
        for rule in policy.deny:  # deny wins: checked before anything may allow
            if holds(rule, facts):
                return deny(deny_rule_reason(rule))
        for check in CHECKS:
            refusal = check(policy, principal)
            if refusal is not None:
                return refusal
        return _conditions(policy, facts) or ALLOW
    except Indeterminate as exc:
        return deny(f"cannot decide, so refused: {exc}")


def decide(policy: Policy, principal: Principal, request: str | RequestFacts) -> Decision:
    """Apply every requirement of the policy to every reading of the request (a method
    name alone: no path or address known); the first refusal decides."""
    facts = RequestFacts((request,)) if isinstance(request, str) else request
    for method in facts.methods:
        if not method_allowed(policy.methods, method):
            return deny(f"method {method.upper()[:20]} not allowed", status=405)
    claims = decision_claims(principal)

    def claim(name: str) -> Any:
        return present_claim(claims, name)

    for method in facts.methods:
        for path in facts.paths or (None,):
            reading = Facts(principal, claim, method, path, facts.client_ip)
            decision = _decide_reading(policy, principal, reading)
            if not decision.allowed:
                return decision
    return ALLOW


def _conditions_of(policy: Policy) -> list[Condition]:
    """Every condition of the policy, nested ones included."""
    found: list[Condition] = []
    stack = [*policy.all, *policy.any, *policy.deny, *([policy.not_] if policy.not_ else [])]
    while stack:
        condition = stack.pop()
        found.append(condition)
        stack += [*(condition.all or []), *(condition.any or [])]
        stack += [condition.not_] if condition.not_ is not None else []
    return found


def _method_problems(policy: Policy) -> list[str]:
    named = [m for c in _conditions_of(policy) for m in (c.method or [])]
    problems = [f"method: {m!r} in a condition is not an HTTP method name" for m in named
                if not METHOD_TOKEN.fullmatch(m)]  # fmt: skip
    if policy.methods is None:
        return problems
    if not policy.methods:
        return ["methods is an empty list, so no request can pass", *problems]
    return [f"methods: {m!r} is not an HTTP method name" for m in policy.methods
            if not METHOD_TOKEN.fullmatch(m)] + problems  # fmt: skip


def _list_problems(policy: Policy) -> list[str]:
    problems: list[str] = []
    for name in ("scopes_all", "scopes_any", "groups", "emails", "email_domains", "client_ids"):
        for value in getattr(policy, name):
            if not value.strip():
                problems.append(f"{name} contains an empty value")
            elif name.startswith("scopes") and " " in value.strip():
                problems.append(f"{name}: {value!r} holds a space; list each scope separately")
    for domain in policy.email_domains:
        if "@" in domain.lstrip("@"):
            problems.append(f"email_domains: {domain!r} is an address, not a domain")
    return problems


def _email_problems(policy: Policy) -> list[str]:
    domains = {d.lower().lstrip("@") for d in policy.email_domains}
    if not domains:
        return []
    return [
        f"emails: {email} is outside email_domains, so it can never pass"
        for email in policy.emails
        if email_domain(email.lower()) not in domains
    ]


def _pinned_conflict(pinned: Any, rule: ClaimRule) -> bool:
    """True when a claim pinned by `equals` (exact value and type) fails the other rule."""
    try:
        return not compare(pinned, rule)
    except Indeterminate:
        return True  # a value too long to match refuses every request: it never passes


def _claim_rule_problems(policy: Policy) -> list[str]:
    problems = [
        f"claims: {rule.claim} one_of is empty, so no value can pass"
        for rule in policy.claims
        if rule.one_of is not None and not rule.one_of
    ]
    # Only `equals` pins a claim's value: a list claim can meet several one_of / contains.
    pinned = {rule.claim: rule.equals for rule in policy.claims if rule.equals is not None}
    for claim, value in pinned.items():
        if any(r.claim == claim and _pinned_conflict(value, r) for r in policy.claims):
            problems.append(f"claims: the rules on {claim} cannot all hold at once")
    return problems


def policy_problems(policy: Policy) -> list[str]:
    """Self-contradictions and mistakes in a policy, each a plain sentence."""
    return [
        *_method_problems(policy),
        *_list_problems(policy),
        *_email_problems(policy),
        *_claim_rule_problems(policy),
    ]
