"""Rego route policies evaluated for real by regopy (the optional extra `rego`)."""

from __future__ import annotations

import datetime
import io
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gateway.errors import ConfigError
from gateway.policy import rego
from gateway.policy.ext_authz import decision_request
from gateway.policy.rego import RegoFailed, RegoPolicy
from gateway.types import Principal

regopy = pytest.importorskip("regopy", reason="the optional extra 'rego' is not installed")

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


def write_policy(tmp_path: Path, rules: str) -> str:
    path = tmp_path / "policy.rego"
    path.write_text("package gateway\nimport rego.v1\n" + rules, encoding="utf-8")
    return str(path)


def test_results_are_read_as_the_contract_says(tmp_path: Path) -> None:
    """true allows, naming the query; an object decides by its boolean
    `allow` with its reason (cut at 200 characters, UTF-8 kept); a string, an object
    without a boolean allow, or several results refuse, saying why."""
    file = write_policy(
        tmp_path,
        'yes := true\nno := false\ntext := "allow"\n'
        'long := {"allow": true, "reason": concat("", ["é" | some _ in numbers.range(1, 250)])}\n'
        'plain := {"allow": false}\nnot_bool := {"allow": "true", "reason": "x"}\n'
        "xs := [true, true]\nmixed := [false, true]\n",
    )
    data = request(["users"], "/")

    def decide(query: str) -> tuple[bool, str]:
        return RegoPolicy(file, query, "routes[0].rego").decide(data)

    assert (True, "rego: data.gateway.yes is true") == decide("data.gateway.yes")
    # regopy gives a false result as undefined: refused either way
    assert not decide("data.gateway.no")[0]
    assert (True, "rego: " + "é" * 200) == decide("data.gateway.long")
    assert (False, "rego: allow is False") == decide("data.gateway.plain")
    neither = "is neither a boolean nor an object with allow"
    assert (False, f"rego: data.gateway.text {neither}") == decide("data.gateway.text")
    assert (False, f"rego: data.gateway.not_bool {neither}") == decide("data.gateway.not_bool")
    # Several values, one of them false, are no decision (an outside attack found them
    # allowed when any was true).
    several = "does not give exactly one value"
    assert (False, f"rego: data.gateway.mixed[_] {several}") == decide("data.gateway.mixed[_]")
    assert (False, f"rego: data.gateway.xs[_] {several}") == decide("data.gateway.xs[_]")


def test_a_query_that_binds_only_with_some_input_refuses_those_requests(tmp_path: Path) -> None:
    """`x := input.method` is undefined at start-up (empty input), so it starts; a request
    it binds for is refused, not allowed."""
    file = write_policy(tmp_path, "allow := true\n")
    policy = RegoPolicy(file, "x := input.method", "routes[0].rego")
    assert (False, "rego: x := input.method does not give exactly one value") == policy.decide(
        request(["users"], "/")
    )


@pytest.mark.parametrize("text", ["not json", "42", '"allow"'])
def test_an_answer_that_is_not_a_result_document_refuses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    """Whatever regopy printed, only a result document can allow (a stand-in for regopy's
    output: the real one is always a document, a list of them, or `undefined`)."""
    policy = RegoPolicy(write_policy(tmp_path, "allow := true\n"), "data.gateway.allow", "r")
    monkeypatch.setattr(policy, "_evaluate", lambda data: text)
    assert (False, "rego: unreadable result") == policy.decide(request(["users"], "/"))


def test_a_query_that_assigns_is_a_config_error(tmp_path: Path) -> None:
    """`x := false` succeeds by binding x, which once read as allowed: it stops start-up."""
    file = write_policy(tmp_path, "allow := false\n")
    for query in ("x := false", "x := data.gateway.allow", f"x := {'1 + ' * 60}1"):
        with pytest.raises(ConfigError) as caught:
            RegoPolicy(file, query, "routes[0].rego")
        assert [
            f"routes[0].rego.query: {query[:200]} assigns variables; "
            "query a rule instead (e.g. data.gateway.allow)"
        ] == caught.value.problems


def test_input_values_json_cannot_hold_are_sent_as_text(tmp_path: Path) -> None:
    """A decision input holding a value JSON has no type for still reaches the policy
    (as its text) instead of failing the request."""
    file = write_policy(tmp_path, 'allow if input.when == "2026-01-01"\n')
    policy = RegoPolicy(file, "data.gateway.allow", "routes[0].rego")
    assert policy.decide({"when": datetime.date(2026, 1, 1)})[0]


