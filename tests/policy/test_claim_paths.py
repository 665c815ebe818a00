"""Reading a claim by path, and groups/roles from where the operator said they are."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.policy.claim_paths import MISSING, as_names, read_claim, with_canonical_claims

CLAIMS: dict[str, Any] = {
    "sub": "alice",
    "https://example.com/roles": ["editor"],
    "realm_access": {"roles": ["admin", "user"]},
    "resource_access": {"my.app": {"roles": ["reader"]}, "a/b": {"x~y": 1}},
    "list": [{"n": "first"}, {"n": "second"}],
    "a.b": "literal",
    "a": {"b": "nested"},
}


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("sub", "alice"),
        ("https://example.com/roles", ["editor"]),  # a full name with dots wins
        ("a.b", "literal"),
        ("realm_access.roles", ["admin", "user"]),
        ("/resource_access/my.app/roles", ["reader"]),  # JSON Pointer: dots are data
        ("/resource_access/a~1b/x~0y", 1),
        ("/list/1/n", "second"),
        ("list.0.n", "first"),
        ("/a/b", "nested"),
    ],
)
def test_a_claim_is_read_by_name_dotted_path_or_pointer(path: str, value: Any) -> None:
    """Full names first, then dots into objects; a leading '/' is an RFC 6901 pointer."""
    assert value == read_claim(CLAIMS, path)


@pytest.mark.parametrize(
    "path",
    ["nope", "realm_access.nope", "/resource_access/my.app/nope", "/list/2/n", "/list/x",
     "list.-1.n", "sub.x", "/sub/x", "realm_access.roles.5"],
)  # fmt: skip
def test_an_absent_claim_is_missing_never_another_one(path: str) -> None:
    """A path that does not lead to a value is MISSING (not None, not a neighbour)."""
    assert read_claim(CLAIMS, path) is MISSING


@pytest.mark.parametrize(
    ("value", "names"),
    [
        (["a", "b", 3, None, {"x": 1}], ["a", "b"]),
        ("a, b,,c ", ["a", "b", "c"]),
        ("", []),
        (None, []),
        (MISSING, []),
        (5, []),
        ({"a": 1}, []),
    ],
)
def test_groups_are_names_only(value: Any, names: list[str]) -> None:
    """Lists keep their strings, a string splits on commas, anything else is no group."""
    assert names == as_names(value)


def test_configured_paths_replace_the_tokens_own_groups() -> None:
    """groups/roles come from their configured paths; an absent configured path gives no
    groups (never the token's own 'groups' claim); a path equal to the name keeps it."""
    claims = {"groups": ["forged-admin"], "roles": ["r"], "realm_access": {"roles": ["admin"]}}
    result = with_canonical_claims(claims, {"groups": "realm_access.roles", "roles": "roles"})
    assert ["admin"] == result["groups"]
    assert ["r"] == result["roles"]
    assert ["forged-admin"] == claims["groups"]  # the token's claims are not changed
    gone = with_canonical_claims(claims, {"groups": "/no/such/path"})
    assert [] == gone["groups"]
    # A name configured as itself does not stop the others from being read.
    both = with_canonical_claims(claims, {"roles": "roles", "groups": "realm_access.roles"})
    assert (["admin"], ["r"]) == (both["groups"], both["roles"])
