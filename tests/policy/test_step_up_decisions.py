"""Step-up decisions (acr level, auth_time recency) and the parameters that ask for them."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from gateway.config.model import StepUp
from gateway.policy.step_up import acr_meets, authorize_params, higher_acr, shortfall

LEVELS = ["pwd", "mfa", "hwk"]
NOW = 1_000_000.0

# name, step_up, claims, levels, shortfall expected?
CASES: list[tuple[str, dict[str, Any], dict[str, Any], list[str], bool]] = [
    ("listed acr", {"acr_values": ["mfa"]}, {"acr": "mfa"}, [], False),
    ("unlisted acr, no order", {"acr_values": ["mfa"]}, {"acr": "hwk"}, [], True),
    ("higher acr by order", {"acr_values": ["mfa"]}, {"acr": "hwk"}, LEVELS, False),
    ("lower acr by order", {"acr_values": ["mfa"]}, {"acr": "pwd"}, LEVELS, True),
    ("lowest of several wanted", {"acr_values": ["hwk", "mfa"]}, {"acr": "mfa"}, LEVELS, False),
    ("acr outside the order", {"acr_values": ["mfa"]}, {"acr": "other"}, LEVELS, True),
    ("no acr", {"acr_values": ["mfa"]}, {}, LEVELS, True),
    ("acr not a string", {"acr_values": ["mfa"]}, {"acr": ["mfa"]}, LEVELS, True),
    ("recent enough", {"max_age": 60}, {"auth_time": NOW - 60}, [], False),
    ("too old", {"max_age": 60}, {"auth_time": NOW - 61}, [], True),
    ("no auth_time", {"max_age": 60}, {}, [], True),
    ("auth_time not a number", {"max_age": 60}, {"auth_time": "now"}, [], True),
    ("auth_time true is not a number", {"max_age": 60}, {"auth_time": True}, [], True),
    ("both met", {"acr_values": ["mfa"], "max_age": 5}, {"acr": "mfa", "auth_time": NOW}, [],
     False),
    ("level met, too old", {"acr_values": ["mfa"], "max_age": 5},
     {"acr": "mfa", "auth_time": NOW - 100}, [], True),
]  # fmt: skip


@pytest.mark.parametrize(
    ("step_up", "claims", "levels", "short"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_shortfall(
    step_up: dict[str, Any], claims: dict[str, Any], levels: list[str], short: bool
) -> None:
    """A caller meets a step-up by a listed (or, with levels, higher) acr and a fresh
    enough auth_time; anything missing or malformed falls short."""
    reason = shortfall(StepUp.model_validate(step_up), claims, levels, NOW, 0)
    assert (reason is not None) == short, reason


def test_higher_acr_keeps_the_highest_level() -> None:
    """A session's acr never goes down: the higher of old and new by the provider's order."""
    assert "mfa" == higher_acr("mfa", "pwd", LEVELS)
    assert "hwk" == higher_acr("mfa", "hwk", LEVELS)
    assert "pwd" == higher_acr("unknown", "pwd", LEVELS)
    assert "mfa" == higher_acr("mfa", None, LEVELS)
    assert acr_meets("hwk", ["mfa"], LEVELS)
    assert not acr_meets("hwk", ["mfa"], [])


def test_authorize_params_force_a_new_login_only_when_the_level_falls_short() -> None:
    """acr_values and max_age are always asked for; prompt=login only when the session's
    level is too low (the provider would reuse its session otherwise)."""
    step_up = StepUp(acr_values=["mfa", "hwk"], max_age=30)
    assert {"acr_values": "mfa hwk", "max_age": "30", "prompt": "login"} == authorize_params(
        step_up, {"acr": "pwd"}, LEVELS
    )
    assert {"acr_values": "mfa hwk", "max_age": "30"} == authorize_params(
        step_up, {"acr": "mfa"}, LEVELS
    )


def test_empty_step_up_is_a_config_error() -> None:
    """A step_up naming neither acr_values nor max_age would look enforced and not be."""
    with pytest.raises(ValidationError, match="give acr_values, max_age or both"):
        StepUp()
