"""Every YAML config block in README.md, docs/ and helm/ is valid for the published JSON
Schema (`gateway config schema`, with `*_file` keys and ${ENV} values) and for the models."""

from __future__ import annotations

import re
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from gateway.config.load import SECRET_KEYS
from gateway.config.model import Config, Route
from gateway.config.schema import config_json_schema

ROOT = Path(__file__).resolve().parents[2]
YAML_BLOCK = re.compile(r"```yaml\n(.*?)```", re.DOTALL)
PAGES = [ROOT / "README.md", ROOT / "helm" / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
# Blocks that configure something else (a Traefik dynamic config), by their top-level keys.
FOREIGN = [{"http"}]
# Keys whose validation reads a file named in the block (not present on this machine).
READS_FILES = {"signing_keys", "ui"}


def blocks() -> list[Any]:
    found = []
    for page in PAGES:
        for i, text in enumerate(YAML_BLOCK.findall(page.read_text())):
            # `providers: [...]` stands for "as usual" in prose examples.
            data = yaml.safe_load(text.replace("[...]", "[]"))
            found.append(pytest.param(data, id=f"{page.relative_to(ROOT)}#{i}"))
    values = yaml.safe_load((ROOT / "helm" / "values.yaml").read_text())
    found.append(pytest.param(values, id="helm/values.yaml"))
    return found


def as_config(data: dict[str, Any]) -> dict[str, Any] | None:
    """The gateway config a block shows: itself, a chart's `config:`, or a route fragment."""
    if "config" in data:
        data = data["config"]
    keys = set(data)
    if keys <= set(Config.model_fields):
        return {"routes": [{"path": "/", "upstream": "http://app:3000"}], **data}
    if keys <= set(Route.model_fields):
        return {"routes": [{"path": "/", "upstream": "http://app:3000", **data}]}
    assert keys in FOREIGN, f"a block that is no gateway config: {sorted(keys)}"
    return None


def loaded_form(value: Any) -> Any:
    """What the loader hands to the models: `<key>_file` replaced by a value of its own."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            stem = key.removesuffix("_file")
            if key.endswith("_file") and stem in SECRET_KEYS:
                out[stem] = ["k" * 40] if stem == "secrets" else "s" * 40
            else:
                out[key] = loaded_form(item)
        return out
    if isinstance(value, list):
        return [loaded_form(item) for item in value]
    if isinstance(value, str):
        return re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}", "v" * 40, value)
    return value


@pytest.mark.parametrize("data", blocks())
def test_documented_block_is_a_valid_config(data: dict[str, Any]) -> None:
    """The schema editors use accepts the block as written (`*_file`, `${ENV}`), and the
    models accept it as the loader would hand it over."""
    config = as_config(data)
    if config is None:
        return
    jsonschema.validate(config, config_json_schema())
    tracing = config.get("tracing", {}).get("enabled") and not find_spec("opentelemetry")
    if not READS_FILES & set(config) and not tracing:  # tracing needs its optional extra
        Config.model_validate(loaded_form(config))


def test_schema_accepts_file_keys_env_and_units_and_rejects_typos() -> None:
    """`client_secret_file`, `secrets_file`, `${PORT}`, `15m` and `10MiB` are valid in the
    published schema; an unknown key still is not."""
    schema = config_json_schema()
    good = {
        "listen": {"port": "${PORT:-8080}", "shutdown_timeout": "25s"},
        "limits": {"max_body_size": "10MiB"},
        "routes": [{"path": "/", "upstream": "http://app", "timeouts": {"read": "2m"}}],
        "providers": [{"name": "op", "issuer": "https://op", "client_id": "c",
                       "client_secret_file": "/run/secret"}],
        "sessions": {"secrets_file": "/run/keys", "idle_timeout": "15m",
                     "absolute_timeout": "8h", "redis": {"password_file": "/run/pw"}},
    }  # fmt: skip
    jsonschema.validate(good, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**good, "routes": [{"path": "/", "upstrem": "http://a"}]}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**good, "sessions": {"idle_timeout": "1 hour"}}, schema)
