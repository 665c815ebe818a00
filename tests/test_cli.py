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


def _run_config(tmp_path: Path, **extra: object) -> Path:
    from tests.support.ports import free_port

    config = {
        "listen": {"port": free_port()},
        "metrics": {"listen": None},
        "routes": [{"path": "/", "upstream": "http://127.0.0.1:9", "auth": "public"}],
        **extra,
    }
    path = tmp_path / "gateway.yaml"
    path.write_text(json.dumps(config))
    return path


def test_busy_port_is_one_line(tmp_path: Path) -> None:
    """`run` on a port another process holds prints one line naming the address and the
    key to change, exits 1, and prints no traceback (it used to print 67 lines)."""
    import socket

    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    try:
        path = _run_config(tmp_path, listen={"host": "127.0.0.1", "port": port})
        result = gateway("run", "-c", str(path))
    finally:
        holder.close()
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"gateway: cannot start: listen: cannot listen on 127.0.0.1:{port}: Address already "
        "in use (another process has it: stop that one or change listen.port)"
    ]
    assert result.stdout == ""


def test_missing_or_unreadable_key_is_one_line(tmp_path: Path) -> None:
    """A TLS key that is missing, or a file that is no key, is named with its key path in
    one line per problem (exit 2, no traceback), by `run` and `check` alike."""
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a key\n")
    tls = {"cert_file": str(tmp_path / "missing.pem"), "key_file": str(garbage)}
    path = _run_config(tmp_path, listen={"port": 1, "tls": tls})
    result = gateway("run", "-c", str(path))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"gateway: configuration {path} is invalid:",
        f"  - listen.tls.cert_file: cannot read '{tmp_path}/missing.pem': No such file or "
        "directory",
        f"  - listen.tls.key_file: '{garbage}' does not hold an unencrypted PEM private key",
    ]
    check = gateway("check", "--offline", "-c", str(path))
    assert f"[ERROR] listen.tls.key_file: '{garbage}' does not hold" in check.stdout
    assert "Traceback" not in check.stdout + check.stderr
