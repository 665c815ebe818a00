"""`gateway check` against the real OP, Redis and upstream: the day-one mistakes it must catch,
and `gateway run` refusing, in the same words, every error `check` reports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis as redis_sync
import yaml

from tests.support.op import OidcProvider
from tests.support.ports import free_port
from tests.support.redis import RedisServer

SECRET = "s" * 40
REDIRECT = "https://gw.example.com/_gateway/callback"


def gateway(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args], capture_output=True, text=True, timeout=timeout
    )


def check(tmp_path: Path, config: dict[str, Any], *extra: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(config))
    return gateway("check", "-c", str(path), *extra)


def lines(result: subprocess.CompletedProcess[str], level: str) -> list[str]:
    return [line for line in result.stdout.splitlines() if line.startswith(f"[{level}")]


def provider_config(op: OidcProvider, client: dict[str, Any], **settings: Any) -> dict[str, Any]:
    return {
        "name": "op",
        "issuer": op.issuer,
        "client_id": client["client_id"],
        "client_secret": client.get("client_secret", "x" * 32),
        "allow_insecure_http": True,
        "allow_private_network": True,
        **settings,
    }


def base_config(upstream: str, **extra: Any) -> dict[str, Any]:
    return {
        "public_url": "https://gw.example.com",
        "routes": [{"path": "/", "upstream": upstream, "auth": "public"}],
        "sessions": {"secrets": [SECRET]},
        **extra,
    }


def test_redirect_uris_come_first_and_right_secret_passes(
    tmp_path: Path, oidc_provider: OidcProvider, upstream: str
) -> None:
    """The first lines name the URIs to register (redirect first), and a registered client's
    credentials are confirmed by the OP refusing a made-up code (invalid_grant)."""
    client = oidc_provider.register_client(redirect_uris=[REDIRECT])
    config = base_config(upstream, providers=[provider_config(oidc_provider, client)])
    result = check(tmp_path, config)
    out = result.stdout.splitlines()
    assert out[0] == "Register at provider 'op':", result.stdout
    assert out[1].split() == ["redirect_uri:", REDIRECT]
    assert out[2].split() == [
        "post_logout_redirect_uri:",
        "https://gw.example.com/_gateway/logged-out",
    ]
    assert "client credentials accepted (client_secret_basic)" in result.stdout
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize(
    ("registered", "configured", "why"),
    [
        ({}, {"client_secret": "not-the-secret-" + "x" * 20}, "wrong secret"),
        ({}, {"token_endpoint_auth_method": "none"}, "public client, confidential at the OP"),
    ],
)  # fmt: skip
def test_wrong_client_credentials_are_an_error(
    tmp_path: Path,
    oidc_provider: OidcProvider,
    upstream: str,
    registered: dict[str, Any],
    configured: dict[str, Any],
    why: str,
) -> None:
    """A wrong client secret or auth method, which used to pass with 0 errors and then fail
    every login, is an error naming the keys to fix (exit 1)."""
    client = oidc_provider.register_client(redirect_uris=[REDIRECT], **registered)
    config = base_config(upstream, providers=[provider_config(oidc_provider, client, **configured)])
    result = check(tmp_path, config)
    assert result.returncode == 1, (why, result.stdout)
    [error] = lines(result, "ERROR")
    assert "refused the client credentials (invalid_client)" in error
    assert "check client_id, client_secret and token_endpoint_auth_method" in error
    assert "not-the-secret" not in result.stdout + result.stderr


def test_redis_down_and_wrong_password_are_errors(tmp_path: Path, upstream: str) -> None:
    """Redis unreachable, or reachable with the wrong password, is an error; the right
    password passes after a write and read in the gateway's namespace."""
    down = {"store": "redis", "secrets": [SECRET],
            "redis": {"url": f"redis://127.0.0.1:{free_port()}/0", "timeout": 0.5}}  # fmt: skip
    result = check(tmp_path, base_config(upstream, sessions=down))
    assert result.returncode == 1
    assert any("cannot reach Redis" in line for line in lines(result, "ERROR")), result.stdout

    server = RedisServer(tmp_path / "redis")
    server.start()
    try:
        redis_sync.Redis(port=server.port).config_set("requirepass", "right-password-123")
        for password, expected in [("wrong-password-456", 1), ("right-password-123", 0)]:
            sessions = {"store": "redis", "secrets": [SECRET],
                        "redis": {"url": f"redis://127.0.0.1:{server.port}/0",
                                  "password": password, "timeout": 1}}  # fmt: skip
            result = check(tmp_path, base_config(upstream, sessions=sessions))
            assert result.returncode == expected, result.stdout
            if expected:
                [error] = lines(result, "ERROR")
                assert "Redis refused the password" in error
                assert password not in result.stdout
            else:
                assert "signed in; wrote, read and deleted gw:check:" in result.stdout
    finally:
        server.ping = lambda: True  # type: ignore[method-assign]  # stop() pings without auth
        server.stop()


def test_bearer_issuer_jwks_is_probed(
    tmp_path: Path, oidc_provider: OidcProvider, upstream: str
) -> None:
    """A bearer issuer's discovery and JWKS are loaded live; an unreachable JWKS is an error."""
    live = {"issuer": oidc_provider.issuer, "audiences": ["api"],
            "allow_insecure_http": True, "allow_private_network": True}  # fmt: skip
    routes = [{"path": "/", "upstream": upstream, "auth": "bearer"}]
    result = check(tmp_path, base_config(upstream, routes=routes, bearer={"issuers": [live]}))
    assert "bearer.issuers[0]: the JWKS holds" in result.stdout, result.stdout
    assert result.returncode == 0, result.stdout
    dead = {**live, "discovery": False, "jwks_uri": f"http://127.0.0.1:{free_port()}/jwks"}
    result = check(tmp_path, base_config(upstream, routes=routes, bearer={"issuers": [dead]}))
    assert result.returncode == 1
    [error] = lines(result, "ERROR")
    assert error.startswith("[ERROR] bearer.issuers[0]: cannot load the JWKS"), error


