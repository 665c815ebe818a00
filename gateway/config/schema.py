"""The JSON Schema of the file as it is written: `<key>_file` secrets and `${ENV}` values too.

The models describe the config after loading; the loader first replaces ``${VAR}`` and
reads ``client_secret_file`` and friends, so the file itself may hold those forms.
"""

from __future__ import annotations

import typing
from typing import Any

from pydantic import BaseModel

from gateway.config.load import SECRET_KEYS
from gateway.config.model import Config

ENV_REFERENCE = r"\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}"
_ENV_STRING = {
    "type": "string",
    "pattern": ENV_REFERENCE,
    "description": "An environment reference such as ${PORT} or ${PORT:-8080}.",
}
_NON_STRING = frozenset({"integer", "number", "boolean"})


def config_json_schema() -> dict[str, Any]:
    """`gateway config schema`: the models' schema, widened to what the loader accepts."""
    schema = Config.model_json_schema()
    secret = _secret_fields()
    for definition in [schema, *schema.get("$defs", {}).values()]:
        _add_file_keys(definition, secret.get(definition.get("title", ""), set()))
    _github_issuer(schema["$defs"]["Provider"])
    return _allow_env(schema)  # type: ignore[no-any-return]


def holds_secret(annotation: Any) -> bool:
    """The field's value is a secret (so the loader also takes it from ``<name>_file``)."""
    return "Secret" in repr(annotation)


def _secret_fields() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    pending: list[type[BaseModel]] = [Config]
    while pending:
        model = pending.pop()
        if model.__name__ in found:
            continue
        found[model.__name__] = {
            name for name, field in model.model_fields.items()
            if name in SECRET_KEYS and holds_secret(field.annotation)
        }  # fmt: skip
        for field in model.model_fields.values():
            pending += [a for a in _classes(field.annotation) if issubclass(a, BaseModel)]
    return found


def _classes(annotation: Any) -> list[type]:
    if isinstance(annotation, type):
        return [annotation]
    return [c for arg in typing.get_args(annotation) for c in _classes(arg)]


def _add_file_keys(definition: dict[str, Any], secret: set[str]) -> None:
    properties = definition.get("properties", {})
    for name in [n for n in properties if n in secret]:
        properties[f"{name}_file"] = {
            "type": "string",
            "description": f"A file holding {name} (read at start; instead of {name}"
            + (", one secret per line)." if name == "secrets" else ")."),
        }
        if name in definition.get("required", []):
            definition["required"].remove(name)
            definition.setdefault("anyOf", []).extend(
                [{"required": [name]}, {"required": [f"{name}_file"]}]
            )


def _github_issuer(provider: dict[str, Any]) -> None:
    """Profile github fills in its issuer (github.com); every other provider names one."""
    provider["required"].remove("issuer")
    provider["if"] = {"properties": {"profile": {"const": "github"}}, "required": ["profile"]}
    provider["else"] = {"required": ["issuer"]}


def _allow_env(node: Any) -> Any:
    """Numbers and booleans may also be written as ``${VAR}`` (the loader substitutes it)."""
    if isinstance(node, list):
        return [_allow_env(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _allow_env(value) for key, value in node.items()}
    if out.get("type") in _NON_STRING:
        typed = {k: out.pop(k) for k in list(out) if k not in ("description", "title", "default")}
        out["anyOf"] = [typed, _ENV_STRING]
    return out
