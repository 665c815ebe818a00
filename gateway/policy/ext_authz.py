"""The external authorizer's contract (close to Envoy's ext_authz HTTP service): the
decision request the gateway POSTs, and how its answer is read. Pure functions.

Request body (JSON): ``{"route", "method", "path", "host", "client_ip", "principal":
{"kind", "issuer", "subject", "claims", "scopes", "client_id"}}``; ``path`` is the
canonical decoded path with the raw query string.

Answer: HTTP 200 with ``{"allow": true|false, "reason": "...", "headers": {...}}``. Any
other status, a body that is not such an object, or no answer in time refuses.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from gateway.types import Principal

MAX_HEADER_VALUE = 4096


@dataclass(frozen=True, slots=True)
class ExternalDecision:
    """The authorizer's answer: allow or not, why, and headers for the upstream."""

    allowed: bool
    reason: str
    headers: tuple[tuple[str, str], ...] = ()


def decision_request(
    route: str, method: str, path: str, host: str, client_ip: str, principal: Principal
) -> dict[str, Any]:
    return {
        "route": route,
        "method": method.upper(),
        "path": path,
        "host": host,
        "client_ip": client_ip,
        "principal": {
            "kind": principal.kind,
            "issuer": principal.issuer,
            "subject": principal.subject,
            "claims": principal.claims,
            "scopes": sorted(principal.scopes),
            "client_id": principal.client_id,
        },
    }


def request_key(body: dict[str, Any]) -> str:
    """A cache key for one decision request: equal only for identical requests."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _printable(text: str, limit: int = 200) -> str:
    return "".join(ch if ch.isprintable() else "?" for ch in text[:limit])


def read_answer(status: int, body: Any, allowed_headers: Iterable[str]) -> ExternalDecision:
    """The decision in an answer; anything malformed is a refusal that says why."""
    if status != 200:
        return ExternalDecision(False, f"authorizer answered HTTP {status}")
    if not isinstance(body, dict) or not isinstance(body.get("allow"), bool):
        return ExternalDecision(False, "authorizer answer has no boolean 'allow'")
    reason = body.get("reason")
    words = _printable(reason) if isinstance(reason, str) else ""
    if not body["allow"]:
        return ExternalDecision(False, "authorizer refused" + (f": {words}" if words else ""))
    wanted = {name.lower(): name for name in allowed_headers}
    given = body.get("headers")
    headers = tuple(
        (wanted[name.lower()], value)
        for name, value in (given.items() if isinstance(given, dict) else ())
        if name.lower() in wanted
        and isinstance(value, str)
        and len(value) <= MAX_HEADER_VALUE
        and value.isprintable()
    )
    return ExternalDecision(True, "authorizer allowed" + (f": {words}" if words else ""), headers)
