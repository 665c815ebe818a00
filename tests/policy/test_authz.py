"""decide() and policy_problems(): pure authorization, checked with tables of cases."""

from __future__ import annotations

from typing import Any, Literal

import pytest

from gateway.config.model import ClaimRule, Policy
from gateway.policy.authz import (
    RequestFacts,
    claim_value,
    decide,
    override_methods,
    policy_problems,
)
from gateway.types import Principal


def person(
    kind: Literal["session", "bearer"] = "session",
    scopes: str = "",
    client: str | None = None,
    url_claims: dict[str, Any] | None = None,
    **claims: Any,
) -> Principal:
    return Principal(
        kind=kind,
        issuer="https://idp",
        subject="u1",
        claims={"sub": "u1", **claims, **(url_claims or {})},
        scopes=frozenset(scopes.split()),
        client_id=client,
    )


ADA = person(
    email="Ada@Example.com", groups=["eng", "admins"], roles=["reader"], tier="gold",
    level=3, staff=True, org={"unit": {"name": "R&D"}, "ids": ["7", "8"]},
    url_claims={"https://example.com/roles": ["editor"]},
)  # fmt: skip
API = person("bearer", "orders:read orders:write", "svc-1", email="ops@corp.example")


CASES: list[tuple[str, dict[str, Any], Principal, str, tuple[bool, int, str | None]]] = [
    # name, policy, principal, method, (allowed, status, missing_scope)
    ("empty policy lets anyone in", {}, ADA, "DELETE", (True, 200, None)),
    ("method listed", {"methods": ["get", "POST"]}, ADA, "post", (True, 200, None)),
    ("method not listed", {"methods": ["GET"]}, ADA, "DELETE", (False, 405, None)),
    ("HEAD rides on GET", {"methods": ["GET"]}, ADA, "HEAD", (True, 200, None)),
    ("HEAD alone is not GET", {"methods": ["HEAD"]}, ADA, "GET", (False, 405, None)),
    ("empty methods list", {"methods": []}, ADA, "GET", (False, 405, None)),
    ("all scopes held", {"scopes_all": ["orders:read", "orders:write"]}, API, "GET",
     (True, 200, None)),
    ("one scope missing", {"scopes_all": ["orders:read", "orders:admin"]}, API, "GET",
     (False, 403, "orders:admin")),
    ("any scope held", {"scopes_any": ["x", "orders:read"]}, API, "GET", (True, 200, None)),
    ("no scope of any", {"scopes_any": ["x", "y"]}, API, "GET", (False, 403, "x y")),
    ("two scopes missing", {"scopes_all": ["orders:read", "a", "b"]}, API, "GET",
     (False, 403, "a b")),
    ("method checked before scope", {"methods": ["GET"], "scopes_all": ["z"]}, API, "PUT",
     (False, 405, None)),
    ("claim equals string", {"claims": [{"claim": "tier", "equals": "gold"}]}, ADA, "GET",
     (True, 200, None)),
    ("claim equals other", {"claims": [{"claim": "tier", "equals": "silver"}]}, ADA, "GET",
     (False, 403, None)),
    ("claim equals int", {"claims": [{"claim": "level", "equals": 3}]}, ADA, "GET",
     (True, 200, None)),
    ("int is not string", {"claims": [{"claim": "level", "equals": "3"}]}, ADA, "GET",
     (False, 403, None)),
    ("claim equals bool", {"claims": [{"claim": "staff", "equals": True}]}, ADA, "GET",
     (True, 200, None)),
    ("True is not 1", {"claims": [{"claim": "level", "equals": True}]}, ADA, "GET",
     (False, 403, None)),
    ("missing claim", {"claims": [{"claim": "nope", "equals": "x"}]}, ADA, "GET",
     (False, 403, None)),
    ("one_of string", {"claims": [{"claim": "tier", "one_of": ["gold", "platinum"]}]}, ADA, "GET",
     (True, 200, None)),
    ("one_of list claim", {"claims": [{"claim": "roles", "one_of": ["admin", "reader"]}]}, ADA,
     "GET", (True, 200, None)),
    ("one_of miss", {"claims": [{"claim": "roles", "one_of": ["admin"]}]}, ADA, "GET",
     (False, 403, None)),
    ("contains in list", {"claims": [{"claim": "roles", "contains": "reader"}]}, ADA, "GET",
     (True, 200, None)),
    ("contains in string", {"claims": [{"claim": "scope", "contains": "b"}]},
     person(scope="a b c"), "GET", (True, 200, None)),
    ("contains not a substring", {"claims": [{"claim": "tier", "contains": "gol"}]}, ADA, "GET",
     (False, 403, None)),
    ("dotted name", {"claims": [{"claim": "org.unit.name", "equals": "R&D"}]}, ADA, "GET",
     (True, 200, None)),
    ("dotted list", {"claims": [{"claim": "org.ids", "contains": "8"}]}, ADA, "GET",
     (True, 200, None)),
    ("dotted miss", {"claims": [{"claim": "org.unit.size", "equals": 1}]}, ADA, "GET",
     (False, 403, None)),
    ("URL claim name", {"claims": [{"claim": "https://example.com/roles", "contains": "editor"}]},
     ADA, "GET", (True, 200, None)),
    ("every rule must hold", {"claims": [{"claim": "tier", "equals": "gold"},
                                         {"claim": "roles", "contains": "admin"}]}, ADA, "GET",
     (False, 403, None)),
    ("group member", {"groups": ["ops", "admins"]}, ADA, "GET", (True, 200, None)),
    ("not a group member", {"groups": ["ops"]}, ADA, "GET", (False, 403, None)),
    ("comma-string groups", {"groups": ["b"]}, person(groups="a, b"), "GET", (True, 200, None)),
    ("email any case", {"emails": ["ada@EXAMPLE.com"]}, ADA, "GET", (True, 200, None)),
    ("email not listed", {"emails": ["bob@example.com"]}, ADA, "GET", (False, 403, None)),
    ("unverified email", {"emails": ["ada@example.com"]},
     person(email="ada@example.com", email_verified=False), "GET", (False, 403, None)),
    ("no email", {"email_domains": ["example.com"]}, person(), "GET", (False, 403, None)),
    ("email domain", {"email_domains": ["EXAMPLE.com"]}, ADA, "GET", (True, 200, None)),
    ("domain with @", {"email_domains": ["@example.com"]}, ADA, "GET", (True, 200, None)),
    ("subdomain is another domain", {"email_domains": ["example.com"]},
     person(email="a@evil.example.com"), "GET", (False, 403, None)),
    ("suffix trick", {"email_domains": ["example.com"]}, person(email="a@badexample.com"), "GET",
     (False, 403, None)),
    ("client allowed", {"client_ids": ["svc-1"]}, API, "GET", (True, 200, None)),
    ("client not allowed", {"client_ids": ["svc-2"]}, API, "GET", (False, 403, None)),
    ("one_of rules met by one list claim", {"claims": [{"claim": "r", "one_of": ["a"]},
                                                       {"claim": "r", "one_of": ["b", "c"]}]},
     person(r=["a", "b"]), "GET", (True, 200, None)),
    ("iss is the principal's issuer", {"claims": [{"claim": "iss", "equals": "https://idp"}]},
     person(), "GET", (True, 200, None)),
    ("a claimed iss cannot override it", {"claims": [{"claim": "iss", "equals": "https://x"}]},
     person(iss="https://x"), "GET", (False, 403, None)),
    ("client_ids ignore sessions", {"client_ids": ["svc-2"]}, ADA, "GET", (True, 200, None)),
    ('email_verified "false"', {"emails": ["ada@example.com"]},
     person(email="ada@example.com", email_verified="false"), "GET", (False, 403, None)),
    ('email_verified "FALSE"', {"email_domains": ["example.com"]},
     person(email="ada@example.com", email_verified="FALSE"), "GET", (False, 403, None)),
    ('email_verified "true"', {"emails": ["ada@example.com"]},
     person(email="ada@example.com", email_verified="true"), "GET", (True, 200, None)),
    ("email_verified true", {"email_domains": ["example.com"]},
     person(email=" Ada@Example.COM ", email_verified=True), "GET", (True, 200, None)),
    ("last @ names the domain", {"email_domains": ["example.com"]},
     person(email='"a@evil.test"@example.com'), "GET", (True, 200, None)),
    ("an address without @ has no domain", {"email_domains": ["example.com"]},
     person(email="example.com"), "GET", (False, 403, None)),
    ("long method cut in the reason", {"methods": ["GET"]}, ADA, "m" * 30, (False, 405, None)),
    ("groups and claims both hold", {"groups": ["eng"], "claims": [{"claim": "tier",
     "equals": "gold"}]}, ADA, "GET", (True, 200, None)),
]  # fmt: skip

