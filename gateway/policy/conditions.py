"""Policy conditions (all / any / not, claim comparisons, method, path, client network):
whether one holds for a request, and the plain words for it. Pure functions."""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gateway.config.model import ClaimRule, Comparison, Condition, PathTest
from gateway.config.safe_regex import SubjectTooLong, full_match
from gateway.types import Principal

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class Indeterminate(Exception):
    """A condition cannot be decided (unknown path or address, oversized value): refuse."""


@dataclass(frozen=True, slots=True)
class Facts:
    """One reading of the request a condition is evaluated against."""

    principal: Principal
    # the claim at a path, None when absent (authz.claim_value: one home for path syntax)
    claim: Callable[[str], Any]
    method: str
    path: str | None  # canonical decoded path below the route prefix; None: unknown
    client_ip: str | None  # None: unknown


def _items(value: Any) -> list[Any]:
    if isinstance(value, list):
        return value
    if isinstance(value, str):
        return [part for part in value.replace(",", " ").split() if part]
    return [value]


def _strings(value: Any) -> list[str]:
    values = value if isinstance(value, list) else [value]
    return [v for v in values if isinstance(v, str)]


def _same(claim: Any, expected: Any) -> bool:
    return type(claim) is type(expected) and claim == expected


def _at_least(value: Any, test: Comparison) -> bool:
    floor = test.at_least
    if test.order is not None:
        order = test.order
        return (
            isinstance(value, str)
            and value in order
            and order.index(value) >= order.index(str(floor))
        )
    number = isinstance(value, int | float) and not isinstance(value, bool)
    return number and isinstance(floor, int | float) and value >= floor


def _full_match(pattern: str, value: str) -> bool:
    try:
        return full_match(pattern, value)
    except SubjectTooLong as exc:
        raise Indeterminate(str(exc)) from None


def compare(value: Any, test: Comparison) -> bool:
    """Whether a value (None if absent) meets the comparison; list values by item."""
    if test.present is not None:
        return (value is not None) == test.present
    if value is None:
        return False
    if test.equals is not None:
        return _same(value, test.equals)
    if test.one_of is not None:
        return any(v in test.one_of for v in _strings(value))
    if test.contains is not None:
        return test.contains in _items(value)
    if test.prefix is not None:
        return any(v.startswith(test.prefix) for v in _strings(value))
    if test.matches is not None:
        pattern = test.matches
        return any(_full_match(pattern, v) for v in _strings(value))
    return test.at_least is not None and _at_least(value, test)


def _path_holds(test: PathTest, path: str) -> bool:
    if test.equals is not None:
        return path == test.equals
    if test.one_of is not None:
        return path in test.one_of
    if test.prefix is not None:
        return path.startswith(test.prefix)
    return test.matches is not None and _full_match(test.matches, path)


@functools.lru_cache(maxsize=4096)
def _networks(networks: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(n, strict=False) for n in networks)


def _address(client_ip: str) -> IPAddress:
    try:
        address = ipaddress.ip_address(client_ip.split("%", 1)[0])
    except ValueError:
        raise Indeterminate(f"client address {client_ip[:60]!r} is not an IP address") from None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # ::ffff:10.0.0.1 is 10.0.0.1
    return address


def holds(condition: Condition, facts: Facts) -> bool:
    """Whether the condition holds; Indeterminate when it cannot be known."""
    if condition.all is not None:
        return all(holds(c, facts) for c in condition.all)
    if condition.any is not None:
        return any(holds(c, facts) for c in condition.any)
    if condition.not_ is not None:
        return not holds(condition.not_, facts)
    if condition.claim is not None:
        return compare(facts.claim(condition.claim), condition)
    if condition.groups is not None:
        return bool(set(condition.groups) & facts.principal.groups)
    if condition.method is not None:
        method = facts.method.upper()
        return method in condition.method or (method == "HEAD" and "GET" in condition.method)
    if condition.path is not None:
        if facts.path is None:
            raise Indeterminate("the request path is not known here")
        return _path_holds(condition.path, facts.path)
    if condition.client_ip is not None:
        if facts.client_ip is None:
            raise Indeterminate("the client address is not known here")
        address = _address(facts.client_ip)
        return any(address in net for net in _networks(tuple(condition.client_ip)))
    raise Indeterminate("empty condition")  # the config model makes this unreachable


def why_not(condition: Condition, facts: Facts) -> str | None:
    """None when the condition holds, else the plain reason it fails (for the log)."""
    if condition.all is not None:
        for child in condition.all:
            reason = why_not(child, facts)
            if reason is not None:
                return condition.reason or reason
        return None
    if holds(condition, facts):
        return None
    if condition.reason:
        return condition.reason
    if condition.not_ is not None:
        return f"{describe(condition.not_)} must not hold"
    return f"{describe(condition)} does not hold"


def _comparison_words(test: Comparison | PathTest) -> str:
    if isinstance(test, Comparison) and test.present is not None:
        return "is present" if test.present else "is absent"
    if test.equals is not None:
        return f"equals {test.equals!r}"
    if test.one_of is not None:
        return "is one of " + ", ".join(repr(v) for v in test.one_of)
    if test.prefix is not None:
        return f"starts with {test.prefix!r}"
    if test.matches is not None:
        return f"matches /{test.matches}/"
    if isinstance(test, Comparison) and test.contains is not None:
        return f"contains {test.contains!r}"
    if isinstance(test, Comparison) and test.order is not None:
        return f"is at least {test.at_least!r} in the order {' < '.join(test.order)}"
    return f"is a number >= {test.at_least!r}" if isinstance(test, Comparison) else "?"


def describe(condition: Condition | ClaimRule) -> str:
    """The condition in plain words (config values only, never a caller's claims)."""
    if isinstance(condition, ClaimRule):
        return f"claim {condition.claim} {_comparison_words(condition)}"
    if condition.all is not None:
        return "all of (" + "; ".join(describe(c) for c in condition.all) + ")"
    if condition.any is not None:
        return "any of (" + "; ".join(describe(c) for c in condition.any) + ")"
    if condition.not_ is not None:
        return f"not ({describe(condition.not_)})"
    if condition.claim is not None:
        return f"claim {condition.claim} {_comparison_words(condition)}"
    if condition.groups is not None:
        return "in one of the groups " + ", ".join(condition.groups)
    if condition.method is not None:
        return "method is one of " + ", ".join(condition.method)
    if condition.path is not None:
        return f"path below the route {_comparison_words(condition.path)}"
    if condition.client_ip is not None:
        return "client address in " + ", ".join(condition.client_ip)
    return "?"
