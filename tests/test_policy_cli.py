"""`gateway policy test` and `gateway check --explain`, run as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

CONFIG = """
routes:
  - name: reports
    path: /reports
    upstream: http://127.0.0.1:9
    policy:
      groups: [finance, admins]
      deny:
        - path: {prefix: /archive}
          reason: the archive is closed
      any:
        - claim: acr
          at_least: mfa
          order: [pwd, mfa, hwk]
        - client_ip: [10.0.0.0/8]
providers:
  - name: op
    issuer: https://op.example.com
    client_id: gateway
    client_secret: not-a-real-secret
"""


def gateway(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args], capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def config(tmp_path: Path) -> str:
    path = tmp_path / "gateway.yaml"
    path.write_text(CONFIG)
    return str(path)


def test_policy_test_allows_and_denies_with_the_reason(config: str) -> None:
    """Claims on the command line: allowed exits 0; refused exits 1 naming the reason."""
    allowed = gateway("policy", "test", "-c", config, "--path", "/reports/q3",
                      "--claim", 'groups=["finance"]', "--claim", "acr=hwk")  # fmt: skip
    assert (0, "allow: route reports\n") == (allowed.returncode, allowed.stdout)
    refused = gateway("policy", "test", "-c", config, "--path", "/reports/q3",
                      "--claim", 'groups=["finance"]', "--claim", "acr=pwd",
                      "--client-ip", "192.0.2.1")  # fmt: skip
    assert 1 == refused.returncode
    assert refused.stdout.startswith("deny (403): route reports: none of the `any` conditions")
    closed = gateway("policy", "test", "-c", config, "--path", "/reports/%61rchive/2019",
                     "--claim", 'groups=["admins"]', "--claim", "acr=hwk")  # fmt: skip
    assert (1, "deny (403): route reports: the archive is closed\n") == (
        closed.returncode,
        closed.stdout,
    )


def test_policy_test_reads_claims_from_a_file_and_checks_expectations(
    config: str, tmp_path: Path
) -> None:
    """A claims file and --expect let a team's CI assert both outcomes."""
    claims = tmp_path / "bob.json"
    claims.write_text(json.dumps({"sub": "bob", "groups": ["finance"], "acr": "pwd"}))
    base = ("policy", "test", "-c", config, "--path", "/reports/", "--claims-file", str(claims))
    unknown = gateway(*base, "--expect", "deny")
    assert 0 == unknown.returncode
    assert "the client address is not known here" in unknown.stdout  # fails closed
    assert 1 == gateway(*base, "--client-ip", "192.0.2.1", "--expect", "allow").returncode
    inside = gateway(*base, "--client-ip", "10.2.3.4", "--expect", "allow")
    assert (0, "allow: route reports\n") == (inside.returncode, inside.stdout)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--claims", "{not json"), "--claims: not readable as JSON"),
        (("--claims", "[1]"), "expected a JSON object"),
        (("--claim", "novalue"), "expected NAME=VALUE"),
        (("--route", "nope"), "no route named 'nope' (known: reports)"),
        (("--path", "/reports/../etc"), "path refused"),
    ],
)
def test_policy_test_bad_questions_exit_2_without_traceback(
    config: str, args: tuple[str, ...], message: str
) -> None:
    """A wrong question is answered with one plain line and exit code 2."""
    result = gateway("policy", "test", "-c", config, *args)
    assert 2 == result.returncode
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_check_explain_prints_each_route_policy(config: str) -> None:
    """`gateway check --explain` prints the route's rules in the order they are applied."""
    result = gateway("check", "--offline", "--explain", "-c", config)
    assert 0 == result.returncode, result.stderr
    lines = result.stdout.splitlines()
    start = lines.index("routes[0] reports (*/reports):")
    assert [
        "  - auth login",
        "  - refuse when path below the route starts with '/archive' (the archive is closed)",
        "  - require one of the groups finance, admins",
        "  - require any of: claim acr is at least 'mfa' in the order pwd < mfa < hwk; "
        "client address in 10.0.0.0/8",
    ] == lines[start + 1 : start + 5]
