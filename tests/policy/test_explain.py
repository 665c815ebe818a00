"""A route's policy in plain words (`gateway check --explain`): every step it applies,
in the order it applies them, so what a reader sees is what the gateway enforces."""

from __future__ import annotations

from typing import Any

from gateway.config.model import Policy, Route
from gateway.policy.explain import explain_policy, explain_route


def route(**spec: Any) -> Route:
    return Route.model_validate({"path": "/", "upstream": "http://127.0.0.1:9", **spec})


FULL_POLICY = {
    "methods": ["get", "POST"],
    "deny": [
        {"path": {"prefix": "/archive"}, "reason": "the archive is closed"},
        {"method": ["DELETE"]},
    ],
    "scopes_all": ["read", "write"],
    "scopes_any": ["a", "b"],
    "claims": [{"claim": "org", "equals": "rd"}, {"claim": "level", "at_least": 2}],
    "groups": ["eng", "ops"],
    "emails": ["ada@corp.example", "bob@corp.example"],
    "email_domains": ["corp.example", "lab.example"],
    "client_ids": ["cli", "web"],
    "all": [{"groups": ["x"]}, {"client_ip": ["10.0.0.0/8"]}],
    "any": [{"method": ["GET"]}, {"path": {"equals": "/a"}}],
    "not": {"claim": "blocked", "present": True},
}


def test_every_policy_step_is_explained_in_order() -> None:
    """Methods, deny rules (with their reasons), scopes, claims, groups, e-mails,
    domains, client ids, all / any / not: one line each, in decision order."""
    assert [
        "405 unless the method is one of GET, POST",
        "refuse when path below the route starts with '/archive' (the archive is closed)",
        "refuse when method is one of DELETE",
        "require every scope of read, write",
        "require one scope of a, b",
        "require claim org equals 'rd'",
        "require claim level is a number >= 2",
        "require one of the groups eng, ops",
        "require a verified e-mail of ada@corp.example, bob@corp.example",
        "require a verified e-mail in corp.example, lab.example",
        "bearer callers: require client id cli, web",
        "require in one of the groups x",
        "require client address in 10.0.0.0/8",
        "require any of: method is one of GET; path below the route equals '/a'",
        "refuse when claim blocked is present",
    ] == explain_policy(Policy.model_validate(FULL_POLICY))


def test_an_empty_policy_allows_every_authenticated_caller() -> None:
    """No requirement at all is said plainly, not left as an empty list."""
    assert ["allow every authenticated caller"] == explain_policy(Policy())
    assert ["405 unless the method is one of GET"] == explain_policy(Policy(methods=["GET"]))


def test_public_routes_say_no_sign_in_and_their_methods() -> None:
    """A public route needs no sign-in; its method limit is still named."""
    assert ["public: no sign-in"] == explain_route(route(auth="public"))
    assert ["public: no sign-in; methods GET, HEAD"] == explain_route(
        route(auth="public", policy={"methods": ["GET", "HEAD"]})
    )


def test_a_route_lists_preflights_step_up_policy_and_then_rego_and_authorizer() -> None:
    """Besides its policy a route names CORS preflights, step-up (level and age), and
    the Rego file and authorizer that must also allow, after the policy."""
    full = route(
        auth="login",
        cors_preflight=True,
        step_up={"acr_values": ["mfa", "hwk"], "max_age": 300},
        policy={"groups": ["eng"]},
        rego={"file": "p.rego", "query": "data.x"},
        authorizer={"url": "https://authz.example/decide"},
    )
    assert [
        "auth login",
        "CORS preflights pass to the upstream without sign-in",
        "step-up: acr one of (or above) mfa, hwk",
        "step-up: signed in at most 300 s ago",
        "require one of the groups eng",
        "then Rego p.rego (data.x) must allow",
        "then the authorizer https://authz.example/decide must allow (fails closed)",
    ] == explain_route(full)
    assert [
        "auth bearer",
        "step-up: signed in at most 0 s ago",
        "allow every authenticated caller",
    ] == (explain_route(route(auth="bearer", step_up={"max_age": 0})))
    assert [
        "auth login",
        "step-up: acr one of (or above) mfa",
        "allow every authenticated caller",
    ] == (explain_route(route(auth="login", step_up={"acr_values": ["mfa"]})))
