"""The command line: clear messages and exit codes, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from gateway import __version__


def gateway(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args], capture_output=True, text=True, timeout=60
    )


def test_check_reports_every_mistake_with_its_key_path(tmp_path: Path) -> None:
    """Three mistakes are all reported with their key paths; exit non-zero, no traceback."""
    config = tmp_path / "bad.yaml"
    config.write_text(
        "routes:\n"
        "  - path: /\n"
        "    upstream: not-a-url\n"
        "  - path: api\n"
        "    upstream: http://127.0.0.1:9000\n"
        "    auth: sometimes\n"
    )
    result = gateway("check", "-c", str(config))
    assert result.returncode == 2
    assert "routes[0].upstream: not a URL" in result.stdout
    assert "routes[1].path: must start with '/'" in result.stdout
    assert "routes[1].auth:" in result.stdout
    assert "Traceback" not in result.stderr + result.stdout


def test_secret_values_never_appear_in_errors(tmp_path: Path) -> None:
    """A config error next to a secret does not print the secret."""
    config = tmp_path / "bad.yaml"
    config.write_text(
        "routes: [{path: /, upstream: 'http://127.0.0.1:1'}]\n"
        "providers:\n"
        "  - name: op\n"
        "    issuer: https://op.example.com\n"
        "    client_id: gw\n"
        "    client_secret: super-secret-value-1234\n"
        "    token_endpoint_auth_method: nonsense\n"
    )
    result = gateway("check", "-c", str(config))
    assert result.returncode == 2
    assert "providers[0].token_endpoint_auth_method" in result.stdout
    assert "super-secret-value-1234" not in result.stderr + result.stdout


def test_secret_from_env_and_file(tmp_path: Path, monkeypatch: object) -> None:
    """`${VAR}` reads the environment and `client_secret_file` reads a file."""
    from gateway.config import load_config

    secret_file = tmp_path / "secret"
    secret_file.write_text("from-a-file\n")
    config = tmp_path / "ok.yaml"
    config.write_text(
        "routes: [{path: /, upstream: '${UPSTREAM}', auth: public}]\n"
        "providers:\n"
        "  - name: op\n"
        "    issuer: https://op.example.com\n"
        "    client_id: gw\n"
        f"    client_secret_file: {secret_file}\n"
    )
    import os

    os.environ["UPSTREAM"] = "http://127.0.0.1:9"
    try:
        loaded = load_config(config)
    finally:
        del os.environ["UPSTREAM"]
    assert loaded.routes[0].upstream == "http://127.0.0.1:9"
    secret = loaded.providers[0].client_secret
    assert secret is not None
    assert secret.reveal() == "from-a-file"
    assert "from-a-file" not in repr(loaded)


def test_missing_env_var_is_named(tmp_path: Path) -> None:
    """An unset ${VAR} is reported with its key path and the variable name."""
    config = tmp_path / "env.yaml"
    config.write_text("routes: [{path: /, upstream: '${NO_SUCH_VAR_XYZ}'}]\n")
    result = gateway("check", "-c", str(config))
    assert result.returncode == 2
    assert "routes[0].upstream: environment variable NO_SUCH_VAR_XYZ is not set" in result.stdout


def test_unreadable_config_file() -> None:
    """A missing file is a one-line error, not a traceback."""
    result = gateway("run", "-c", "/nonexistent/gateway.yaml")
    assert result.returncode == 2
    assert "cannot read config file" in result.stderr
    assert "Traceback" not in result.stderr


def test_schema_is_json_schema_of_the_config() -> None:
    """`gateway config schema` prints a JSON Schema naming the top-level keys."""
    result = gateway("config", "schema")
    assert result.returncode == 0
    schema = json.loads(result.stdout)
    assert {"routes", "providers", "sessions", "bearer"} <= set(schema["properties"])


def test_version() -> None:
    result = gateway("--version")
    assert f"gateway {__version__}" == result.stdout.strip()
