"""Return URLs after login/logout never leave the gateway's origin or allowed hosts."""

from __future__ import annotations

from urllib.parse import urlsplit

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


@pytest.mark.parametrize(
    "target",
    [
        "https://evilapps.example.com/",  # shares the wildcard's suffix without its dot
        "https://apps.example.com.evil.test/",
        "https://.apps.example.com/",  # the bare suffix is no host of the wildcard
        "https://a-much-longer-host-name.test/",  # longer than the wildcard, not under it
        "https://evilother.example.com/",
        "http://a.apps.example.com/",  # allowed hosts are https only
        "/a\x7fb",  # DEL, as a browser may drop it
        "/a%7F/b",
        "/a%00b",
        "https://app.example.com:444/",
    ],
)
def test_look_alike_hosts_and_control_characters_fall_back(target: str) -> None:
    """A wildcard allowed host matches only names under it (never evilapps.example.com or
    any longer host), and DEL or NUL anywhere, even encoded, falls back to '/'."""
    assert "/" == safe_return_url(target, ORIGIN, ALLOWED)


def test_a_wildcard_never_matches_a_host_merely_ending_like_it() -> None:
    """With *.example.com allowed, evilexample.com is refused and www.example.com kept."""
    allowed = ["*.example.com"]
    assert "/" == safe_return_url("https://evilexample.com/x", ORIGIN, allowed)
    assert "/" == safe_return_url("https://example.com/x", ORIGIN, allowed)
    assert "https://www.example.com/x" == safe_return_url(
        "https://www.example.com/x", ORIGIN, allowed
    )
    assert "https://A.B.EXAMPLE.COM/" == safe_return_url(
        "https://A.B.EXAMPLE.COM/", ORIGIN, allowed
    )


@pytest.mark.parametrize(
    "target",
    ["/a b", "/a%20b", "/%2525252Fdocs", "/" + "a" * 4095, "/search?q=%25"],
)
def test_ordinary_paths_are_kept(target: str) -> None:
    """Spaces, a deeply percent-encoded slash (no browser decodes four times) and a
    path of exactly 4096 characters are kept as they are."""
    assert target == safe_return_url(target, ORIGIN, ALLOWED)


def test_an_overlong_target_falls_back() -> None:
    """A target over 4096 characters falls back to '/'."""
    assert "/" == safe_return_url("/" + "a" * 4096, ORIGIN, ALLOWED)


def test_on_a_plain_http_deployment_same_origin_urls_are_kept() -> None:
    """With an http origin (cookie_secure off), absolute URLs on that origin are kept and
    compared case-insensitively."""
    origin = "http://app.example.com:8080"
    assert "http://APP.example.com:8080/x" == safe_return_url(
        "http://APP.example.com:8080/x", origin, []
    )
    assert "/" == safe_return_url("http://app.example.com/x", origin, [])


def on_an_allowed_origin(result: str) -> bool:
    host = urlsplit(result).hostname or ""
    return result.startswith("https://") and (
        host in ("app.example.com", "other.example.com") or host.endswith(".apps.example.com")
    )


@given(st.text(max_size=200))
def test_result_is_always_local_or_allowed(target: str) -> None:
    """Whatever the input, the result is a local path or on an allowed host, never
    another https host."""
    result = safe_return_url(target, ORIGIN, ALLOWED)
    local = result.startswith("/") and not result.startswith("//")
    assert local or on_an_allowed_origin(result), result


@given(st.from_regex(r"https://[a-z.-]{1,40}\.(test|com)/", fullmatch=True))
def test_arbitrary_https_hosts_are_refused_unless_allowed(target: str) -> None:
    """Random https hosts are redirected to only if they are an allowed host."""
    result = safe_return_url(target, ORIGIN, ALLOWED)
    assert "/" == result or on_an_allowed_origin(result), result
