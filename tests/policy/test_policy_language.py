"""The policy language: all / any / not, deny rules that win, comparisons on claim paths,
method, path below the route and client network; table-tested against decide()."""

from __future__ import annotations

import time
from typing import Any

import pytest
from pydantic import ValidationError

from gateway.config.model import Config, Policy
from gateway.config.safe_regex import SUBJECT_LIMIT, UnsafePattern, check_pattern, full_match
from gateway.policy.authz import RequestFacts, decide, policy_problems
from gateway.policy.canonical import canonical_path
from gateway.policy.explain import explain_policy
from gateway.policy.routes import RouteTable
from gateway.types import Principal

ACR = ["pwd", "mfa", "hwk"]


def caller(**claims: Any) -> Principal:
    return Principal(kind="session", issuer="https://idp", subject="u1",
                     claims={"sub": "u1", **claims})  # fmt: skip


ADA = caller(
    groups=["eng", "admins"], acr="mfa", level=3, email="ada@corp.example",
    org={"unit": {"name": "R&D"}, "tags": ["blue", "green"]}, amr=["pwd", "otp"],
)  # fmt: skip
BOB = caller(groups=["sales"], acr="pwd", level=1, email="bob@other.example")


def facts(method: str = "GET", path: str = "/", ip: str | None = "192.0.2.7") -> RequestFacts:
    return RequestFacts((method,), (path,), ip)


def claim(name: str, **comparison: Any) -> dict[str, Any]:
    return {"claim": name, **comparison}


