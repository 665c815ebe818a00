"""Step-up: does a caller's authentication (acr level, auth_time) meet a route's needs?

Pure functions. A shortfall is a plain reason; the caller turns it into a redirect to
the provider (a browser) or an RFC 9470 challenge (an API client).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gateway.config.model import StepUp


def acr_meets(acr: Any, wanted: Sequence[str], levels: Sequence[str]) -> bool:
    """Whether `acr` is one of `wanted`, or (with ordered `levels`) at or above the lowest."""
    if not isinstance(acr, str):
        return False
    if acr in wanted:
        return True
    known = [levels.index(w) for w in wanted if w in levels]
    return acr in levels and bool(known) and levels.index(acr) >= min(known)


def higher_acr(first: Any, second: Any, levels: Sequence[str]) -> Any:
    """The higher of two acr values by `levels` (unknown values rank lowest)."""

    def rank(value: Any) -> int:
        return levels.index(value) if isinstance(value, str) and value in levels else -1

    return second if rank(second) > rank(first) else first


def shortfall(
    step_up: StepUp, claims: dict[str, Any], levels: Sequence[str], now: float, leeway: float
) -> str | None:
    """None when the claims meet the step-up, else why not (config words and the level)."""
    if step_up.acr_values and not acr_meets(claims.get("acr"), step_up.acr_values, levels):
        shown = claims.get("acr") if isinstance(claims.get("acr"), str) else "none"
        return f"authentication level {str(shown)[:60]!r} is below {' / '.join(step_up.acr_values)}"
    if step_up.max_age is not None:
        auth_time = claims.get("auth_time")
        if not isinstance(auth_time, int | float) or isinstance(auth_time, bool):
            return "no auth_time, so the sign-in's age is unknown"
        if now - auth_time > step_up.max_age + leeway:
            return f"signed in {int(now - auth_time)} s ago, more than max_age {step_up.max_age}"
    return None


def authorize_params(
    step_up: StepUp, claims: dict[str, Any] | None, levels: Sequence[str]
) -> dict[str, str]:
    """The authorization request parameters that ask the provider for this step-up.

    `prompt=login` when the level falls short: a provider would otherwise reuse its
    session at the old level; max_age makes the provider judge recency itself."""
    params: dict[str, str] = {}
    if step_up.acr_values:
        params["acr_values"] = " ".join(step_up.acr_values)
        if claims is not None and not acr_meets(claims.get("acr"), step_up.acr_values, levels):
            params["prompt"] = "login"
    if step_up.max_age is not None:
        params["max_age"] = str(step_up.max_age)
    return params
