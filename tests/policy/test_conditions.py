"""Policy conditions one by one: which requests a condition holds for, which it cannot
decide (and so refuses), and the plain words logs and explanations use for it."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.config.model import ClaimRule, Comparison, Condition, PathTest
from gateway.config.safe_regex import SUBJECT_LIMIT
from gateway.policy.authz import claim_value
from gateway.policy.conditions import Facts, Indeterminate, compare, describe, holds, why_not
from gateway.types import Principal


def facts(
    claims: dict[str, Any] | None = None,
    method: str = "GET",
    path: str | None = "/",
    ip: str | None = "192.0.2.7",
) -> Facts:
    who = Principal("session", "https://idp", "u1", {"sub": "u1", **(claims or {})})
    return Facts(who, lambda name: claim_value(who.claims, name), method, path, ip)


def cond(**spec: Any) -> Condition:
    return Condition.model_validate(spec)


# comparison, value (None: absent), holds?
COMPARE: list[tuple[str, dict[str, Any], Any, bool]] = [
    ("present, there", {"present": True}, "x", True),
    ("present, absent", {"present": True}, None, False),
    ("absent, absent", {"present": False}, None, True),
    ("absent, there", {"present": False}, "", False),
    ("absent value fails equals", {"equals": "x"}, None, False),
    ("equals", {"equals": "x"}, "x", True),
    ("equals other", {"equals": "x"}, "y", False),
    ("equals typed: 1 is not true", {"equals": True}, 1, False),
    ("equals typed: '3' is not 3", {"equals": 3}, "3", False),
    ("equals typed int", {"equals": 3}, 3, True),
    ("one_of a string", {"one_of": ["a", "b"]}, "b", True),
    ("one_of a list item", {"one_of": ["a", "b"]}, ["z", "a"], True),
    ("one_of misses", {"one_of": ["a", "b"]}, ["z"], False),
    ("one_of ignores non-strings", {"one_of": ["1"]}, [1], False),
    ("contains a list item", {"contains": "b"}, ["a", "b"], True),
    ("contains misses", {"contains": "c"}, ["a", "b"], False),
    ("contains a space separated word", {"contains": "write"}, "read write", True),
    ("contains a comma separated word", {"contains": "write"}, "read,write", True),
    ("contains a word, not a part", {"contains": "rea"}, "read write", False),
    ("contains a whole non-list value", {"contains": "5"}, 5, False),
    ("prefix", {"prefix": "ad"}, "admin", True),
    ("prefix misses", {"prefix": "ad"}, "user", False),
    ("prefix on a list item", {"prefix": "ad"}, ["user", "admin"], True),
    ("prefix ignores non-strings", {"prefix": "1"}, [12], False),
    ("matches", {"matches": "a[0-9]+"}, "a12", True),
    ("matches is anchored", {"matches": "a[0-9]+"}, "xa12", False),
    ("matches a list item", {"matches": "a[0-9]+"}, ["b", "a1"], True),
    ("at_least number, equal", {"at_least": 3}, 3, True),
    ("at_least number, above", {"at_least": 3}, 4.5, True),
    ("at_least number, below", {"at_least": 3}, 2, False),
    ("at_least true is not a number", {"at_least": 1}, True, False),
    ("at_least a string is not a number", {"at_least": 1}, "5", False),
    ("at_least level, equal", {"at_least": "mfa", "order": ["pwd", "mfa", "hwk"]}, "mfa", True),
    ("at_least level, above", {"at_least": "mfa", "order": ["pwd", "mfa", "hwk"]}, "hwk", True),
    ("at_least level, below", {"at_least": "mfa", "order": ["pwd", "mfa", "hwk"]}, "pwd", False),
    ("at_least level, unknown", {"at_least": "mfa", "order": ["pwd", "mfa"]}, "zzz", False),
    ("at_least level, not a string", {"at_least": "pwd", "order": ["pwd", "mfa"]}, 1, False),
]


@pytest.mark.parametrize(
    ("spec", "value", "expected"), [c[1:] for c in COMPARE], ids=[c[0] for c in COMPARE]
)
def test_compare(spec: dict[str, Any], value: Any, expected: bool) -> None:
    """Each comparison decides as documented: typed equals, list items, words of a
    string, anchored patterns, numbers (never booleans) and ordered levels."""
    assert expected == compare(value, Comparison.model_validate(spec))


def test_a_level_name_without_order_is_no_number() -> None:
    """A level floor without its order (the config refuses it) lets no number pass."""
    assert not compare(5, Comparison.model_construct(at_least="1"))


def test_an_oversized_value_cannot_be_matched() -> None:
    """A claim longer than the pattern limit is undecidable (the decision refuses)."""
    test = Comparison(matches="a*")
    assert compare("a" * SUBJECT_LIMIT, test)
    with pytest.raises(Indeterminate, match=f"^value longer than {SUBJECT_LIMIT} characters$"):
        compare("a" * (SUBJECT_LIMIT + 1), test)


# condition, request facts, holds?
HOLDS: list[tuple[str, dict[str, Any], Facts, bool]] = [
    ("claim", {"claim": "org.unit", "equals": "rd"}, facts({"org": {"unit": "rd"}}), True),
    ("claim absent", {"claim": "org.unit", "equals": "rd"}, facts(), False),
    ("groups", {"groups": ["ops", "eng"]}, facts({"groups": ["eng"]}), True),
    ("groups miss", {"groups": ["ops"]}, facts({"groups": ["eng"]}), False),
    ("method", {"method": ["POST"]}, facts(method="post"), True),
    ("method miss", {"method": ["POST"]}, facts(method="GET"), False),
    ("HEAD counts as GET", {"method": ["GET"]}, facts(method="HEAD"), True),
    ("GET is not HEAD", {"method": ["HEAD"]}, facts(method="GET"), False),
    ("HEAD without GET", {"method": ["POST"]}, facts(method="HEAD"), False),
    ("path equals", {"path": {"equals": "/a"}}, facts(path="/a"), True),
    ("path equals miss", {"path": {"equals": "/a"}}, facts(path="/a/b"), False),
    ("path one_of", {"path": {"one_of": ["/a", "/b"]}}, facts(path="/b"), True),
    ("path one_of miss", {"path": {"one_of": ["/a", "/b"]}}, facts(path="/c"), False),
    ("path prefix", {"path": {"prefix": "/adm"}}, facts(path="/admin"), True),
    ("path prefix miss", {"path": {"prefix": "/adm"}}, facts(path="/x/admin"), False),
    ("path matches", {"path": {"matches": "/a/[0-9]+"}}, facts(path="/a/12"), True),
    ("path matches anchored", {"path": {"matches": "/a/[0-9]+"}}, facts(path="/a/12/x"), False),
    ("network", {"client_ip": ["10.0.0.0/8"]}, facts(ip="10.1.2.3"), True),
    ("outside the network", {"client_ip": ["10.0.0.0/8"]}, facts(ip="11.0.0.1"), False),
    ("one of the networks", {"client_ip": ["10.0.0.0/8", "192.0.2.0/24"]}, facts(), True),
    ("host bits in the network", {"client_ip": ["10.9.9.9/8"]}, facts(ip="10.1.2.3"), True),
    ("single address", {"client_ip": ["192.0.2.7"]}, facts(ip="192.0.2.8"), False),
    ("IPv4-mapped IPv6", {"client_ip": ["10.0.0.0/8"]}, facts(ip="::ffff:10.0.0.1"), True),
    ("IPv4-mapped outside", {"client_ip": ["10.0.0.0/8"]}, facts(ip="::ffff:11.0.0.1"), False),
    ("IPv6 with a zone", {"client_ip": ["fe80::/10"]}, facts(ip="fe80::1%eth0"), True),
    ("IPv4 with a zone suffix", {"client_ip": ["10.0.0.0/8"]}, facts(ip="10.0.0.1%1"), True),
    ("a zone is cut at its first %", {"client_ip": ["10.0.0.0/8"]}, facts(ip="10.0.0.1%a%b"),
     True),
    ("IPv6 outside", {"client_ip": ["fe80::/10"]}, facts(ip="2001:db8::1"), False),
    ("all hold", {"all": [{"method": ["GET"]}, {"path": {"prefix": "/"}}]}, facts(), True),
    ("all, one fails", {"all": [{"method": ["GET"]}, {"path": {"prefix": "/x"}}]}, facts(),
     False),
    ("any, one holds", {"any": [{"method": ["PUT"]}, {"path": {"prefix": "/"}}]}, facts(), True),
    ("any, none holds", {"any": [{"method": ["PUT"]}, {"path": {"prefix": "/x"}}]}, facts(),
     False),
    ("not", {"not": {"method": ["PUT"]}}, facts(), True),
    ("not, holds", {"not": {"method": ["GET"]}}, facts(), False),
]  # fmt: skip


@pytest.mark.parametrize(
    ("spec", "request_facts", "expected"), [c[1:] for c in HOLDS], ids=[c[0] for c in HOLDS]
)
def test_holds(spec: dict[str, Any], request_facts: Facts, expected: bool) -> None:
    """Each condition kind decides on its part of the request; a network condition never
    matches an address outside it, however the address is written."""
    assert expected == holds(cond(**spec), request_facts)


@pytest.mark.parametrize(
    ("spec", "request_facts", "message"),
    [
        ({"path": {"prefix": "/"}}, facts(path=None), "^the request path is not known here$"),
        ({"client_ip": ["10.0.0.0/8"]}, facts(ip=None), "^the client address is not known here$"),
        (
            {"client_ip": ["10.0.0.0/8"]},
            facts(ip="unix:" + "x" * 80),
            "^client address 'unix:" + "x" * 55 + "' is not an IP address$",
        ),
        ({"not": {"path": {"prefix": "/"}}}, facts(path=None), "path is not known"),
    ],
    ids=["no path", "no address", "not an address", "inside not"],
)
def test_undecidable_conditions_raise(
    spec: dict[str, Any], request_facts: Facts, message: str
) -> None:
    """A path or address that is not known (or not an address) cannot be decided, also
    under `not` (where a plain False would turn into an allow)."""
    with pytest.raises(Indeterminate, match=message):
        holds(cond(**spec), request_facts)


def test_an_empty_condition_is_undecidable() -> None:
    """A condition of no kind (the config refuses it) never holds silently."""
    with pytest.raises(Indeterminate, match=r"^empty condition$"):
        holds(Condition.model_construct(), facts())


def test_why_not_names_the_failing_part() -> None:
    """The log reason is the condition's own `reason` when given, else its plain words;
    for `all`, the first failing child (or the all's reason); None when it holds."""
    get = cond(method=["GET"])
    put = cond(method=["PUT"])
    assert why_not(get, facts()) is None
    assert "method is one of PUT does not hold" == why_not(put, facts())
    assert "writes only" == why_not(cond(method=["PUT"], reason="writes only"), facts())
    assert "method is one of GET must not hold" == why_not(
        cond(**{"not": {"method": ["GET"]}}), facts()
    )
    both = {
        "all": [{"method": ["GET"]}, {"method": ["PUT"], "reason": "second"}, {"method": ["POST"]}]
    }
    assert "second" == why_not(cond(**both), facts())
    assert "the pair" == why_not(cond(**both, reason="the pair"), facts())
    assert why_not(cond(all=[{"method": ["GET"]}, {"path": {"prefix": "/"}}]), facts()) is None
    either = {"any": [{"method": ["PUT"]}, {"method": ["POST"]}]}
    assert "any of (method is one of PUT; method is one of POST) does not hold" == why_not(
        cond(**either), facts()
    )


DESCRIBE: list[tuple[dict[str, Any], str]] = [
    ({"claim": "x", "present": True}, "claim x is present"),
    ({"claim": "x", "present": False}, "claim x is absent"),
    ({"claim": "x", "equals": "a"}, "claim x equals 'a'"),
    ({"claim": "x", "one_of": ["a", "b"]}, "claim x is one of 'a', 'b'"),
    ({"claim": "x", "prefix": "a"}, "claim x starts with 'a'"),
    ({"claim": "x", "matches": "a+"}, "claim x matches /a+/"),
    ({"claim": "x", "contains": "a"}, "claim x contains 'a'"),
    ({"claim": "acr", "at_least": "mfa", "order": ["pwd", "mfa"]},
     "claim acr is at least 'mfa' in the order pwd < mfa"),
    ({"claim": "x", "at_least": 2}, "claim x is a number >= 2"),
    ({"all": [{"groups": ["a", "b"]}, {"method": ["GET", "PUT"]}]},
     "all of (in one of the groups a, b; method is one of GET, PUT)"),
    ({"any": [{"path": {"equals": "/a"}}, {"client_ip": ["10.0.0.0/8", "::1"]}]},
     "any of (path below the route equals '/a'; client address in 10.0.0.0/8, ::1)"),
    ({"not": {"path": {"one_of": ["/a", "/b"]}}},
     "not (path below the route is one of '/a', '/b')"),
    ({"path": {"prefix": "/a"}}, "path below the route starts with '/a'"),
    ({"path": {"matches": "/a.*"}}, "path below the route matches //a.*/"),
]  # fmt: skip


@pytest.mark.parametrize(("spec", "words"), DESCRIBE, ids=[w for _, w in DESCRIBE])
def test_describe(spec: dict[str, Any], words: str) -> None:
    """Conditions in plain words, as `gateway check --explain` and the logs show them."""
    assert words == describe(cond(**spec))


def test_describe_a_claim_rule_and_empty_tests() -> None:
    """A route's claim rule reads like a claim condition; a test of no kind reads '?'."""
    assert "claim email starts with 'a'" == describe(ClaimRule(claim="email", prefix="a"))
    assert "?" == describe(Condition.model_construct())
    assert "claim x is a number >= None" == describe(ClaimRule.model_construct(claim="x"))
    empty_path = Condition.model_construct(path=PathTest.model_construct())
    assert "path below the route ?" == describe(empty_path)