def test_a_query_that_cannot_be_evaluated_stops_start_up() -> None:
    """A query that does not parse is a config error at start-up, like a broken file
    (regopy reports it as a result that is not ok, not as an exception: it used to pass
    start-up and refuse every request as an 'unreadable result')."""
    with pytest.raises(
        ConfigError,
        match=r"^routes\[0\]\.rego: Rego policy error: evaluating data\.gateway\[ failed$",
    ):
        RegoPolicy(str(POLICY), "data.gateway[", "routes[0].rego")


def test_rules_in_conflict_refuse_as_an_error(tmp_path: Path) -> None:
    """Rules giving one value two answers: a conflict for every request stops start-up;
    a conflict for one request refuses it as a policy error (500), not an allow."""
    always = write_policy(
        tmp_path, "allow := true if is_object(input)\nallow := false if is_object(input)\n"
    )
    with pytest.raises(ConfigError, match=r"^r: Rego policy error: evaluating data\.gateway"):
        RegoPolicy(always, "data.gateway.allow", "r")
    sometimes = write_policy(
        tmp_path, 'allow := true if input.route == "app"\nallow := false if input.host\n'
    )
    policy = RegoPolicy(sometimes, "data.gateway.allow", "r")
    with pytest.raises(RegoFailed, match=r"^Rego policy error: evaluating data\.gateway\.allow"):
        policy.decide(request(["admins"], "/"))
    assert 500 == RegoFailed.status


def test_parse_errors_are_one_line_and_bounded(tmp_path: Path) -> None:
    """A broken file's error is reported on one line, at most 300 characters of it."""
    broken = tmp_path / "broken.rego"
    broken.write_text("package gateway\n" + "allow if {\n" * 40)
    with pytest.raises(ConfigError) as caught:
        RegoPolicy(str(broken), "data.gateway", "routes[0].rego")
    prefix = "routes[0].rego: Rego policy error: "
    message = str(caught.value)
    assert message.startswith(prefix + "(rego-errorseq (error ")
    assert len(prefix) + 300 == len(message)
    assert "\n" not in message
    assert "  " not in message


def test_without_regopy_a_rego_route_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the optional package a Rego route cannot start, and says what to install."""
    monkeypatch.setattr(rego, "regopy", None)
    monkeypatch.setitem(sys.modules, "regopy", None)  # the import fails as if not installed
    with pytest.raises(ConfigError) as caught:
        RegoPolicy(str(POLICY), "data.gateway", "routes[2].rego")
    assert [
        "routes[2].rego: Rego policies need the optional 'regopy' package "
        "(pip install 'oidc-gateway[rego]')"
    ] == caught.value.problems


def test_an_error_raised_while_evaluating_refuses_naming_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Should regopy raise while evaluating a request, the request is refused as a
    policy error (500) that carries regopy's words on one line."""
    policy = RegoPolicy(str(POLICY), "data.gateway", "routes[0].rego")

    def broken(query: str) -> None:
        raise regopy.RegoError("evaluation\n   stopped")

    monkeypatch.setattr(policy._interpreter, "query", broken)
    with pytest.raises(RegoFailed, match=r"^Rego policy error: evaluation stopped$"):
        policy.decide(request(["admins"], "/"))


def test_a_long_failing_query_is_cut_in_the_message() -> None:
    """The error names at most 200 characters of a query that cannot be evaluated."""
    query = "data.gateway." + "x" * 250 + "["
    with pytest.raises(ConfigError) as caught:
        RegoPolicy(str(POLICY), query, "r")
    assert [f"r: Rego policy error: evaluating {query[:200]} failed"] == caught.value.problems


def test_the_file_is_read_as_utf8_whatever_the_locale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reason with non-ASCII letters reads the same under a Latin-1 locale (files are
    read as UTF-8, never in the locale's encoding)."""
    file = write_policy(tmp_path, 'gateway := {"allow": false, "reason": "accès refusé"}\n')
    # what Python picks for a file opened without an encoding on a Latin-1 system
    monkeypatch.setattr(io, "text_encoding", lambda encoding, stacklevel=2: encoding or "latin-1")
    policy = RegoPolicy(file, "data.gateway.gateway", "r")
    assert (False, "rego: accès refusé") == policy.decide(request([], "/"))
