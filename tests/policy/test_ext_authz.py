"""The external authorizer's contract: the decision request the gateway sends, and how
its answer is read (anything but a well-formed allow refuses, saying why)."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from gateway.policy.ext_authz import (
    MAX_HEADER_VALUE,
    ExternalDecision,
    decision_request,
    read_answer,
    request_key,
)
from gateway.types import Principal

ALLOWED = ["X-Authz-Verdict", "X-Tenant"]
CALLER = Principal(
    kind="bearer",
    issuer="https://idp",
    subject="svc-1",
    claims={"sub": "svc-1", "scope": "b a"},
    scopes=frozenset({"b", "a"}),
    client_id="client-9",
)


def test_decision_request_carries_the_whole_request_and_caller() -> None:
    """The authorizer sees route, upper-case method, path with query, host, client
    address and the caller (kind, issuer, subject, claims, sorted scopes, client id)."""
    assert {
        "route": "api",
        "method": "POST",
        "path": "/reports?q=1",
        "host": "app.example",
        "client_ip": "192.0.2.1",
        "principal": {
            "kind": "bearer",
            "issuer": "https://idp",
            "subject": "svc-1",
            "claims": {"sub": "svc-1", "scope": "b a"},
            "scopes": ["a", "b"],
            "client_id": "client-9",
        },
    } == decision_request("api", "post", "/reports?q=1", "app.example", "192.0.2.1", CALLER)


def body(**changes: Any) -> dict[str, Any]:
    return {**decision_request("api", "GET", "/", "app.example", "192.0.2.1", CALLER), **changes}


def test_request_key_is_equal_only_for_identical_requests() -> None:
    """A cached answer is reused only for the very same request: key order does not
    matter, any value does (also 1 against '1'); values JSON cannot hold still key."""
    reordered = dict(reversed(list(body().items())))
    assert request_key(body()) == request_key(reordered)
    assert request_key(body()) != request_key(body(path="/other"))
    assert request_key(body(route=1)) != request_key(body(route="1"))
    key = request_key(body(when=datetime.date(2026, 1, 1)))
    assert 64 == len(key)
    assert key != request_key(body(when=datetime.date(2026, 1, 2)))
    assert request_key(body(route="é")) != request_key(body(route="e"))


# status, answer, decision
ANSWERS: list[tuple[str, int, Any, ExternalDecision]] = [
    ("allow", 200, {"allow": True}, ExternalDecision(True, "authorizer allowed")),
    ("allow with a reason", 200, {"allow": True, "reason": "ok"},
     ExternalDecision(True, "authorizer allowed: ok")),
    ("deny", 200, {"allow": False}, ExternalDecision(False, "authorizer refused")),
    ("deny with a reason", 200, {"allow": False, "reason": "private area"},
     ExternalDecision(False, "authorizer refused: private area")),
    ("deny with an empty reason", 200, {"allow": False, "reason": ""},
     ExternalDecision(False, "authorizer refused")),
    ("a reason that is not text", 200, {"allow": False, "reason": ["x"]},
     ExternalDecision(False, "authorizer refused")),
    ("control characters in the reason", 200, {"allow": False, "reason": "a\r\nb\x1b"},
     ExternalDecision(False, "authorizer refused: a??b?")),
    ("a long reason is cut", 200, {"allow": False, "reason": "r" * 300},
     ExternalDecision(False, "authorizer refused: " + "r" * 200)),
    ("allow with another status", 201, {"allow": True},
     ExternalDecision(False, "authorizer answered HTTP 201")),
    ("a 403", 403, {"allow": True}, ExternalDecision(False, "authorizer answered HTTP 403")),
    ("allow as a string", 200, {"allow": "true"},
     ExternalDecision(False, "authorizer answer has no boolean 'allow'")),
    ("allow as a number", 200, {"allow": 1},
     ExternalDecision(False, "authorizer answer has no boolean 'allow'")),
    ("no allow", 200, {"reason": "x"},
     ExternalDecision(False, "authorizer answer has no boolean 'allow'")),
    ("not an object", 200, [True],
     ExternalDecision(False, "authorizer answer has no boolean 'allow'")),
    ("no body", 200, None, ExternalDecision(False, "authorizer answer has no boolean 'allow'")),
]  # fmt: skip


@pytest.mark.parametrize(
    ("status", "answer", "decision"), [a[1:] for a in ANSWERS], ids=[a[0] for a in ANSWERS]
)
def test_read_answer(status: int, answer: Any, decision: ExternalDecision) -> None:
    """Only HTTP 200 with a boolean `allow` true allows; everything else refuses, and
    the reason (printable, at most 200 characters of the authorizer's) says why."""
    assert decision == read_answer(status, answer, ALLOWED)


def test_only_listed_well_formed_headers_reach_the_upstream() -> None:
    """Headers the config lists (any case, sent under the configured name) pass; an
    unlisted one, a non-string, an over-long or a non-printable value (a CRLF would split
    the upstream request) is dropped."""
    longest = "v" * MAX_HEADER_VALUE
    headers = {
        "x-authz-verdict": "ok",
        "X-TENANT": longest,
        "X-Not-Listed": "x",
        "Authorization": "Bearer forged",
    }
    assert ExternalDecision(
        True, "authorizer allowed", (("X-Authz-Verdict", "ok"), ("X-Tenant", longest))
    ) == read_answer(200, {"allow": True, "headers": headers}, ALLOWED)
    for bad in (longest + "v", "a\r\nX-Injected: 1", 7, ""):
        decision = read_answer(200, {"allow": True, "headers": {"X-Tenant": bad}}, ALLOWED)
        expected: tuple[tuple[str, str], ...] = (("X-Tenant", ""),) if bad == "" else ()
        assert expected == decision.headers, bad
    assert () == read_answer(200, {"allow": True, "headers": [["X-Tenant", "a"]]}, ALLOWED).headers
    assert () == read_answer(200, {"allow": False, "headers": {"X-Tenant": "a"}}, ALLOWED).headers
