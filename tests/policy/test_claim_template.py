"""Claim templates: constants kept, placeholders filled per principal, absent values left out."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from gateway.errors import ConfigError
from gateway.policy.claim_template import compile_template, render_claims
from gateway.types import Principal

ALICE = Principal(
    kind="session",
    issuer="https://op.example",
    subject="alice",
    claims={
        "email": "alice@example.test",
        "groups": ["users", "admins"],
        "org": {"id": 42},
        "names": {"fr": "Zoë"},
        "at": Decimal("1.5"),
    },
    scopes=frozenset({"openid", "email"}),
    session_id="s1",
)
CLIENT = Principal(
    kind="bearer", issuer="https://op.example", subject="svc", claims={}, client_id="svc-app"
)


def render(template: dict[str, Any], principal: Principal = ALICE) -> dict[str, Any]:
    return render_claims(compile_template(template), principal)


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ({"grants": {"identity": "{sub}"}}, {"grants": {"identity": "alice"}}),
        ({"n": 1, "ok": True, "no": None, "s": "x"}, {"n": 1, "ok": True, "no": None, "s": "x"}),
        ({"email": "{claims.email}"}, {"email": "alice@example.test"}),
        ({"roles": "{claims.groups}"}, {"roles": ["users", "admins"]}),
        ({"org": "{claims.org.id}"}, {"org": 42}),
        ({"id": "user|{sub}"}, {"id": "user|alice"}),
        ({"id": "org-{claims.org.id}"}, {"id": "org-42"}),
        ({"list": ["{sub}", "const", "{claims.missing}"]}, {"list": ["alice", "const"]}),
        ({"idp": "{issuer}", "k": "{kind}"}, {"idp": "https://op.example", "k": "session"}),
        ({"scope": "{scope}"}, {"scope": "email openid"}),
        ({"literal": "{{sub}}"}, {"literal": "{sub}"}),
        ({"gone": "{claims.missing}", "half": "x-{claims.missing}"}, {}),
        ({"client": "{client_id}"}, {}),
        ({"roles": "roles: {claims.groups}"}, {"roles": 'roles: ["users","admins"]'}),
        ({"who": "{claims.names}!"}, {"who": '{"fr":"Zoë"}!'}),
        ({"at": "t={claims.at}"}, {"at": 't="1.5"'}),
    ],
)  # fmt: skip
def test_render_fills_placeholders(template: dict[str, Any], expected: dict[str, Any]) -> None:
    """Each template renders to the expected claims for alice."""
    assert expected == render(template)


def test_bearer_principal_fields() -> None:
    """A bearer caller's client_id and sub are available; its absent scope leaves the claim out."""
    assert render({"c": "{client_id}", "s": "{sub}", "x": "{scope}"}, CLIENT) == {
        "c": "svc-app",
        "s": "svc",
    }


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ({"a": "{nope}"}, r"claims\.a: unknown placeholder \{nope\}"),
        ({"a": {"b": ["{claims.}"]}}, r"claims\.a\.b\[0\]: unknown placeholder"),
        ({"a": "{sub"}, r"claims\.a: .*literal braces"),
        ({"a": "{sub!r}"}, "conversions are not supported"),
        ({"a": "{sub:>10}"}, "format specs"),
    ],
)
def test_bad_templates_are_config_errors(template: dict[str, Any], message: str) -> None:
    """A template with an unknown name or broken braces is refused when the config compiles."""
    with pytest.raises(ConfigError, match=message):
        compile_template(template)


def test_an_unknown_placeholder_names_the_known_ones() -> None:
    """The error for an unknown placeholder lists every name that may be used."""
    with pytest.raises(ConfigError) as info:
        compile_template({"a": "{nope}"})
    assert [
        "claims.a: unknown placeholder {nope} "
        "(known: sub, issuer, client_id, scope, kind, claims.NAME)"
    ] == info.value.problems
