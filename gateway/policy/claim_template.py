"""Claim templates for identity tokens: constants kept, '{...}' placeholders filled per principal.

A template is any JSON-like value. Strings may hold placeholders:
- ``"{sub}"`` alone is replaced by the value itself (a list stays a list);
- ``"user|{sub}"`` mixes text and values: strings go in as they are, other values as
  compact JSON; ``{{`` and ``}}`` stand for literal braces;
- a claim whose placeholder has no value is left out (never sent half-filled).
Names: ``sub``, ``issuer`` (the IdP), ``client_id``, ``scope``, ``kind`` (session or bearer)
and ``claims.NAME`` (the principal's claims; dots reach into nested objects).
"""

from __future__ import annotations

import json
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from gateway.errors import ConfigError
from gateway.policy.authz import claim_value
from gateway.policy.claim_paths import MISSING
from gateway.types import Principal

FIELDS: dict[str, Callable[[Principal], Any]] = {
    "sub": lambda p: p.subject,
    "issuer": lambda p: p.issuer,
    "client_id": lambda p: p.client_id,
    "scope": lambda p: " ".join(sorted(p.scopes)) or None,
    "kind": lambda p: p.kind,
}
CLAIMS_PREFIX = "claims."
_ABSENT: Any = object()  # a rendered value that must not be sent


@dataclass(frozen=True, slots=True)
class _Text:
    """A string of literal parts and placeholder names (None name: literal only)."""

    parts: tuple[tuple[str, str | None], ...]


def _lookup(principal: Principal, name: str) -> Any:
    if name.startswith(CLAIMS_PREFIX):
        value = claim_value(principal.claims, name[len(CLAIMS_PREFIX) :])
    else:
        value = FIELDS[name](principal)
    return _ABSENT if value is None or value is MISSING else value


def _check_name(name: str, where: str) -> str:
    if name in FIELDS or (name.startswith(CLAIMS_PREFIX) and len(name) > len(CLAIMS_PREFIX)):
        return name
    known = ", ".join([*FIELDS, "claims.NAME"])
    raise ConfigError([f"{where}: unknown placeholder {{{name}}} (known: {known})"])


def _compile_text(text: str, where: str) -> str | _Text:
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise ConfigError([f"{where}: {exc} (write {{{{ and }}}} for literal braces)"]) from None
    parts: list[tuple[str, str | None]] = []
    for literal, name, spec, conversion in parsed:
        if spec or conversion:
            raise ConfigError([f"{where}: format specs and conversions are not supported"])
        parts.append((literal, None if name is None else _check_name(name, where)))
    if all(name is None for _, name in parts):
        return "".join(literal for literal, _ in parts)  # a constant ('{{' unescaped)
    return _Text(tuple(parts))


def compile_template(template: Any, where: str = "claims") -> Any:
    """Check a template once (unknown names and bad braces are ConfigErrors) and pre-parse it."""
    if isinstance(template, str):
        return _compile_text(template, where)
    if isinstance(template, Mapping):
        return {str(k): compile_template(v, f"{where}.{k}") for k, v in template.items()}
    if isinstance(template, list | tuple):
        return [compile_template(v, f"{where}[{i}]") for i, v in enumerate(template)]
    return template


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def _render_text(text: _Text, principal: Principal) -> Any:
    parts = text.parts
    if len(parts) == 1 and parts[0][0] == "" and parts[0][1] is not None:
        return _lookup(principal, parts[0][1])  # "{name}" alone keeps the value's type
    out: list[str] = []
    for literal, name in parts:
        out.append(literal)
        if name is not None:
            value = _lookup(principal, name)
            if value is _ABSENT:
                return _ABSENT
            out.append(_as_text(value))
    return "".join(out)


def _render(compiled: Any, principal: Principal) -> Any:
    if isinstance(compiled, _Text):
        return _render_text(compiled, principal)
    if isinstance(compiled, dict):
        rendered = {k: _render(v, principal) for k, v in compiled.items()}
        return {k: v for k, v in rendered.items() if v is not _ABSENT}
    if isinstance(compiled, list):
        return [v for v in (_render(item, principal) for item in compiled) if v is not _ABSENT]
    return compiled


def render_claims(compiled: dict[str, Any], principal: Principal) -> dict[str, Any]:
    """The claims of a compiled template for this principal (absent values left out)."""
    rendered: dict[str, Any] = _render(compiled, principal)
    return rendered