def test_upstream_down_is_a_warning(tmp_path: Path, upstream: str) -> None:
    """An unreachable upstream is a warning (it may start later), a live one is confirmed."""
    dead = f"http://127.0.0.1:{free_port()}"
    routes = [{"path": "/", "upstream": upstream, "auth": "public"},
              {"path": "/dead", "upstream": dead, "auth": "public"}]  # fmt: skip
    result = check(tmp_path, base_config(upstream, routes=routes))
    assert f"[OK   ] routes[0].upstream: {upstream} answers (HTTP" in result.stdout
    assert f"[WARN ] routes[1].upstream: {dead} is unreachable" in result.stdout
    assert result.returncode == 0, result.stdout


def test_schema_and_rule_errors_in_one_pass(tmp_path: Path) -> None:
    """A typo, a bad value, duplicate route names, a login route with no provider and Redis
    with no secrets are all reported by one run, with key paths and a spelling hint."""
    config = {
        "routes": [
            {"path": "/", "upstrem": "http://127.0.0.1:9", "auth": "public"},
            {"name": "app", "path": "/a", "upstream": "http://127.0.0.1:9", "auth": "public"},
            {"name": "app", "path": "/b", "upstream": "http://127.0.0.1:9", "auth": "login"},
            {"path": "/c", "upstream": "http://127.0.0.1:9", "auth": "public",
             "timeouts": {"read": "soon"}},
        ],
        "sessions": {"store": "redis"},
    }  # fmt: skip
    result = check(tmp_path, config, "--offline")
    errors = lines(result, "ERROR")
    expected = [
        "routes[0].upstrem: unknown key (did you mean `upstream`?)",
        "routes[3].timeouts.read:",
        "routes[2]: auth 'login' needs a provider, none configured",
        "routes[2].name: 'app' is used by",
        "sessions.secrets: not set",
    ]
    for fragment in expected:
        assert any(fragment in line for line in errors), (fragment, result.stdout)
    assert result.returncode == 2
    assert "Traceback" not in result.stdout + result.stderr


RULE_ERRORS = [
    ({"routes": [{"path": "/", "upstream": "http://127.0.0.1:9"}]},
     "routes[0]: auth 'login' needs a provider, none configured"),
    ({"routes": [{"path": "/", "upstream": "http://127.0.0.1:9", "auth": "public"}],
      "sessions": {"store": "redis"}},
     "sessions.secrets: not set: the redis store is shared across instances"),
    ({"routes": [{"name": "x", "path": "/", "upstream": "http://127.0.0.1:9", "auth": "public"},
                 {"name": "x", "path": "/b", "upstream": "http://127.0.0.1:9", "auth": "public"}]},
     "routes[1].name: 'x' is used by another route too"),
    ({"routes": [{"path": "/", "upstream": "http://127.0.0.1:9", "auth": "bearer"}]},
     "routes[0]: auth 'bearer' needs bearer.issuers, none set"),
]  # fmt: skip


@pytest.mark.parametrize(("config", "words"), RULE_ERRORS)
def test_run_refuses_each_error_check_reports(
    tmp_path: Path, config: dict[str, Any], words: str
) -> None:
    """What `check` calls an error, `run` refuses to start on (exit 2), in the same words."""
    result = check(tmp_path, config, "--offline")
    assert f"[ERROR] {words}" in result.stdout, result.stdout
    config = {**config, "listen": {"port": free_port()}, "metrics": {"listen": None}}
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    run = gateway("run", "-c", str(path), timeout=30)
    assert run.returncode == 2, run.stderr
    assert f"  - {words}" in run.stderr
    assert "listening" not in run.stderr
    assert "Traceback" not in run.stderr


def test_run_prints_exactly_the_errors_check_prints(tmp_path: Path) -> None:
    """On a file with many rule errors, `run` refuses with exactly the sentences that
    `check` marks ERROR (no more, no fewer); warnings such as public metrics do not stop it."""
    config = {
        "listen": {"port": free_port(), "workers": 2},
        "metrics": {"listen": None, "public": True},
        "routes": [
            {"name": "a", "path": "/", "upstream": "http://127.0.0.1:9", "provider": "nope"},
            {"name": "a", "path": "/b", "upstream": "http://127.0.0.1:9", "auth": "bearer"},
        ],
        "providers": [
            {"name": "op", "issuer": "https://op.example.com", "client_id": "c",
             "client_secret": "x" * 32},
            {"name": "op", "issuer": "https://op2.example.com", "client_id": "c",
             "client_secret": "x" * 32},
        ],
        "ui": {"provider_logos": {"ghost": "/x.png"}},
    }  # fmt: skip
    result = check(tmp_path, config, "--offline")
    errors = [line.removeprefix("[ERROR] ") for line in lines(result, "ERROR")]
    assert len(errors) >= 5, result.stdout
    assert any(line.startswith("[WARN ] metrics.public:") for line in lines(result, "WARN"))
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    run = gateway("run", "-c", str(path), timeout=30)
    assert run.returncode == 2
    refused = [line.removeprefix("  - ") for line in run.stderr.splitlines()[1:]]
    assert refused == errors