# The reason each refusal gives (logged, and shown to an operator running `gateway check`).
REASONS = {
    "method not listed": "method DELETE not allowed",
    "HEAD alone is not GET": "method GET not allowed",
    "empty methods list": "method GET not allowed",
    "one scope missing": "missing scope orders:admin",
    "no scope of any": "needs one of the scopes x y",
    "two scopes missing": "missing scope a b",
    "method checked before scope": "method PUT not allowed",
    "claim equals other": "claim tier equals 'silver' does not hold",
    "int is not string": "claim level equals '3' does not hold",
    "True is not 1": "claim level equals True does not hold",
    "missing claim": "claim nope equals 'x' does not hold",
    "one_of miss": "claim roles is one of 'admin' does not hold",
    "contains not a substring": "claim tier contains 'gol' does not hold",
    "dotted miss": "claim org.unit.size equals 1 does not hold",
    "every rule must hold": "claim roles contains 'admin' does not hold",
    "not a group member": "not in any of the route's groups",
    "email not listed": "e-mail address not allowed",
    "unverified email": "e-mail address not allowed",
    "no email": "e-mail domain not allowed",
    "subdomain is another domain": "e-mail domain not allowed",
    "suffix trick": "e-mail domain not allowed",
    "client not allowed": "client not allowed",
    "a claimed iss cannot override it": "claim iss equals 'https://x' does not hold",
    'email_verified "false"': "e-mail address not allowed",
    'email_verified "FALSE"': "e-mail domain not allowed",
    "an address without @ has no domain": "e-mail domain not allowed",
    "long method cut in the reason": f"method {'M' * 20} not allowed",
}


