"""`gateway policy test` without a process: which route an imagined request reaches and
what its policy decides for claims given by hand, as the gateway would decide it."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.config.model import Config
from gateway.errors import UsageError
from gateway.policy.trial import Trial, run_trial

UPSTREAM = "http://127.0.0.1:9"
PROVIDER = {
    "name": "op",
    "issuer": "https://op.example.com",
    "client_id": "gateway",
    "client_secret": "not-a-real-secret",
}


def config(*routes: dict[str, Any]) -> Config:
    return Config.model_validate(
        {"routes": [{"upstream": UPSTREAM, **r} for r in routes], "providers": [PROVIDER]}
    )


ROUTES = config(
    {"name": "home", "path": "/"},
    {
        "name": "reports",
        "path": "/reports",
        "policy": {
            "methods": ["GET", "POST"],
            "groups": ["finance"],
            "deny": [
                {"path": {"prefix": "/archive"}, "reason": "the archive is closed"},
                {"client_ip": ["203.0.113.0/24"], "reason": "blocked network"},
            ],
        },
    },
    {"name": "admin", "host": "admin.example", "path": "/", "policy": {"groups": ["admins"]}},
)
FINANCE = {"groups": ["finance"]}


def decide(claims: dict[str, Any], **trial: Any) -> tuple[str, bool, int, str]:
    trial.setdefault("client_ip", "192.0.2.1")
    route, decision = run_trial(ROUTES, Trial(claims=claims, **trial))
    return route.name, decision.allowed, decision.status, decision.reason


def test_the_route_comes_from_host_and_path() -> None:
    """Host first, then the longest prefix, on the canonical path (query cut off)."""
    assert ("reports", True) == decide(FINANCE, path="/reports/q3?x=1")[:2]
    assert ("reports", True) == decide(FINANCE, path="/%72eports/q3")[:2]
    assert ("home", True) == decide({}, path="/other")[:2]
    assert ("home", True) == decide({}, path="?x=1")[:2]
    assert ("admin", False) == decide(FINANCE, host="Admin.Example", path="/reports")[:2]


def test_the_policy_sees_the_path_below_the_route_and_the_client() -> None:
    """Deny rules see the path below the prefix and the client address given; without
    an address a network rule cannot be decided, so the trial refuses as the gateway would."""
    assert ("reports", False, 403, "the archive is closed") == decide(
        FINANCE, path="/reports/archive/2019"
    )
    assert ("reports", False, 403, "blocked network") == decide(
        FINANCE, path="/reports", client_ip="203.0.113.9"
    )
    assert ("reports", True) == decide(FINANCE, path="/reports", client_ip="192.0.2.1")[:2]
    assert (
        "reports",
        False,
        403,
        "cannot decide, so refused: the client address is not known here",
    ) == decide(FINANCE, path="/reports", client_ip=None)


def test_methods_and_method_overrides_are_decided() -> None:
    """The method (any case) and a `_method` override in the query must both pass."""
    assert ("reports", True) == decide(FINANCE, path="/reports", method="post")[:2]
    assert ("reports", False, 405) == decide(FINANCE, path="/reports", method="PUT")[:3]
    assert ("reports", False, 405) == decide(
        FINANCE, path="/reports?_method=delete", method="POST"
    )[:3]


def test_claims_scopes_and_client_id_make_the_caller() -> None:
    """The caller's subject, issuer, scopes and client id come from the trial or its
    claims; scopes given on the trial win over the `scope` claim."""
    table = config(
        {"name": "api", "path": "/", "auth": "bearer",
         "policy": {"scopes_all": ["read"], "client_ids": ["cli"],
                    "claims": [{"claim": "sub", "equals": "policy-test"}]}},
    )  # fmt: skip
    bearer = {"kind": "bearer", "client_id": "cli"}

    def allowed(claims: dict[str, Any], **trial: Any) -> tuple[bool, str]:
        decision = run_trial(table, Trial(claims=claims, **{**bearer, **trial}))[1]
        return decision.allowed, decision.reason

    assert (True, "allowed") == allowed({"scope": "write read"})
    assert (True, "allowed") == allowed({}, scopes=frozenset({"read"}))
    assert not allowed({"scope": "read"}, scopes=frozenset({"write"}))[0]
    assert not allowed({"scope": "read", "sub": "someone"})[0]
    assert (True, "allowed") == allowed({"scope": "read", "client_id": "cli"}, client_id=None)
    assert not allowed({"scope": "read", "client_id": "web"}, client_id=None)[0]
    assert not allowed({"scope": "read"}, client_id="web")[0]
    assert not allowed({"scope": "read"}, client_id=None)[0]


def test_the_issuer_is_the_iss_claim_or_a_placeholder() -> None:
    """A claim rule on iss sees the claims' issuer, or the placeholder when none."""
    table = config(
        {"name": "api", "path": "/", "policy": {"claims": [
            {"claim": "iss", "equals": "https://idp.example"}]}},
    )  # fmt: skip
    assert run_trial(table, Trial(claims={"iss": "https://idp.example"}))[1].allowed
    assert not run_trial(table, Trial(claims={}))[1].allowed


def test_a_route_can_be_named_or_numbered() -> None:
    """`--route` picks a route by name or index whatever the host and path say."""
    assert ("admin", False) == decide(FINANCE, route="admin", path="/reports")[:2]
    assert ("reports", True) == decide(FINANCE, route="1", path="/reports/x")[:2]
    assert ("home", True) == decide(FINANCE, route="0", path="/reports")[:2]


def test_unknown_routes_are_usage_errors() -> None:
    """No route for the request, or no route of that name, says so (and lists names)."""
    with pytest.raises(
        UsageError, match=r"^no route named 'nope' \(known: home, reports, admin\)$"
    ):
        decide({}, route="nope")
    only_api = config({"name": "api", "path": "/api"})
    with pytest.raises(UsageError, match=r"^no route for host 'x.example' and path '/web\?q'$"):
        run_trial(only_api, Trial(claims={}, host="x.example", path="/web?q"))


def test_without_iss_or_scope_the_caller_has_a_placeholder_issuer_and_no_scope() -> None:
    """Claims without iss give the placeholder issuer https://policy-test.invalid;
    without a scope claim (or --scopes) the caller holds no scope at all, not one named
    after a default."""
    placeholder = config(
        {"name": "api", "path": "/", "policy": {"claims": [
            {"claim": "iss", "equals": "https://policy-test.invalid"}]}},
    )  # fmt: skip
    assert run_trial(placeholder, Trial(claims={}))[1].allowed
    scoped = config({"name": "api", "path": "/", "policy": {"scopes_any": ["None", "XXXX"]}})
    decision = run_trial(scoped, Trial(claims={}))[1]
    assert (False, "needs one of the scopes None XXXX") == (decision.allowed, decision.reason)
