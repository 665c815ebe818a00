"""`gateway policy test`: a route's policy decided for claims given by hand (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.config.model import Config
from gateway.errors import UsageError
from gateway.policy.authz import Decision, RequestFacts, decide, override_methods
from gateway.policy.canonical import canonical_path
from gateway.policy.routes import CompiledRoute, RouteTable
from gateway.types import Principal, PrincipalKind


@dataclass(frozen=True, slots=True)
class Trial:
    """One imagined request: who calls, how, from where."""

    claims: dict[str, Any]
    path: str = "/"
    host: str = "localhost"
    method: str = "GET"
    client_ip: str | None = None
    kind: PrincipalKind = "session"
    scopes: frozenset[str] = frozenset()
    client_id: str | None = None
    route: str | None = None  # a route name or index; default: resolved from host and path


def _pick_route(table: RouteTable, trial: Trial, target_decoded: str) -> CompiledRoute:
    routes = list(table)
    if trial.route is None:
        found = table.match(trial.host, target_decoded)
        if found is None:
            raise UsageError(f"no route for host {trial.host!r} and path {trial.path!r}")
        return found
    for route in routes:
        if trial.route in (route.name, str(route.index)):
            return route
    known = ", ".join(r.name for r in routes)
    raise UsageError(f"no route named {trial.route!r} (known: {known})")


def run_trial(config: Config, trial: Trial) -> tuple[CompiledRoute, Decision]:
    """The route the request reaches and the decision its policy takes."""
    path, _, query = trial.path.partition("?")
    target = canonical_path(path or "/")
    route = _pick_route(RouteTable(config.routes), trial, target.decoded)
    claims = {"sub": "policy-test", **trial.claims}
    issuer = str(claims.get("iss", "https://policy-test.invalid"))
    principal = Principal(
        kind=trial.kind,
        issuer=issuer,
        subject=str(claims["sub"]),
        claims=claims,
        scopes=trial.scopes or frozenset(str(claims.get("scope", "")).split()),
        client_id=trial.client_id or claims.get("client_id"),
    )
    facts = RequestFacts(
        (trial.method.upper(), *override_methods(query)),
        route.paths_below(target),
        trial.client_ip,
    )
    return route, decide(route.config.policy, principal, facts)