# name, policy, principal, request facts, allowed?
CASES: list[tuple[str, dict[str, Any], Principal, RequestFacts, bool]] = [
    # comparisons on claim paths
    ("equals on a nested path", {"all": [claim("org.unit.name", equals="R&D")]}, ADA, facts(),
     True),
    ("equals typed: 3 is not '3'", {"all": [claim("level", equals="3")]}, ADA, facts(), False),
    ("one_of a list item", {"all": [claim("groups", one_of=["x", "eng"])]}, ADA, facts(), True),
    ("one_of misses", {"all": [claim("groups", one_of=["x"])]}, BOB, facts(), False),
    ("contains", {"all": [claim("org.tags", contains="green")]}, ADA, facts(), True),
    ("contains misses", {"all": [claim("org.tags", contains="red")]}, ADA, facts(), False),
    ("prefix on a string", {"all": [claim("email", prefix="ada@")]}, ADA, facts(), True),
    ("prefix on list items", {"all": [claim("groups", prefix="adm")]}, ADA, facts(), True),
    ("prefix misses", {"all": [claim("email", prefix="ada@")]}, BOB, facts(), False),
    ("matches the whole value", {"all": [claim("email", matches=r"[a-z]+@corp\.example")]},
     ADA, facts(), True),
    ("matches is anchored", {"all": [claim("email", matches="corp")]}, ADA, facts(), False),
    ("matches a list item", {"all": [claim("groups", matches="adm.*")]}, ADA, facts(), True),
    ("numeric at_least holds", {"all": [claim("level", at_least=3)]}, ADA, facts(), True),
    ("numeric at_least fails", {"all": [claim("level", at_least=2)]}, BOB, facts(), False),
    ("at_least needs a number", {"all": [claim("acr", at_least=1)]}, ADA, facts(), False),
    ("acr at_least by order", {"all": [claim("acr", at_least="mfa", order=ACR)]}, ADA, facts(),
     True),
    ("acr below the order", {"all": [claim("acr", at_least="mfa", order=ACR)]}, BOB, facts(),
     False),
    ("acr outside the order", {"all": [claim("acr", at_least="pwd", order=ACR)]},
     caller(acr="unknown"), facts(), False),
    ("present", {"all": [claim("org.unit", present=True)]}, ADA, facts(), True),
    ("absent", {"all": [claim("org.unit", present=False)]}, BOB, facts(), True),
    ("missing claim never compares", {"all": [claim("nope", prefix="")]}, ADA, facts(), False),
    ("old claims key gains prefix", {"claims": [claim("email", prefix="bob@")]}, BOB, facts(),
     True),
    # combinators
    ("all: every one", {"all": [{"groups": ["eng"]}, claim("level", at_least=3)]}, ADA, facts(),
     True),
    ("all: one fails", {"all": [{"groups": ["eng"]}, claim("level", at_least=4)]}, ADA, facts(),
     False),
    ("any: one is enough", {"any": [{"groups": ["x"]}, claim("level", at_least=1)]}, BOB, facts(),
     True),
    ("any: none", {"any": [{"groups": ["x"]}, claim("level", at_least=2)]}, BOB, facts(), False),
    ("not: holds", {"not": {"groups": ["sales"]}}, ADA, facts(), True),
    ("not: refuses", {"not": {"groups": ["sales"]}}, BOB, facts(), False),
    ("nested any inside all inside not", {"not": {"all": [{"groups": ["eng"]}, {"any": [
        claim("acr", equals="pwd"), claim("level", at_least=3)]}]}}, ADA, facts(), False),
    ("old keys AND new keys", {"groups": ["sales"], "any": [{"groups": ["eng"]}]}, ADA, facts(),
     False),
    # deny wins
    ("deny wins over allow", {"groups": ["eng"], "deny": [claim("level", at_least=3)]}, ADA,
     facts(), False),
    ("deny not matching", {"groups": ["eng"], "deny": [claim("level", at_least=4)]}, ADA, facts(),
     True),
    ("deny on a missing claim does not match", {"deny": [claim("banned", equals=True)]}, ADA,
     facts(), True),
    # method, path, network
    ("method in list", {"all": [{"method": ["get"]}]}, ADA, facts("GET"), True),
    ("HEAD counts as GET", {"deny": [{"method": ["GET"]}]}, ADA, facts("HEAD"), False),
    ("method not in list", {"all": [{"method": ["GET"]}]}, ADA, facts("POST"), False),
    ("_method override is judged too", {"deny": [{"method": ["DELETE"]}]}, ADA,
     RequestFacts(("POST", "DELETE"), ("/",), "192.0.2.7"), False),
    ("path prefix", {"deny": [{"path": {"prefix": "/admin"}}]}, ADA, facts(path="/admin/x"), False),
    ("path elsewhere", {"deny": [{"path": {"prefix": "/admin"}}]}, ADA, facts(path="/docs"), True),
    ("path any reading refused", {"deny": [{"path": {"prefix": "/admin"}}]}, ADA,
     RequestFacts(("GET",), ("/Admin", "/admin"), None), False),
    ("path equals", {"all": [{"path": {"equals": "/"}}]}, ADA, facts(path="/"), True),
    ("path one_of", {"all": [{"path": {"one_of": ["/a", "/b"]}}]}, ADA, facts(path="/c"), False),
    ("path matches", {"all": [{"path": {"matches": "/files/[0-9]+"}}]}, ADA,
     facts(path="/files/12"), True),
    ("client in network", {"all": [{"client_ip": ["192.0.2.0/24"]}]}, ADA, facts(), True),
    ("client outside network", {"all": [{"client_ip": ["10.0.0.0/8"]}]}, ADA, facts(), False),
    ("IPv4-mapped IPv6 client", {"deny": [{"client_ip": ["10.0.0.0/8"]}]}, ADA,
     facts(ip="::ffff:10.1.2.3"), False),
    ("IPv6 network", {"all": [{"client_ip": ["2001:db8::/32"]}]}, ADA, facts(ip="2001:db8::1"),
     True),
    # fail closed
    ("unknown path refuses an allow", {"all": [{"path": {"prefix": "/"}}]}, ADA,
     RequestFacts(("GET",)), False),
    ("unknown path refuses a deny too", {"deny": [{"path": {"prefix": "/admin"}}]}, ADA,
     RequestFacts(("GET",)), False),
    ("unknown address refuses", {"deny": [{"client_ip": ["10.0.0.0/8"]}]}, ADA,
     facts(ip=None), False),
    ("garbage address refuses", {"all": [{"client_ip": ["0.0.0.0/0"]}]}, ADA,
     facts(ip="not-an-ip"), False),
    ("oversized value refuses, even in a deny",
     {"deny": [claim("note", matches="x.*")]}, caller(note="a" * (SUBJECT_LIMIT + 1)), facts(),
     False),
    ("empty policy still allows", {}, ADA, RequestFacts(("GET",)), True),
]  # fmt: skip


