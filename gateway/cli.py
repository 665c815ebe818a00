"""Command line: run, check, config schema, sessions; clear messages, no tracebacks."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from gateway import __version__
from gateway.config import load_config
from gateway.config.load import format_validation_errors
from gateway.config.model import Config
from gateway.errors import ConfigError, GatewayError, StartupError
from gateway.log import setup_logging
from gateway.web.policy_cli import add_policy_test_parser, policy_test


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gateway", description="Authenticating reverse proxy (OpenID Connect)."
    )
    parser.add_argument("--version", action="version", version=f"gateway {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="serve with the given config")
    run.add_argument("-c", "--config", required=True, type=Path, help="YAML config file")
    run.add_argument("--host", help="listen address (overrides listen.host)")
    run.add_argument("--port", type=int, help="listen port (overrides listen.port)")
    run.add_argument("--workers", type=int, help="worker processes (overrides listen.workers)")
    run.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)

    check = sub.add_parser(
        "check", help="URIs to register, every config problem at once, then live probes"
    )
    check.add_argument("-c", "--config", required=True, type=Path, help="YAML config file")
    check.add_argument(
        "--offline",
        action="store_true",
        help="skip the live probes (providers, client credentials, Redis, upstreams)",
    )
    check.add_argument(
        "--explain", action="store_true", help="print each route's policy in plain words"
    )

    policy = sub.add_parser("policy", help="try a route's policy without running the gateway")
    p_sub = policy.add_subparsers(dest="policy_command", required=True, metavar="SUBCOMMAND")
    add_policy_test_parser(p_sub)

    cfg = sub.add_parser("config", help="configuration helpers")
    cfg_sub = cfg.add_subparsers(dest="config_command", required=True, metavar="SUBCOMMAND")
    cfg_sub.add_parser("schema", help="print the JSON Schema of the config file")
    cfg_sub.add_parser("example", help="print the annotated example config (every key)")
    cfg_sub.add_parser("reference", help="print the Markdown configuration reference")

    sessions = sub.add_parser("sessions", help="list or revoke sessions in the configured store")
    s_sub = sessions.add_subparsers(dest="sessions_command", required=True, metavar="SUBCOMMAND")
    for name in ("list", "revoke"):
        p = s_sub.add_parser(name, help=f"{name} sessions of a user or provider session")
        p.add_argument("-c", "--config", required=True, type=Path, help="YAML config file")
        who = p.add_mutually_exclusive_group(required=True)
        who.add_argument("--sub", help="the user's subject (sub claim)")
        who.add_argument("--sid", help="the provider's session id (sid claim)")
        p.add_argument("--provider", help="provider name (default: every provider)")
        if name == "list":
            who.add_argument("--all", action="store_true", help="every live session")
            p.add_argument(
                "--page-size",
                type=int,
                default=100,
                metavar="N",
                help="sessions read per store round trip with --all (default 100)",
            )
            p.add_argument("--json", action="store_true", help="one JSON array, for scripts")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "config":
            return _config_command(args.config_command)
        if args.command == "check":
            return _check(args)
        config = load_config(args.config)
        if args.command == "run":
            return _run(args, config)
        if args.command == "policy":
            return policy_test(args, config)
        if args.command == "sessions":
            from gateway.web.admin_cli import sessions_command

            code: int = asyncio.run(sessions_command(args, config))
            return code
    except StartupError as exc:
        for problem in exc.problems:
            print(f"gateway: cannot start: {problem}", file=sys.stderr)
        return 1
    except ConfigError as exc:
        print(f"gateway: configuration {args_config(args)} is invalid:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 2
    except GatewayError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 1


def _config_command(command: str) -> int:
    from gateway.config.reference import example_yaml, markdown_reference

    if command == "schema":
        from gateway.config.schema import config_json_schema

        print(json.dumps(config_json_schema(), indent=2))
    elif command == "example":
        print(example_yaml(), end="")
    else:
        print(markdown_reference(), end="")
    return 0


def args_config(args: Any) -> str:
    return str(getattr(args, "config", ""))


def _run(args: argparse.Namespace, config: Config) -> int:
    from gateway.web.rules import refuse_on_errors
    from gateway.web.server import serve, serve_workers

    config = with_overrides(config, {"host": args.host, "port": args.port, "workers": args.workers})
    refuse_on_errors(config)  # what `gateway check` calls an error, in its words
    listen = config.listen
    setup_logging(config.logging.format, config.logging.level)
    _setup_audit(config)
    if listen.workers > 1:
        return serve_workers(args.config, listen.workers, _override_args(args))
    return serve(config, args.config, reuse_port=args.reuse_port)


def _setup_audit(config: Config) -> None:
    from gateway.audit import setup_audit

    audit = config.logging.audit
    try:
        setup_audit(audit)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise StartupError([f"logging.audit.file: cannot open {audit.file!r}: {reason}"]) from None


def with_overrides(config: Config, listen: dict[str, Any]) -> Config:
    """``config`` with the command line's listen.* values, validated as the file is."""
    given = {key: value for key, value in listen.items() if value is not None}
    if not given:
        return config
    # Sections are passed as validated models (their secrets intact); the listen section
    # and the cross-section checks (e.g. workers with a memory store) run again.
    fields = {name: getattr(config, name) for name in type(config).model_fields}
    fields["listen"] = {**dict(config.listen), **given}
    try:
        return Config.model_validate(fields)
    except ValidationError as exc:
        raise ConfigError(format_validation_errors(exc)) from None


def _override_args(args: argparse.Namespace) -> list[str]:
    out: list[str] = []
    if args.host:
        out += ["--host", args.host]
    if args.port:
        out += ["--port", str(args.port)]
    return out


def _check(args: argparse.Namespace) -> int:
    from gateway.web.checks import run_checks

    setup_logging("text", "warning")
    if args.explain:
        from gateway.policy.explain import explain_route

        for i, route in enumerate(load_config(args.config).routes):
            print(f"routes[{i}] {route.name or f'route{i}'} ({route.host or '*'}{route.path}):")
            print("".join(f"  - {line}\n" for line in explain_route(route)), end="")
    return asyncio.run(run_checks(args.config, offline=args.offline))
