"""Documentation generated from the schema: config.example.yaml and docs/configuration.md.

Both files are written by `gateway config example` / `gateway config reference` and a
test fails when the committed copies drift from the models.
"""

from __future__ import annotations

import json
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from gateway.config.load import SECRET_KEYS
from gateway.config.model import Config, Unit
from gateway.config.schema import holds_secret
from gateway.secret import Secret

# Example values for keys without a default, and one entry for each list of sections.
EXAMPLES: dict[str, Any] = {
    "routes.upstream": "http://127.0.0.1:8000",
    "providers.name": "corp",
    "providers.label": "Sign in with Corp SSO",
    "providers.issuer": "https://idp.example.com",
    "providers.client_id": "gateway",
    "providers.client_secret": "${GATEWAY_CLIENT_SECRET}",
    "bearer.issuers.issuer": "https://idp.example.com",
    "bearer.issuers.audiences": ["urn:example:api"],
    "bearer.issuers.introspection.client_id": "gateway-rs",
    "bearer.issuers.introspection.client_secret": "${GATEWAY_RS_SECRET}",
    "sessions.secrets": ["${GATEWAY_SESSION_SECRET}"],
    "signing_keys.file": "/etc/gateway/identity-key.pem",
    "listen.tls.cert_file": "/etc/gateway/tls.crt",
    "listen.tls.key_file": "/etc/gateway/tls.key",
    "routes.policy.claims.claim": "department",
    "routes.policy.claims.equals": "engineering",
    "routes.identity_token.claims": {"grants": {"identity": "{sub}"}},
    "routes.identity_token.headers": {"cty": "parra-fpa;v=1"},
}
# Optional sections shown (commented) in the example even though their default is null.
SHOW_OPTIONAL = {"listen.tls", "routes.identity_token", "bearer.issuers.introspection"}
# Recursive condition trees: shown empty in the example (docs/policy.md has examples).
COLLAPSED = {"routes.policy.all", "routes.policy.any", "routes.policy.not", "routes.policy.deny"}


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def _is_list(annotation: Any) -> bool:
    if get_origin(annotation) is list:
        return True
    return any(_is_list(a) for a in get_args(annotation))


def _default(field: FieldInfo) -> Any:
    if field.default is not PydanticUndefined:
        value = field.default
    elif field.default_factory is not None:
        value = field.default_factory()  # type: ignore[call-arg]
    else:
        return PydanticUndefined
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list | tuple):
        return [str(v) if not isinstance(v, int | float | bool) else v for v in value]
    return value


def _scalar(value: Any) -> str:
    return json.dumps(value) if not isinstance(value, str) else _quote(value)


def _quote(value: str) -> str:
    if value.startswith("${"):
        return json.dumps(value)
    return yaml.safe_dump(value, width=1000).removesuffix("\n").removesuffix("\n...").strip()


def example_yaml() -> str:
    """The annotated example configuration: every key, its comment and its default."""
    lines = [
        "# Example configuration: every key with its default. Generated from the schema by",
        "# `gateway config example`; see docs/configuration.md for the reference.",
        "# Secrets can be given as ${ENV_VAR} or read from files with <key>_file.",
        "",
    ]
    _emit_model(Config, "", 0, lines)
    return "\n".join(lines) + "\n"


def _emit_model(model: type[BaseModel], path: str, indent: int, out: list[str]) -> None:
    pad = "  " * indent
    for attribute, field in model.model_fields.items():
        name = field.alias or attribute
        key_path = f"{path}.{name}" if path else name
        if field.description:
            out.append(f"{pad}# {field.description}")
        sub = _model_of(field.annotation) if key_path not in COLLAPSED else None
        default = _default(field)
        if sub is not None and _is_list(field.annotation):
            out.append(f"{pad}{name}:")
            out.append(f"{pad}  -")
            _emit_model(sub, key_path, indent + 2, out)
            # put the first key on the dash line for readable YAML
            _join_dash(out)
        elif sub is not None:
            if default is None and key_path not in SHOW_OPTIONAL:
                out.append(f"{pad}{name}: null")
                continue
            out.append(f"{pad}{name}:")
            _emit_model(sub, key_path, indent + 1, out)
        else:
            value = EXAMPLES.get(key_path, default)
            out.append(f"{pad}{name}: {_render(value, indent)}")


