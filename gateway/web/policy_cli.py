"""`gateway policy test`: decide a route's policy for claims from the command line or a file.

Exit codes, for CI: 0 the outcome is allowed (or, with --expect, as expected); 1 it is
refused (or not as expected); 2 the question itself is wrong (bad JSON, unknown route).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from gateway.config.model import Config
from gateway.errors import BadRequest, UsageError
from gateway.policy.trial import Trial, run_trial


def add_policy_test_parser(sub: Any) -> None:
    test = sub.add_parser("test", help="decide a route's policy for the given claims")
    test.add_argument("-c", "--config", required=True, type=Path, help="YAML config file")
    test.add_argument("--path", default="/", help="request path (picks the route; default /)")
    test.add_argument("--host", default="localhost", help="request host (default localhost)")
    test.add_argument("--route", help="route name or index (default: the one path and host reach)")
    test.add_argument("--method", default="GET", help="request method (default GET)")
    test.add_argument("--client-ip", help="client address (conditions on it refuse without)")
    test.add_argument("--claims", help="claims as a JSON object")
    test.add_argument("--claims-file", type=Path, help="file holding the claims as a JSON object")
    test.add_argument(
        "--claim", action="append", default=[], metavar="NAME=VALUE",
        help="one claim; VALUE is read as JSON when it parses, else as a string (repeatable)",
    )  # fmt: skip
    test.add_argument("--kind", choices=("session", "bearer"), default="session")
    test.add_argument("--scopes", default="", help="granted scopes, space separated")
    test.add_argument("--client-id", help="OAuth client id of a bearer caller")
    test.add_argument("--expect", choices=("allow", "deny"), help="exit 0 only on this outcome")


def _json_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _claims(args: argparse.Namespace) -> dict[str, Any]:
    claims: dict[str, Any] = {}
    sources = [("--claims-file", args.claims_file), ("--claims", args.claims)]
    for option, source in sources:
        if source is None:
            continue
        try:
            text = source.read_text() if isinstance(source, Path) else source
            value = json.loads(text)
        except (OSError, ValueError) as exc:
            raise UsageError(f"{option}: not readable as JSON: {exc}") from None
        if not isinstance(value, dict):
            raise UsageError(f"{option}: expected a JSON object of claims")
        claims.update(value)
    for item in args.claim:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise UsageError(f"--claim {item!r}: expected NAME=VALUE")
        claims[name] = _json_value(value)
    return claims


def policy_test(args: argparse.Namespace, config: Config) -> int:
    """Print the decision and the route; return the exit code (module docstring)."""
    try:
        trial = Trial(
            claims=_claims(args),
            path=args.path,
            host=args.host,
            method=args.method,
            client_ip=args.client_ip,
            kind=args.kind,
            scopes=frozenset(args.scopes.split()),
            client_id=args.client_id,
            route=args.route,
        )
        route, decision = run_trial(config, trial)
    except (UsageError, BadRequest) as exc:
        print(f"gateway policy test: {exc}", file=sys.stderr)
        return 2
    if decision.allowed:
        print(f"allow: route {route.name}")
    else:
        print(f"deny ({decision.status}): route {route.name}: {decision.reason}")
    outcome = "allow" if decision.allowed else "deny"
    return 0 if outcome == (args.expect or "allow") else 1
