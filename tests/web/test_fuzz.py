"""Arbitrary input never yields a 500 or a traceback: only the documented 4xx answers."""

from __future__ import annotations

import http.client
from typing import Any
from urllib.parse import quote, urlencode

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.config import parse_config
from gateway.errors import ConfigError
from tests.support.op import OidcProvider
from tests.web.login_setup import start_login_gateway

# Header values a client can put on the wire (no CR/LF, latin-1).
HEADER_TEXT = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=300)
FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@pytest.fixture
def gateway(gateway_factory: Any, oidc_provider: OidcProvider, upstream: str) -> Any:
    routes = [
        {"path": "/", "upstream": upstream, "auth": "login"},
        {"path": "/api", "upstream": upstream, "auth": "bearer"},
        {"path": "/pub", "upstream": upstream, "auth": "public"},
    ]
    bearer = {
        "issuers": [
            {
                "issuer": oidc_provider.issuer,
                "audiences": ["x"],
                "allow_insecure_http": True,
                "allow_private_network": True,
            }
        ]
    }
    extra = {
        "bearer": bearer,
        "rate_limit": {"enabled": False},
        "logging": {"level": "error", "access_log": False},
    }
    gw, _ = start_login_gateway(
        gateway_factory, oidc_provider, upstream, routes=routes, extra=extra
    )
    return gw


def status(port: int, method: str, target: str, headers: dict[str, str]) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, target, headers=headers)
        return conn.getresponse().status
    finally:
        conn.close()


@FUZZ
@given(value=HEADER_TEXT)
def test_any_session_cookie_is_just_no_session(gateway: Any, value: str) -> None:
    """Whatever the cookie holds, an API call without a real session gets 400 or 401."""
    code = status(
        gateway.port,
        "GET",
        "/x",
        {"Cookie": f"gateway_session={value}", "Accept": "application/json"},
    )
    assert code in (400, 401)


@FUZZ
@given(
    state=HEADER_TEXT,
    code=HEADER_TEXT,
    error=st.one_of(st.none(), HEADER_TEXT),
    iss=st.one_of(st.none(), HEADER_TEXT),
)
def test_any_callback_is_a_400(
    gateway: Any, state: str, code: str, error: str | None, iss: str | None
) -> None:
    """Forged callbacks (any state, code, error, iss) end in 400, never in a session or 500."""
    params = {
        "state": state,
        "code": code,
        **({"error": error} if error is not None else {}),
        **({"iss": iss} if iss is not None else {}),
    }
    assert status(gateway.port, "GET", "/_gateway/callback?" + urlencode(params), {}) == 400


@FUZZ
@given(value=HEADER_TEXT)
def test_any_authorization_header_is_400_or_401(gateway: Any, value: str) -> None:
    """Any Authorization value on a bearer route is refused with 400 or 401."""
    assert status(gateway.port, "GET", "/api/x", {"Authorization": value}) in (400, 401)


@FUZZ
@given(path=st.text(max_size=200))
def test_any_path_is_routed_or_refused(gateway: Any, path: str) -> None:
    """Any path gets a routing answer: 200 public, 401 protected, 400 or 404 — never 5xx."""
    target = "/" + quote(path, safe="/%;:@&=+$,!~*'()?#")
    code = status(gateway.port, "GET", target.split("#")[0], {"Accept": "application/json"})
    assert code in (200, 400, 401, 404, 405)


def config_problems(text: str) -> list[str] | None:
    """None for a valid config, else the reported problems (any other exception escapes)."""
    try:
        parse_config(text)
    except ConfigError as exc:
        return exc.problems
    return None


YAML_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3)
    ),
    max_leaves=12,
)
KEYS = st.sampled_from(
    [
        "routes",
        "providers",
        "sessions",
        "bearer",
        "listen",
        "limits",
        "prefix",
        "trusted_proxies",
        "identity",
        "colour",
    ]
)


@settings(max_examples=300, deadline=None)
@given(document=st.dictionaries(KEYS, YAML_VALUES, max_size=5))
def test_any_config_document_is_valid_or_a_config_error(document: dict[str, Any]) -> None:
    """Config loading never raises anything but ConfigError, each problem with its key path."""
    problems = config_problems(yaml.safe_dump(document))
    assert problems is None or (problems and all(isinstance(p, str) and p for p in problems))


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=300))
def test_any_yaml_text_is_valid_or_a_config_error(text: str) -> None:
    """Even text that is not YAML at all gives a ConfigError, not a traceback."""
    problems = config_problems(text)
    assert problems is None or problems
