"""Reading a claim by path (dotted or JSON Pointer), and the canonical groups/roles claims."""

from __future__ import annotations

from typing import Any

MISSING: Any = object()  # what read_claim returns for an absent claim


def _pointer_parts(pointer: str) -> list[str]:
    """RFC 6901: '/a/b~1c' -> ['a', 'b/c'] ('~1' is '/', '~0' is '~')."""
    return [p.replace("~1", "/").replace("~0", "~") for p in pointer[1:].split("/")]


def _walk(value: Any, parts: list[str]) -> Any:
    for part in parts:
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return MISSING
    return value


def read_claim(claims: dict[str, Any], path: str) -> Any:
    """The claim at `path`, or MISSING.

    A path starting with '/' is a JSON Pointer (`/resource_access/my.app/roles`); otherwise
    the full name is tried first (namespaced claims such as `https://example.com/roles`
    hold dots), then dots reach into nested objects (`realm_access.roles`).
    """
    if path.startswith("/"):
        return _walk(claims, _pointer_parts(path))
    if path in claims:
        return claims[path]
    return _walk(claims, path.split("."))


def as_names(value: Any) -> list[str]:
    """A groups/roles claim as a list of names: lists kept (strings only), a string split
    on commas, anything else (absent, objects, numbers) nothing."""
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str)]
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return []


def with_canonical_claims(claims: dict[str, Any], paths: dict[str, str]) -> dict[str, Any]:
    """`claims` plus `groups` / `roles` read from their configured paths.

    `paths` maps a canonical name to its path; a path that is the name itself leaves the
    claim as it is. A configured path that is absent yields an empty list, never the
    token's own `groups` claim: the operator said where groups are.
    """
    result = dict(claims)
    for name, path in paths.items():
        if path == name:
            continue
        result[name] = as_names(read_claim(claims, path))
    return result


__all__ = ["MISSING", "as_names", "read_claim", "with_canonical_claims"]