@pytest.mark.parametrize(
    ("case", "policy", "principal", "method", "expected"),
    CASES,
    ids=[case[0] for case in CASES],
)
def test_decide(
    case: str,
    policy: dict[str, Any],
    principal: Principal,
    method: str,
    expected: tuple[bool, int, str | None],
) -> None:
    """Each requirement alone, and their order: method (405) before scopes and claims (403);
    every refusal names the requirement that failed."""
    decision = decide(Policy(**policy), principal, method)
    assert (decision.allowed, decision.status, decision.missing_scope) == expected
    assert REASONS.get(case, "allowed") == decision.reason


def test_claim_value_prefers_full_names() -> None:
    """A claim literally named with dots wins over the nested path."""
    claims = {"a.b": 1, "a": {"b": 2}}
    assert claim_value(claims, "a.b") == 1
    assert claim_value({"a": {"b": 2}}, "a.b") == 2


def rule(claim: str, **given: Any) -> ClaimRule:
    return ClaimRule(claim=claim, **given)


PROBLEMS: list[tuple[str, Policy, list[str]]] = [
    ("sound policy", Policy(methods=["GET"], scopes_all=["a"], emails=["x@corp.io"],
                            email_domains=["corp.io"]), []),
    ("empty methods", Policy(methods=[]), ["no request can pass"]),
    ("junk method", Policy(methods=["GET POST"]), ["not an HTTP method"]),
    ("equals twice", Policy(claims=[rule("tier", equals="a"), rule("tier", equals="b")]),
     ["cannot all hold"]),
    ("equals outside one_of", Policy(claims=[rule("tier", equals="a"), rule("tier", one_of=["b"])]),
     ["cannot all hold"]),
    ("equals inside one_of", Policy(claims=[rule("tier", equals="a"), rule("tier", one_of=["a"])]),
     []),
    ("one_of rules a list claim can meet", Policy(claims=[rule("r", one_of=["a"]),
                                                          rule("r", one_of=["b", "c"])]), []),
    ("equals without the contained item", Policy(claims=[rule("t", equals="gold"),
                                                         rule("t", contains="x")]),
     ["cannot all hold"]),
    ("equals with the contained item", Policy(claims=[rule("t", equals="a b"),
                                                      rule("t", contains="b")]), []),
    ("int equals never one_of", Policy(claims=[rule("n", equals=3), rule("n", one_of=["3"])]),
     ["cannot all hold"]),
    ("typed equals", Policy(claims=[rule("x", equals=True), rule("x", one_of=["True"])]),
     ["cannot all hold"]),
    ("empty one_of", Policy(claims=[rule("r", one_of=[])]), ["one_of is empty"]),
    ("equals a value too long to match", Policy(claims=[rule("t", equals="a" * 1025),
                                                        rule("t", matches="a*")]),
     ["cannot all hold"]),
    ("equals a value short enough to match", Policy(claims=[rule("t", equals="a" * 1024),
                                                            rule("t", matches="a*")]), []),
    ("other claims independent", Policy(claims=[rule("a", equals="1"), rule("b", equals="2")]), []),
    ("email outside domains", Policy(emails=["x@other.io"], email_domains=["corp.io"]),
     ["outside email_domains"]),
    ("address as domain", Policy(email_domains=["bob@corp.io"]), ["is an address"]),
    ("capital address as domain", Policy(email_domains=["X@corp.io"]), ["is an address"]),
    ("domain written with @", Policy(emails=["x@corp.io"], email_domains=["@corp.io"]), []),
    ("scope with space", Policy(scopes_any=["a b"]), ["holds a space"]),
    ("empty group", Policy(groups=[""]), ["empty value"]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("policy", "expected"), [p[1:] for p in PROBLEMS], ids=[p[0] for p in PROBLEMS]
)
def test_policy_problems(policy: Policy, expected: list[str]) -> None:
    """Self-contradictions are each reported once, as a sentence."""
    problems = policy_problems(policy)
    assert len(problems) == len(expected), problems
    for fragment, problem in zip(expected, problems, strict=True):
        assert fragment in problem


def test_an_empty_methods_list_is_reported_in_full() -> None:
    """`gateway check` tells the operator exactly why the route is unreachable."""
    assert ["methods is an empty list, so no request can pass"] == policy_problems(
        Policy(methods=[])
    )


@pytest.mark.parametrize(
    ("query", "methods"),
    [
        ("", []),
        ("a=1", []),
        ("_method=delete", ["DELETE"]),
        ("x=1&_method=put&_method=Patch", ["PUT", "PATCH"]),
        ("_method_x=delete", []),
        ("x_method=delete", []),
        ("method=card", []),
        ("%5Fmethod=delete", ["DELETE"]),  # Express's qs, Rack, PHP decode the name
        ("%5fmethod=put", ["PUT"]),
        ("_%6Dethod=DELETE", ["DELETE"]),
        ("_METHOD=delete", ["DELETE"]),
        (".method=delete", ["DELETE"]),  # PHP: '.', ' ' and an unmatched '[' read as '_'
        ("%2Emethod=delete", ["DELETE"]),
        ("[method=delete", ["DELETE"]),
        ("+_method=delete", ["DELETE"]),  # PHP drops leading spaces
        ("+method=delete", []),
        ("_method[]=delete", ["DELETE"]),  # qs and PHP nest it: _method is ['delete']
        ("_method[=delete", []),  # PHP: _method_
        ("_method[a][b]=delete", ["DELETE"]),
        ("%09_method=delete", []),  # only spaces are dropped
        ("X_method=delete", []),
        ("_method%00=delete", ["DELETE"]),  # PHP cuts a name at a NUL
        ("_method%00x=delete", ["DELETE"]),
        ("?_method=delete", ["DELETE"]),  # `??_method`: PHP's built-in server drops a '?'
        ("[_method]=delete", ["DELETE"]),  # qs: a bracketed key with nothing before it
        ("%5B_method%5D=delete", ["DELETE"]),
        ("[%5Fmethod][0]=delete", ["DELETE"]),
        ("[_method]x=delete", ["DELETE"]),
        ("[x]=delete", []),
        ("]_method=delete", []),
        ("a=1;_method=delete", ["DELETE"]),
        ("_method=%20patch%20", ["PATCH"]),
        ("_method", [""]),  # no value: never an allowed method, so refused where listed
        ("%5Fmethod%3Ddelete", []),  # the name is cut at a literal "=" before decoding
    ],
)
def test_method_overrides_in_the_query_are_found(query: str, methods: list[str]) -> None:
    """Every `_method` a framework would obey is found, upper-cased, so each must pass
    the route's methods too (a GET-only route is not a DELETE through `?_method=delete`)."""
    assert methods == override_methods(query)


def facts(
    method: str = "GET", paths: tuple[str, ...] | None = ("/",), ip: str | None = "192.0.2.7"
) -> RequestFacts:
    return RequestFacts((method,), paths, ip)


# name, policy, principal, request facts, reason ("allowed" when allowed)
LANGUAGE: list[tuple[str, dict[str, Any], Principal, RequestFacts, str]] = [
    ("deny rule with its reason", {"deny": [{"groups": ["eng"], "reason": "eng is out"}]}, ADA,
     facts(), "eng is out"),
    ("deny rule described", {"deny": [{"method": ["DELETE"]}]}, ADA, facts("DELETE"),
     "deny rule matched: method is one of DELETE"),
    ("deny rule not matching", {"deny": [{"method": ["DELETE"]}]}, ADA, facts(), "allowed"),
    ("deny wins over what allows", {"groups": ["eng"], "deny": [{"groups": ["admins"]}]}, ADA,
     facts(), "deny rule matched: in one of the groups admins"),
    ("deny on a path below the route", {"deny": [{"path": {"prefix": "/admin"}}]}, ADA,
     facts(paths=("/docs", "/admin/x")), "deny rule matched: path below the route starts with "
     "'/admin'"),
    ("deny on the client network", {"deny": [{"client_ip": ["192.0.2.0/24"]}]}, ADA, facts(),
     "deny rule matched: client address in 192.0.2.0/24"),
    ("deny on a claim path", {"deny": [{"claim": "org.unit.name", "equals": "R&D"}]}, ADA,
     facts(), "deny rule matched: claim org.unit.name equals 'R&D'"),
    ("deny on a claimed iss uses the issuer", {"deny": [{"claim": "iss", "equals": "https://x"}]},
     person(iss="https://x"), facts(), "allowed"),
    ("all: the failing condition named", {"all": [{"groups": ["eng"]}, {"method": ["PUT"]}]},
     ADA, facts(), "method is one of PUT does not hold"),
    ("all: a reason given", {"all": [{"method": ["PUT"], "reason": "writes only"}]}, ADA,
     facts(), "writes only"),
    ("all: every condition holds", {"all": [{"groups": ["eng"]}, {"method": ["GET"]},
     {"client_ip": ["192.0.2.0/24"]}, {"path": {"equals": "/"}}]}, ADA, facts(), "allowed"),
    ("any: none holds", {"any": [{"method": ["PUT"], "reason": "a writer"},
     {"claim": "tier", "equals": "silver"}]}, ADA, facts(),
     "none of the `any` conditions holds: a writer; claim tier equals 'silver'"),
    ("any: one holds", {"any": [{"method": ["PUT"]}, {"claim": "iss", "equals": "https://idp"}]},
     person(iss="https://x"), facts(), "allowed"),
    ("not: holds, refused", {"not": {"groups": ["admins"]}}, ADA, facts(),
     "in one of the groups admins must not hold"),
    ("not: holds, its reason", {"not": {"groups": ["admins"], "reason": "no admins"}}, ADA,
     facts(), "no admins"),
    ("not: does not hold", {"not": {"path": {"prefix": "/x"}}}, ADA, facts(), "allowed"),
    ("absent claim is absent", {"all": [{"claim": "nope", "present": False}]}, ADA, facts(),
     "allowed"),
    ("absent claim is not present", {"claims": [{"claim": "nope", "present": True}]}, ADA,
     facts(), "claim nope is present does not hold"),
    ("every method of the request", {"deny": [{"method": ["DELETE"]}]}, ADA,
     RequestFacts(("POST", "DELETE"), ("/",), None), "deny rule matched: method is one of DELETE"),
    ("unknown path cannot be decided", {"all": [{"path": {"prefix": "/"}}]}, ADA,
     facts(paths=None), "cannot decide, so refused: the request path is not known here"),
    ("unknown address cannot be decided", {"deny": [{"client_ip": ["10.0.0.0/8"]}]}, ADA,
     facts(ip=None), "cannot decide, so refused: the client address is not known here"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("policy", "principal", "request_facts", "reason"),
    [c[1:] for c in LANGUAGE],
    ids=[c[0] for c in LANGUAGE],
)
def test_decide_conditions(
    policy: dict[str, Any], principal: Principal, request_facts: RequestFacts, reason: str
) -> None:
    """Deny rules first (with their reason or their words), then all / any / not, each on
    the method, every path reading, client address and claims (iss is the issuer's);
    every refusal names the condition that refused it, and unknowns refuse."""
    decision = decide(Policy.model_validate(policy), principal, request_facts)
    assert (reason == "allowed", 200 if reason == "allowed" else 403) == (
        decision.allowed,
        decision.status,
    )
    assert reason == decision.reason


def test_method_names_are_checked_in_every_nested_condition() -> None:
    """A condition's method that is no HTTP method name never matches (a deny rule on it
    would never refuse): `gateway check` finds it however deep, in all, any, not, deny."""
    bad = {"method": ["GET POST"]}
    policy = Policy.model_validate({
        "all": [{"method": ["A B"]}, {"any": [{"groups": ["x"]}, {"not": bad}]}],
        "any": [{"all": [{"method": ["C D"]}]}],
        "deny": [{"not": {"any": [{"method": ["E F"]}]}}],
        "not": {"not": {"method": ["G H"]}},
    })  # fmt: skip
    problems = policy_problems(policy)
    assert sorted(problems) == sorted(
        f"method: {m!r} in a condition is not an HTTP method name"
        for m in ("A B", "GET POST", "C D", "E F", "G H")
    )
    assert [] == policy_problems(Policy.model_validate({"all": [{"method": ["GET", "M-SEARCH"]}]}))
