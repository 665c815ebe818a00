"""Start the demo: the OIDC provider, the legacy app and the gateway; Ctrl-C stops all."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
RUN = ROOT / "demo" / "run"


def wait_for(url: str, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - our own loopback URL
                return
        except OSError:
            time.sleep(0.2)
    sys.exit(f"demo: {what} did not start; see {RUN}/*.log")


def start(name: str, cmd: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    log = (RUN / f"{name}.log").open("wb")
    return subprocess.Popen(  # noqa: S603 - fixed argv
        cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env={**os.environ, **(env or {})}
    )


def gateway_config(base: str, op: str, upstream: str, redis_url: str | None) -> dict[str, object]:
    sessions: dict[str, object] = {"cookie_secure": False, "secrets": ["demo-" + "x" * 40]}
    if redis_url:
        sessions.update(store="redis", redis={"url": redis_url})
    return {
        "public_url": base,
        "listen": {"host": "127.0.0.1", "port": int(base.rsplit(":", 1)[1])},
        "logging": {"format": "text"},
        "routes": [{"name": "legacy-app", "path": "/", "upstream": upstream, "auth": "login"}],
        "providers": [
            {
                "name": "demo",
                "label": "Sign in with the demo provider",
                "issuer": op,
                "client_id": "demo-gateway",
                "client_secret": "demo-gateway-secret-0123456789abcdef",
                "scopes": ["openid", "email", "profile", "groups", "offline_access"],
                "extra_auth_params": {"prompt": "consent"},
                "allow_insecure_http": True,
                "allow_private_network": True,
            }
        ],
        "sessions": sessions,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--redis", action="store_true", help="keep sessions in a local Redis")
    parser.add_argument("--port", type=int, default=9402, help="gateway port")
    args = parser.parse_args()
    RUN.mkdir(parents=True, exist_ok=True)
    op_port, up_port, redis_port = 9400, 9401, 9403
    base, op = f"http://127.0.0.1:{args.port}", f"http://127.0.0.1:{op_port}"
    clients = [
        {
            "client_id": "demo-gateway",
            "client_secret": "demo-gateway-secret-0123456789abcdef",
            "grant_types": ["authorization_code", "refresh_token"],
            "redirect_uris": [f"{base}/_gateway/callback"],
            "post_logout_redirect_uris": [f"{base}/_gateway/logged-out"],
            "backchannel_logout_uri": f"{base}/_gateway/backchannel-logout",
            "backchannel_logout_session_required": True,
        }
    ]
    (RUN / "clients.json").write_text(json.dumps(clients))
    procs = [
        start(
            "op",
            ["node", "tests/op/op.mjs"],
            {
                "OP_PORT": str(op_port),
                "OP_CLIENTS_FILE": str(RUN / "clients.json"),
                "OP_KEYS_FILE": str(RUN / "op-keys.json"),
            },
        ),
        start("upstream", [sys.executable, "-m", "demo.upstream", "--port", str(up_port)]),
    ]
    redis_url = None
    if args.redis:
        procs.append(
            start(
                "redis",
                ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", ""],
            )
        )
        redis_url = f"redis://127.0.0.1:{redis_port}/0"
    wait_for(f"{op}/.well-known/openid-configuration", "the OIDC provider")
    config = RUN / "gateway.yaml"
    config.write_text(
        yaml.safe_dump(gateway_config(base, op, f"http://127.0.0.1:{up_port}", redis_url))
    )
    procs.append(start("gateway", [sys.executable, "-m", "gateway", "run", "-c", str(config)]))
    wait_for(f"{base}/_gateway/healthz", "the gateway")
    print(f"\n  Demo ready: open {base}/ and sign in with any name (alice is an admin)")
    print(f"  Provider: {op}   Legacy app (direct): http://127.0.0.1:{up_port}/")
    print(f"  Sessions: {'redis ' + redis_url if redis_url else 'memory'}   Logs: {RUN}/")
    print("  Ctrl-C stops everything.\n")
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=10)


if __name__ == "__main__":
    main()
