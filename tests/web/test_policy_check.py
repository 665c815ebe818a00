"""`gateway check` reviews every route's policy: contradictions and unknown providers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.config.model import Config
from gateway.policy.route_checks import route_policy_problems

OP = "https://op.example.com"
API_ISSUER = "https://tokens.example.com"
UPSTREAM = "http://127.0.0.1:9"


def config(*routes: dict[str, Any]) -> dict[str, Any]:
    return {
        "routes": [{"upstream": UPSTREAM, **route} for route in routes],
        "providers": [{"name": "op", "issuer": OP, "client_id": "gw", "client_secret": "x"}],
        "bearer": {"issuers": [{"issuer": API_ISSUER, "audiences": ["urn:api"]}]},
    }


def iss(**given: Any) -> dict[str, Any]:
    return {"claims": [{"claim": "iss", **given}]}


CASES: list[tuple[str, dict[str, Any], list[tuple[str, str]]]] = [
    # name, route, [(level, fragment)] expected in this order
    ("sound bearer policy", {"auth": "bearer", "policy": {"scopes_all": ["api:read"]}}, []),
    ("contradictory claims", {"auth": "bearer", "policy": {"claims": [
        {"claim": "tier", "equals": "gold"}, {"claim": "tier", "equals": "silver"}]}},
     [("error", "cannot all hold")]),
    ("iss of a bearer issuer", {"auth": "bearer", "policy": iss(equals=API_ISSUER)}, []),
    ("iss of nobody", {"auth": "bearer", "policy": iss(equals="https://evil.example")},
     [("error", "unknown provider")]),
    ("login provider's iss on a bearer route", {"auth": "bearer", "policy": iss(equals=OP)},
     [("error", "unknown provider")]),
    ("either iss on login_or_bearer", {"auth": "login_or_bearer",
                                       "policy": iss(one_of=[OP, API_ISSUER])}, []),
    ("one of two unknown", {"auth": "login", "policy": iss(one_of=[OP, API_ISSUER])},
     [("warn", "unknown provider")]),
    ("methods on a public route", {"auth": "public", "policy": {"methods": ["GET"]}}, []),
    ("client_ids on a login route", {"auth": "login", "policy": {"client_ids": ["svc"]}},
     [("warn", "bearer callers only")]),
    ("provider pin on a bearer route", {"auth": "bearer", "provider": "op"},
     [("warn", "pins browser sign-in only")]),
]  # fmt: skip


@pytest.mark.parametrize(("route", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_route_policy_problems(route: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    """Each route's policy is checked against the providers and issuers it can be reached by."""
    problems = route_policy_problems(Config(**config(route)))
    assert [level for level, _ in expected] == [level for level, _, _ in problems], problems
    for (_, fragment), (_, _, message) in zip(expected, problems, strict=True):
        assert fragment in message


def test_every_route_is_reviewed_with_its_key_path_in_full() -> None:
    """Problems of every route come out in order, each with its key path and the whole
    sentence an operator reads."""
    unknown = (
        "claims: iss 'https://gone.example' refers to an unknown provider: no caller of this "
        "route comes from it (see providers, bearer.issuers, provider)"
    )
    settings = config(
        {"path": "/a/", "auth": "bearer", "policy": {"methods": []}},
        {"path": "/b/", "auth": "login", "policy": {"client_ids": ["svc"], "claims": [
            {"claim": "tier", "equals": "gold"}, {"claim": "iss", "equals": "https://gone.example"},
            {"claim": "iss", "equals": "https://gone.example"}]}},
        {"path": "/c/", "auth": "login_or_bearer", "provider": "op",
         "policy": iss(one_of=[OP, API_ISSUER])},
    )  # fmt: skip
    assert [
        ("error", "routes[0].policy", "methods is an empty list, so no request can pass"),
        ("error", "routes[1].policy", unknown),
        ("error", "routes[1].policy", unknown),
        ("warn", "routes[1]", "client_ids restricts bearer callers only; this route has none"),
        ("warn", "routes[2]", "provider 'op' pins browser sign-in only: bearer tokens of every "
                              "bearer issuer pass (add a claims rule on iss to restrict them)"),
    ] == route_policy_problems(Config(**settings))  # fmt: skip


def gateway_check(tmp_path: Path, settings: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(settings))
    return subprocess.run(
        [sys.executable, "-m", "gateway", "check", "-c", str(path), "--offline"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_check_reports_contradictory_policy_and_unknown_provider(tmp_path: Path) -> None:
    """`gateway check --offline` lists both with their key paths and exits 1."""
    settings = config(
        {"path": "/a/", "auth": "bearer", "policy": {"methods": [], "scopes_all": ["x"]}},
        {"path": "/b/", "auth": "login", "policy": iss(equals="https://gone.example")},
        {"path": "/c/", "auth": "bearer", "policy": {"scopes_all": ["api:read"]}},
    )
    result = gateway_check(tmp_path, settings)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("[ERROR")]
    assert len(lines) == 2, result.stdout
    assert "routes[0].policy: methods is an empty list, so no request can pass" in lines[0]
    assert "routes[1].policy: claims: iss 'https://gone.example' refers to an unknown" in lines[1]
    assert "Traceback" not in result.stdout + result.stderr


def test_check_refuses_a_route_pinned_to_an_unknown_provider(tmp_path: Path) -> None:
    """A route naming a provider that does not exist is an error (exit 1), no traceback."""
    result = gateway_check(tmp_path, config({"auth": "login", "provider": "nope"}))
    assert result.returncode == 1
    assert "[ERROR] routes[0].provider: no provider named 'nope'" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_check_passes_a_sound_config(tmp_path: Path) -> None:
    """A config whose policies are sound gives exit 0 and no policy finding."""
    settings = config({"auth": "login_or_bearer", "policy": iss(one_of=[OP, API_ISSUER])})
    result = gateway_check(tmp_path, settings)
    assert result.returncode == 0, result.stdout
    assert "policy" not in result.stdout