@pytest.mark.parametrize(
    ("policy", "principal", "request_facts", "allowed"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_decide_language(
    policy: dict[str, Any], principal: Principal, request_facts: RequestFacts, allowed: bool
) -> None:
    """Each comparison, combinator, request condition and fail-closed case decides as named."""
    decision = decide(Policy.model_validate(policy), principal, request_facts)
    assert (decision.allowed, decision.status) == (allowed, 200 if allowed else 403)
    assert decision.reason


def test_deny_reason_names_the_rule_not_the_claims() -> None:
    """A deny names its configured reason; an unnamed rule is described from config only."""
    named = Policy.model_validate({"deny": [{"groups": ["sales"], "reason": "sales is out"}]})
    assert "sales is out" == decide(named, BOB, facts()).reason
    unnamed = Policy.model_validate({"all": [claim("email", prefix="ada@")]})
    reason = decide(unnamed, BOB, facts()).reason
    assert "claim email starts with 'ada@'" in reason
    assert "bob@other.example" not in reason


def test_any_failure_lists_every_alternative() -> None:
    """When no `any` alternative holds, the reason names each of them."""
    policy = Policy.model_validate({"any": [{"groups": ["x"]}, {"method": ["PUT"]}]})
    reason = decide(policy, BOB, facts()).reason
    assert "groups x" in reason
    assert "method is one of PUT" in reason


BAD_CONFIG: list[tuple[str, dict[str, Any], str]] = [
    ("two kinds in one condition", {"all": [{"groups": ["a"], "method": ["GET"]}]}, "exactly one"),
    ("claim without comparison", {"all": [{"claim": "a"}]}, "exactly one"),
    ("comparison without claim", {"all": [{"groups": ["a"], "prefix": "x"}]}, "claim only"),
    ("level name without order", {"all": [claim("acr", at_least="mfa")]}, "needs `order`"),
    ("level not in order", {"all": [claim("acr", at_least="x", order=ACR)]}, "not in order"),
    ("empty any", {"deny": [{"any": []}]}, "at least one"),
    ("bad network", {"all": [{"client_ip": ["10.0.0.300/8"]}]}, "not an IP"),
    ("nested quantifier", {"all": [claim("a", matches="(a+)+$")]}, "bounded number"),
    ("back-reference", {"deny": [{"path": {"matches": r"(a)\1"}}]}, "back-references"),
    ("unknown key", {"any": [{"claim": "a", "equal": "x"}]}, "equal"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("policy", "fragment"), [c[1:] for c in BAD_CONFIG], ids=[c[0] for c in BAD_CONFIG]
)
def test_bad_conditions_are_config_errors(policy: dict[str, Any], fragment: str) -> None:
    """A malformed condition is refused at load time with a plain message."""
    with pytest.raises(ValidationError) as caught:
        Policy.model_validate(policy)
    assert fragment in str(caught.value)


@pytest.mark.parametrize(
    "pattern",
    ["(a+)+$", "(a|aa)*b", "a*a*a*b", ".*.*=.*", "(?=x)x", "(?<!a)b", "(x)?(?(1)a|b)", "x" * 600],
)
def test_patterns_that_could_backtrack_are_refused(pattern: str) -> None:
    """Patterns with catastrophic (exponential or cubic) worst cases are outside the subset."""
    with pytest.raises(UnsafePattern):
        check_pattern(pattern)


def test_allowed_pattern_stays_fast_on_its_worst_subject() -> None:
    """The worst accepted shape (two unbounded repeats) on the longest subject is quick:
    with Python's re unchecked, `(a+)+b` on 30 letters alone takes seconds."""
    check_pattern("[a-z]*[a-z]*b")
    started = time.perf_counter()
    assert not full_match("[a-z]*[a-z]*b", "a" * SUBJECT_LIMIT)
    assert time.perf_counter() - started < 2.0


def test_route_path_conditions_see_the_path_below_the_prefix() -> None:
    """Path conditions test the canonical decoded path below the route's prefix, in every
    reading: an encoded or case-changed spelling of /app/admin is still /admin."""
    config = Config.model_validate({"routes": [{
        "path": "/app", "upstream": "http://127.0.0.1:9", "auth": "bearer",
        "policy": {"deny": [{"path": {"prefix": "/admin"}}]}}]})  # fmt: skip
    route = next(iter(RouteTable(config.routes)))
    for raw in ("/app/admin/x", "/app/%61dmin/x", "/app//admin", "/app/ADMIN/x"):
        paths = route.paths_below(canonical_path(raw))
        decision = decide(route.config.policy, ADA, RequestFacts(("GET",), paths, None))
        assert not decision.allowed, raw
    paths = route.paths_below(canonical_path("/app/docs"))
    assert ("/docs",) == paths
    assert decide(route.config.policy, ADA, RequestFacts(("GET",), paths, None)).allowed


def test_explanation_follows_the_order_of_decide() -> None:
    """`gateway check --explain` lines: methods, deny rules, then requirements."""
    policy = Policy.model_validate({
        "methods": ["GET"], "groups": ["eng"],
        "deny": [{"path": {"prefix": "/admin"}, "reason": "closed"}],
        "any": [claim("acr", at_least="mfa", order=ACR)]})  # fmt: skip
    lines = explain_policy(policy)
    assert lines[0].startswith("405 unless the method is one of GET")
    assert "refuse when path below the route starts with '/admin' (closed)" == lines[1]
    assert "require one of the groups eng" == lines[2]
    assert "at least 'mfa' in the order pwd < mfa < hwk" in lines[3]


def test_method_names_in_conditions_are_checked() -> None:
    """`gateway check` reports a condition's method that is no HTTP method name (it would
    never match, so a deny rule on it would silently never refuse)."""
    policy = Policy.model_validate({"deny": [{"not": {"method": ["GET POST"]}}]})
    assert ["method: 'GET POST' in a condition is not an HTTP method name"] == policy_problems(
        policy
    )
