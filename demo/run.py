"""Start the demo: the OIDC provider, the legacy app and the gateway (and Redis with --redis).

Prints "Demo ready" only once each of its own children answers; Ctrl-C or SIGTERM stops all
of them. Ports: the provider on the base port (DEMO_BASE_PORT, default 9400), the legacy app
on base+1, the gateway on base+2, Redis on base+3.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sys
import urllib.request
from pathlib import Path

import yaml

from demo.supervisor import STOP_SIGNALS, Child, DemoError, StopRequested, Supervisor

ROOT = Path(__file__).resolve().parent.parent
RUN = ROOT / "demo" / "run"
CLIENT_ID = "demo-gateway"
CLIENT_SECRET = "demo-gateway-secret-0123456789abcdef"


def answers(url: str, check: str = "") -> bool:
    """True if GET url answers 200 (and its body contains `check`)."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - our loopback URL
            return bool(response.status == 200 and check in response.read().decode())
    except (OSError, ValueError):
        return False


def redis_answers(port: int) -> bool:
    """True if a Redis server on 127.0.0.1:port answers PING."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


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
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "scopes": ["openid", "email", "profile", "groups", "offline_access"],
                "extra_auth_params": {"prompt": "consent"},
                "allow_insecure_http": True,
                "allow_private_network": True,
            }
        ],
        "sessions": sessions,
    }


def op_clients(base: str) -> list[dict[str, object]]:
    return [
        {
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "grant_types": ["authorization_code", "refresh_token"],
            "redirect_uris": [f"{base}/_gateway/callback"],
            "post_logout_redirect_uris": [f"{base}/_gateway/logged-out"],
            "backchannel_logout_uri": f"{base}/_gateway/backchannel-logout",
            "backchannel_logout_session_required": True,
        }
    ]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--redis", action="store_true", help="keep sessions in a local Redis")
    parser.add_argument(
        "--base-port",
        type=int,
        default=int(os.environ.get("DEMO_BASE_PORT", "9400")),
        help="first of the four ports (default: $DEMO_BASE_PORT or 9400)",
    )
    parser.add_argument("--port", type=int, help="gateway port (default: base port + 2)")
    return parser.parse_args()


def run(args: argparse.Namespace, supervisor: Supervisor) -> None:
    op_port, up_port, redis_port = args.base_port, args.base_port + 1, args.base_port + 3
    gw_port = args.port or args.base_port + 2
    base, op = f"http://127.0.0.1:{gw_port}", f"http://127.0.0.1:{op_port}"
    upstream = f"http://127.0.0.1:{up_port}"
    ports = {"OIDC provider": op_port, "legacy app": up_port, "gateway": gw_port}
    if args.redis:
        ports["Redis"] = redis_port
    supervisor.refuse_busy_ports(ports)  # all at once, before anything starts

    (RUN / "clients.json").write_text(json.dumps(op_clients(base)))
    op_env = {
        "OP_PORT": str(op_port),
        "OP_CLIENTS_FILE": str(RUN / "clients.json"),
        "OP_KEYS_FILE": str(RUN / "op-keys.json"),
    }
    discovery = f"{op}/.well-known/openid-configuration"
    supervisor.start(
        Child(
            "OIDC provider",
            "op",
            ["node", "tests/op/op.mjs"],
            op_port,
            lambda: answers(discovery, f'"issuer":"{op}"'),
            op_env,
        )
    )
    supervisor.start(
        Child(
            "legacy app",
            "upstream",
            [sys.executable, "-m", "demo.upstream", "--port", str(up_port)],
            up_port,
            lambda: answers(upstream + "/", "Legacy app"),
        )
    )
    redis_url = None
    if args.redis:
        redis_argv = ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1"]
        supervisor.start(
            Child(
                "Redis",
                "redis",
                [*redis_argv, "--save", "", "--appendonly", "no"],
                redis_port,
                lambda: redis_answers(redis_port),
            )
        )
        redis_url = f"redis://127.0.0.1:{redis_port}/0"
    config = RUN / "gateway.yaml"
    config.write_text(yaml.safe_dump(gateway_config(base, op, upstream, redis_url)))
    supervisor.start(
        Child(
            "gateway",
            "gateway",
            [sys.executable, "-m", "gateway", "run", "-c", str(config)],
            gw_port,
            lambda: answers(f"{base}/_gateway/healthz"),
        )
    )
    pids = ", ".join(f"{c.name} {c.proc.pid}" for c in supervisor.children if c.proc)
    print(
        f"\n  Demo ready: open {base}/ and sign in with any name (alice is an admin)\n"
        f"  Provider: {op}   Legacy app (direct): {upstream}/\n"
        f"  Sessions: {'redis ' + redis_url if redis_url else 'memory'}   Logs: {RUN}/\n"
        f"  Processes: {pids}\n"
        "  Ctrl-C stops everything.\n",
        flush=True,
    )
    supervisor.watch()


def main() -> int:
    args = parse_args()
    RUN.mkdir(parents=True, exist_ok=True)
    supervisor = Supervisor(ROOT, RUN)
    supervisor.stop_on_signals()
    try:
        run(args, supervisor)
    except StopRequested as stop:
        supervisor.stop_all()
        print(f"demo: stopped ({stop}); every process it started has exited", flush=True)
        return 0
    except DemoError as exc:
        # the demo ends here: a stop signal now would only interrupt the stopping
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        supervisor.stop_all()
        print(f"demo: {exc}", file=sys.stderr, flush=True)
        return 1
    except BaseException:
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        supervisor.stop_all()
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
