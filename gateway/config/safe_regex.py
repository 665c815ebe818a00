"""Regular expressions for policies, restricted so that matching cannot take long.

Python's `re` backtracks: `(a+)+$` or `a*a*a*b` take exponential or high polynomial time
on a crafted claim. Instead of an optional RE2 binding (a config valid on one machine
must be valid on every machine), patterns are checked at load time against a subset
whose worst case is bounded:

- no back-references, look-ahead / look-behind or conditional groups;
- a group or alternation may be repeated only a bounded number of times (`{0,3}`);
- the number of ways a pattern can split a subject (each repeat counts its possible
  lengths, each alternation its branches, an unbounded repeat SUBJECT_LIMIT + 1) is at
  most MAX_PATHS: in practice two `*`/`+` on single characters or classes, not three;
- subjects longer than SUBJECT_LIMIT are never matched (the caller refuses them).

Matching is `fullmatch`: a pattern describes the whole value, so `admin` does not
match `not-admin`.
"""

from __future__ import annotations

import functools
import re
from re import _constants as sre_constants  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]
from typing import Any

SUBJECT_LIMIT = 1024
MAX_PATTERN = 512
MAX_PATHS = 1_100_000
_SINGLE = {sre_constants.LITERAL, sre_constants.NOT_LITERAL, sre_constants.ANY, sre_constants.IN}
_REPEATS = {sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT, sre_constants.POSSESSIVE_REPEAT}
_REFUSED = {
    sre_constants.GROUPREF: "back-references",
    sre_constants.GROUPREF_EXISTS: "conditional groups",
    sre_constants.ASSERT: "look-ahead / look-behind",
    sre_constants.ASSERT_NOT: "look-ahead / look-behind",
}


class UnsafePattern(ValueError):
    """A pattern outside the safe subset (the message says why)."""


class SubjectTooLong(ValueError):
    """A value longer than SUBJECT_LIMIT: not matched, so the decision refuses."""


def _paths(items: Any) -> int:
    """Upper bound of the ways `items` (a parsed sequence) can split a subject."""
    total = 1
    for op, arg in items:
        total = min(total * _item_paths(op, arg), MAX_PATHS + 1)
    return total


def _item_paths(op: Any, arg: Any) -> int:
    if op in _REFUSED:
        raise UnsafePattern(f"{_REFUSED[op]} are not supported")
    if op in _REPEATS:
        low, high, body = arg
        unbounded = high == sre_constants.MAXREPEAT
        lengths = int((SUBJECT_LIMIT if unbounded else high) - low + 1)
        if len(body) == 1 and body[0][0] in _SINGLE:
            return lengths
        if unbounded:
            raise UnsafePattern("a group may be repeated only a bounded number of times")
        inner = _paths(body)
        cost: int = lengths * inner ** int(max(high, 1))
        return min(cost, MAX_PATHS + 1)
    if op == sre_constants.SUBPATTERN:
        return _paths(arg[-1])  # (group, add_flags, del_flags, pattern)
    if op == sre_constants.ATOMIC_GROUP:
        return _paths(arg)
    if op == sre_constants.BRANCH:
        return min(sum(_paths(branch) for branch in arg[1]), MAX_PATHS + 1)
    return 1


def check_pattern(pattern: str) -> None:
    """Raise UnsafePattern (a ValueError) unless the pattern is in the safe subset."""
    if len(pattern) > MAX_PATTERN:
        raise UnsafePattern(f"longer than {MAX_PATTERN} characters")
    try:
        parsed = sre_parse.parse(pattern)
    except re.error as exc:
        raise UnsafePattern(f"not a regular expression: {exc}") from None
    if _paths(parsed) > MAX_PATHS:
        raise UnsafePattern(
            "too many ways to match (at most two unbounded repeats such as * or +, "
            "on single characters or classes)"
        )


@functools.lru_cache(maxsize=1024)
def _compiled(pattern: str) -> re.Pattern[str]:
    check_pattern(pattern)
    return re.compile(pattern)


def full_match(pattern: str, value: str) -> bool:
    """Whether the whole value matches; SubjectTooLong for values over SUBJECT_LIMIT."""
    if len(value) > SUBJECT_LIMIT:
        raise SubjectTooLong(f"value longer than {SUBJECT_LIMIT} characters")
    return _compiled(pattern).fullmatch(value) is not None
