"""Rego route policies evaluated for real by regopy (the optional extra `rego`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gateway.errors import ConfigError
from gateway.policy.ext_authz import decision_request
from gateway.policy.rego import RegoPolicy
from gateway.types import Principal

pytest.importorskip("regopy", reason="the optional extra 'rego' is not installed")

POLICY = Path(__file__).parent / "rego" / "gateway.rego"


def request(groups: list[str], path: str) -> dict[str, Any]:
    who = Principal("session", "https://idp", "u1", {"sub": "u1", "groups": groups})
    return decision_request("app", "GET", path, "app.example", "192.0.2.1", who)


@pytest.mark.parametrize(
    ("groups", "path", "allowed", "reason"),
    [
        (["admins"], "/reports", True, "rego: allow is True"),
        (["users", "admins"], "/", True, "rego: allow is True"),
        (["users"], "/reports", False, "rego: admins only"),
        ([], "/reports", False, "rego: admins only"),
        (["admins"], "/private/x", False, "rego: private paths are closed"),
        (["users"], "/private", False, "rego: private paths are closed"),
    ],
)
def test_rego_allows_by_group_and_denies_by_path(
    groups: list[str], path: str, allowed: bool, reason: str
) -> None:
    """The Rego file decides: admins pass, /private is closed to everyone, with reasons."""
    policy = RegoPolicy(str(POLICY), "data.gateway", "routes[0].rego")
    assert (allowed, reason) == policy.decide(request(groups, path))


def test_boolean_and_undefined_queries() -> None:
    """A boolean query decides directly; an undefined one refuses."""
    assert RegoPolicy(str(POLICY), "data.gateway.allow", "r").decide(request(["admins"], "/"))[0]
    allowed, reason = RegoPolicy(str(POLICY), "data.gateway.nothing", "r").decide(
        request(["admins"], "/")
    )
    assert (False, "rego: data.gateway.nothing is undefined for this request") == (
        allowed,
        reason,
    )


def test_broken_or_missing_rego_is_a_config_error(tmp_path: Path) -> None:
    """A file that does not parse, or does not exist, stops start-up with the key path;
    `gateway check` reports it too."""
    broken = tmp_path / "broken.rego"
    broken.write_text("package gateway\nallow if {\n")
    with pytest.raises(ConfigError, match=r"routes\[0\].rego: Rego policy error"):
        RegoPolicy(str(broken), "data.gateway", "routes[0].rego")
    with pytest.raises(ConfigError, match=r"routes\[0\].rego.file: cannot read"):
        RegoPolicy(str(tmp_path / "nope.rego"), "data.gateway", "routes[0].rego")
    config = tmp_path / "gateway.yaml"
    config.write_text(
        "routes:\n  - path: /\n    upstream: http://127.0.0.1:9\n    auth: bearer\n"
        f"    rego: {{file: {broken}}}\n"
        "bearer:\n  issuers:\n    - issuer: https://idp.example.com\n      audiences: [api]\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "check", "--offline", "-c", str(config)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert 1 == result.returncode
    assert "routes[0].rego: Rego policy error" in result.stdout