def _join_dash(out: list[str]) -> None:
    dash = max(i for i, line in enumerate(out) if line.strip() == "-")
    first = next(i for i in range(dash + 1, len(out)) if not out[i].lstrip().startswith("#"))
    out[dash] = out[dash] + " " + out[first].lstrip()
    del out[first]
    # comments between the dash and the first key move above the dash
    comments = out[dash + 1 : first]
    del out[dash + 1 : first]
    out[dash:dash] = comments


def _render(value: Any, indent: int) -> str:
    if value is PydanticUndefined:
        return "null  # required"
    if isinstance(value, dict):
        return json.dumps(value) if value else "{}"
    if isinstance(value, list):
        return "[" + ", ".join(_scalar(v) for v in value) + "]"
    if value is None:
        return "null"
    return _scalar(value)


def markdown_reference() -> str:
    """docs/configuration.md: one table row per key, from the JSON-schema-backed models."""
    rows = ["| key | type | default | description |", "|---|---|---|---|"]
    _rows(Config, "", rows)
    return (
        "# Configuration reference\n\n"
        "Generated from the schema by `gateway config reference` (do not edit by hand).\n"
        "`gateway config schema` prints the JSON Schema for editors; `config.example.yaml`\n"
        "shows every key with its default.\n\n"
        "Any value may name environment variables: `${VAR}`, or `${VAR:-default}` when it\n"
        "may be unset (an unset variable without a default is an error naming the key).\n"
        "Every secret may instead be read from a file with its `_file` key\n"
        "(`client_secret_file: /run/secrets/client`). Durations take seconds or a unit\n"
        "(`90s`, `15m`, `8h`, `7d`, `500ms`); sizes take bytes or a unit (`64KiB`, `10MiB`,\n"
        "`1GB`).\n\n" + "\n".join(rows) + "\n"
    )


def _rows(
    model: type[BaseModel], path: str, rows: list[str], above: tuple[type[BaseModel], ...] = ()
) -> None:
    for attribute, field in model.model_fields.items():
        name = field.alias or attribute
        key_path = f"{path}.{name}" if path else name
        sub = _model_of(field.annotation)
        if sub is not None and (sub in above or sub is model):
            # a recursive section (policy conditions): its keys are listed once, above
            many = " (a list)" if _is_list(field.annotation) else ""
            rows.append(f"| `{key_path}` | condition{many}, as above | | {field.description} |")
            continue
        shown = key_path + ("[]" if sub is not None and _is_list(field.annotation) else "")
        default = _default(field)
        default_text = "required" if default is PydanticUndefined else f"`{json.dumps(default)}`"
        type_text = _type_name(field.annotation).replace("|", "\\|")
        description = (field.description or "").replace("|", "\\|")
        if sub is None or not sub.model_fields:
            rows.append(f"| `{shown}` | {type_text} | {default_text} | {description} |")
            if name in SECRET_KEYS and holds_secret(field.annotation):
                lines = ", one per line" if _is_list(field.annotation) else ""
                rows.append(f"| `{shown}_file` | file path | | A file holding `{name}`{lines}, "
                            f"read at start (instead of `{name}`). |")  # fmt: skip
        else:
            rows.append(f"| `{shown}` | section | | {description} |")
            _rows(sub, shown, rows, (*above, model))


def _type_name(annotation: Any) -> str:
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        unit = [m for m in annotation.__metadata__ if isinstance(m, Unit)]
        if unit:
            return "seconds or duration (90s, 15m, 8h, 7d)" if unit[0] == "duration" else (
                "bytes or size (64KiB, 10MiB)")  # fmt: skip
        return _type_name(args[0])
    if origin in (Union, UnionType):
        names = [_type_name(a) for a in args if a is not type(None)]
        return " or ".join(names) + (" (optional)" if type(None) in args else "")
    if origin is list:
        return f"list of {_type_name(args[0])}"
    if origin is dict:
        return "mapping"
    if origin is Literal:
        return " / ".join(f"`{a}`" for a in args)
    if annotation is Secret:
        return "secret"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "section"
    return getattr(annotation, "__name__", str(annotation))
