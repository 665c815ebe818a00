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


def test_shortfall_says_which_need_is_not_met() -> None:
    """The reason names the level the caller has (or 'none') and the wanted ones, or the
    sign-in's age against max_age; the leeway is granted, not more."""
    level = StepUp(acr_values=["mfa", "hwk"])
    assert "authentication level 'pwd' is below mfa / hwk" == shortfall(
        level, {"acr": "pwd"}, LEVELS, NOW, 0
    )
    assert "authentication level 'none' is below mfa / hwk" == shortfall(
        level, {"acr": 3}, LEVELS, NOW, 0
    )
    long_acr = "urn:" + "x" * 100
    assert f"authentication level {long_acr[:60]!r} is below mfa / hwk" == shortfall(
        level, {"acr": long_acr}, LEVELS, NOW, 0
    )
    recent = StepUp(max_age=60)
    assert "no auth_time, so the sign-in's age is unknown" == shortfall(recent, {}, [], NOW, 5)
    assert shortfall(recent, {"auth_time": NOW - 65}, [], NOW, 5) is None
    assert "signed in 65 s ago, more than max_age 60" == shortfall(
        recent, {"auth_time": NOW - 65.5}, [], NOW, 5
    )
    assert shortfall(recent, {"auth_time": int(NOW) - 60}, [], NOW, 0) is None


def test_a_level_below_every_wanted_one_is_refused() -> None:
    """Ordered levels lift a caller only to a level at or above the lowest wanted one
    that the order knows; wanted levels the order does not know lift nobody."""
    assert not acr_meets("mfa", ["hwk"], LEVELS)
    assert acr_meets("hwk", ["other", "mfa"], LEVELS)
    assert not acr_meets("hwk", ["other"], LEVELS)
    assert not acr_meets(None, ["mfa"], LEVELS)
    assert acr_meets("mfa", ["mfa"], [])


def test_higher_acr_keeps_the_first_of_equal_rank() -> None:
    """Two values the order does not rank (or the same level) keep the session's value."""
    assert "first" == higher_acr("first", "second", LEVELS)
    assert "first" == higher_acr("first", ["mfa"], LEVELS)
    assert None is higher_acr(None, "unknown", LEVELS)
    assert "pwd" == higher_acr(None, "pwd", LEVELS)


def test_authorize_params_without_a_session_or_a_level() -> None:
    """Without a session's claims no prompt=login is added; each parameter is sent only
    for what the step-up names."""
    assert {"acr_values": "mfa"} == authorize_params(StepUp(acr_values=["mfa"]), None, LEVELS)
    assert {"max_age": "0"} == authorize_params(StepUp(max_age=0), {"acr": "pwd"}, LEVELS)
    assert {"acr_values": "mfa", "prompt": "login"} == authorize_params(
        StepUp(acr_values=["mfa"]), {}, LEVELS
    )
