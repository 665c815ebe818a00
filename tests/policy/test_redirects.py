"""Return URLs after login/logout never leave the gateway's origin or allowed hosts."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.policy.redirects import safe_return_url

ORIGIN = "https://app.example.com"
ALLOWED = ["other.example.com", "*.apps.example.com"]


@pytest.mark.parametrize(
    "target",
    [
        "/",
        "/path?q=1#frag",
        "https://app.example.com/x",
        "https://other.example.com/y",
        "https://a.apps.example.com/z",
    ],
)
def test_safe_targets_are_kept(target: str) -> None:
    """Same-origin paths and allowed hosts are kept as they are."""
    assert target == safe_return_url(target, ORIGIN, ALLOWED)


@pytest.mark.parametrize(
    "target",
    [
        "//evil.test",
        "/\\evil.test",
        "\\\\evil.test",
        "https:evil.test",
        "https://evil.test/",
        "http://app.example.com/",  # scheme downgrade is another origin
        "/%2F%2Fevil.test",
        "/%5Cevil.test",
        "%2F%2Fevil.test",
        "/%252F%252Fevil.test",
        "javascript:alert(1)",
        "data:text/html,x",
        "https://app.example.com@evil.test/",
        "https://evil.test\\@app.example.com/",
        "/\t/evil.test",
        "/\r\nSet-Cookie: x=y",
        "https://apps.example.com/",  # the wildcard does not cover its apex
        "ftp://other.example.com/",
        "",
        None,
    ],
)
def test_open_redirects_fall_back_to_root(target: str | None) -> None:
    """Anything a browser could read as another host goes to '/'."""
    assert safe_return_url(target, ORIGIN, ALLOWED) == "/"


@given(st.text(max_size=200))
def test_result_is_always_local_or_allowed(target: str) -> None:
    """Whatever the input, the result is a local path or on an allowed origin."""
    result = safe_return_url(target, ORIGIN, ALLOWED)
    assert (result.startswith("/") and not result.startswith("//")) or result.startswith("https://")
