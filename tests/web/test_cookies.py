"""The gateway's cookies as a browser receives them (real Set-Cookie) and reads them back."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer, make_mocked_request
from multidict import CIMultiDict

from gateway.config.model import Sessions
from gateway.web.cookies import CookiePolicy, cookie_values, single_cookie

ServerFactory = Callable[..., Awaitable[TestServer]]
SECRET = "c" * 48


def policy(**sessions: Any) -> CookiePolicy:
    return CookiePolicy.from_config(Sessions.model_validate({"secrets": [SECRET], **sessions}))


def parse(header: str) -> tuple[str, str, dict[str, str]]:
    """One Set-Cookie header as (name, value, {lower-cased attribute: value})."""
    first, *attributes = [part.strip() for part in header.split(";")]
    name, _, value = first.partition("=")
    found: dict[str, str] = {}
    for attribute in attributes:
        key, _, val = attribute.partition("=")
        found[key.lower()] = val
    return name, value.strip('"'), found


async def received(
    aiohttp_server: ServerFactory, action: Callable[[web.Response], None]
) -> list[tuple[str, str, dict[str, str]]]:
    """The Set-Cookie headers a client receives from a response that `action` prepared."""

    async def handler(request: web.Request) -> web.Response:
        response = web.Response(text="ok")
        action(response)
        return response

    app = web.Application()
    app.router.add_get("/", handler)
    server = await aiohttp_server(app)
    async with aiohttp.ClientSession() as session:
        async with session.get(server.make_url("/")) as resp:
            return [parse(h) for h in resp.headers.getall("Set-Cookie", [])]


async def test_session_cookie_is_host_prefixed_secure_httponly_lax(
    aiohttp_server: ServerFactory,
) -> None:
    """By default the session cookie is __Host-, Secure, HttpOnly, SameSite=Lax, Path=/,
    has no Domain and lives as long as asked: script and other sites cannot read or send it."""
    cookies = await received(aiohttp_server, lambda r: policy().set_session(r, "ticket-1", 600.7))
    assert 1 == len(cookies)
    name, value, attrs = cookies[0]
    assert ("__Host-gateway_session", "ticket-1") == (name, value)
    assert "secure" in attrs
    assert "httponly" in attrs
    assert "Lax" == attrs["samesite"]
    assert "/" == attrs["path"]
    assert "domain" not in attrs
    assert "600" == attrs["max-age"]


async def test_login_binding_cookie_is_host_only_even_with_a_cookie_domain(
    aiohttp_server: ServerFactory,
) -> None:
    """The login-binding cookie stays __Host- and host-only although sessions use a
    cookie domain (a sibling host must not be able to plant it)."""
    shared = policy(cookie_domain="example.com")
    cookies = await received(aiohttp_server, lambda r: shared.set_login_binding(r, "b", 300))
    name, value, attrs = cookies[0]
    assert ("__Host-gateway_session_login", "b") == (name, value)
    assert "domain" not in attrs
    assert {"secure", "httponly"} <= set(attrs)
    assert "Lax" == attrs["samesite"]
    assert "300" == attrs["max-age"]


async def test_cookie_domain_drops_the_host_prefix_and_clears_a_host_only_copy(
    aiohttp_server: ServerFactory,
) -> None:
    """With a cookie domain the session cookie has no __Host- prefix (the browser would
    refuse it), carries Domain, and a stale host-only copy is expired in the same answer."""
    shared = policy(cookie_domain="example.com")
    cookies = await received(aiohttp_server, lambda r: shared.set_session(r, "t", 60))
    by_domain = {attrs.get("domain", ""): (name, value, attrs) for name, value, attrs in cookies}
    assert {"", "example.com"} == set(by_domain)
    stale_name, stale_value, stale = by_domain[""]
    assert ("gateway_session", "") == (stale_name, stale_value)
    assert "0" == stale["max-age"]
    name, value, attrs = by_domain["example.com"]
    assert ("gateway_session", "t") == (name, value)
    assert "60" == attrs["max-age"]
    assert {"secure", "httponly"} <= set(attrs)


async def test_plain_http_cookies_are_not_secure_and_not_prefixed(
    aiohttp_server: ServerFactory,
) -> None:
    """cookie_secure: false (plain http) gives unprefixed cookies without Secure, still
    HttpOnly and SameSite=Lax."""
    plain = policy(cookie_secure=False)
    cookies = await received(aiohttp_server, lambda r: plain.set_login_binding(r, "b", 30))
    name, _, attrs = cookies[0]
    assert "gateway_session_login" == name
    assert "secure" not in attrs
    assert "httponly" in attrs
    assert "Lax" == attrs["samesite"]


async def test_login_binding_for_a_form_post_answer_is_samesite_none_only_when_secure(
    aiohttp_server: ServerFactory,
) -> None:
    """When the provider answers with a cross-site form POST (response_mode form_post),
    the login-binding cookie is SameSite=None so the browser sends it along, and Secure;
    over plain http (where browsers drop SameSite=None) it stays Lax."""
    secure, plain = policy(), policy(cookie_secure=False)
    cookies = await received(
        aiohttp_server, lambda r: secure.set_login_binding(r, "b", 300, cross_site_post=True)
    )
    name, _, attrs = cookies[0]
    assert "__Host-gateway_session_login" == name
    assert "None" == attrs["samesite"]
    assert {"secure", "httponly"} <= set(attrs)
    cookies = await received(
        aiohttp_server, lambda r: plain.set_login_binding(r, "b", 300, cross_site_post=True)
    )
    assert "Lax" == cookies[0][2]["samesite"]


@pytest.mark.parametrize("domain", [None, "example.com"])
async def test_clearing_expires_every_session_cookie(
    aiohttp_server: ServerFactory, domain: str | None
) -> None:
    """Logout expires the session cookie (and, with a domain, the host-only copy too)
    and the login-binding cookie: Max-Age=0 with an empty value, same name and path."""
    cookie_policy = policy(cookie_domain=domain)

    def clear(response: web.Response) -> None:
        cookie_policy.clear_session(response)
        cookie_policy.clear_login_binding(response)

    cookies = await received(aiohttp_server, clear)
    expected = 3 if domain else 2
    assert expected == len(cookies)
    for name, value, attrs in cookies:
        assert "" == value
        assert "0" == attrs["max-age"]
        assert "/" == attrs["path"]
        assert name.endswith(("gateway_session", "gateway_session_login"))
    domains = sorted(attrs.get("domain", "") for _, _, attrs in cookies)
    assert (["", "", "example.com"] if domain else ["", ""]) == domains


def request_with(*cookie_headers: str) -> web.Request:
    headers = CIMultiDict([("Cookie", h) for h in cookie_headers])
    return make_mocked_request("GET", "/", headers=headers)


def test_the_single_session_cookie_is_read() -> None:
    """The ticket is the value of the one session cookie, quotes and spaces removed."""
    p = policy()
    request = request_with('other=1; __Host-gateway_session="abc" ; x=y')
    assert "abc" == p.session_ticket(request)
    assert not p.session_ambiguous(request)


@pytest.mark.parametrize(
    "headers",
    [
        ("__Host-gateway_session=a; __Host-gateway_session=b",),
        ("__Host-gateway_session=a", "__Host-gateway_session=b"),
    ],
)
def test_two_different_session_cookies_are_trusted_with_neither(headers: tuple[str, ...]) -> None:
    """A request carrying two different session cookies (one may be planted by a sibling
    host) yields no ticket and is reported as ambiguous."""
    p = policy()
    request = request_with(*headers)
    assert p.session_ticket(request) is None
    assert p.session_ambiguous(request)


def test_a_repeated_identical_cookie_is_not_ambiguous() -> None:
    """The same value sent twice is one cookie, not a planted second one."""
    p = policy()
    request = request_with("__Host-gateway_session=a; __Host-gateway_session=a")
    assert "a" == p.session_ticket(request)
    assert not p.session_ambiguous(request)


@pytest.mark.parametrize(
    "header",
    [
        "__Host-gateway_session=",
        '__Host-gateway_session=""',
        "__Host-gateway_session",
        "gateway_session=a",
        "__Host-gateway_session_login=a",
        "x__Host-gateway_session=a",
    ],
)
def test_empty_or_other_cookies_are_no_session(header: str) -> None:
    """Empty values, a name without '=' and other names (also the unprefixed name when
    the policy expects __Host-) are not a session ticket."""
    assert policy().session_ticket(request_with(header)) is None


def test_login_binding_is_read_by_its_own_name() -> None:
    """The login binding is its own cookie; two different values give none."""
    p = policy()
    assert "b1" == p.login_binding(request_with("__Host-gateway_session_login=b1; s=1"))
    two = request_with("__Host-gateway_session_login=b1", "__Host-gateway_session_login=b2")
    assert p.login_binding(two) is None


def test_cookie_values_keeps_every_value_in_order() -> None:
    """Every non-empty value of the named cookie is returned, across Cookie headers."""
    request = request_with("a=1; b=2", "a=3;a=")
    assert ["1", "3"] == cookie_values(request, "a")
    assert single_cookie(request, "b") == "2"
    assert single_cookie(request, "a") is None


def test_values_keep_their_equals_signs_and_edge_letters() -> None:
    """A value may contain '=' and start or end with any letter: it is read whole."""
    p = policy()
    assert "Xab=c==" == p.session_ticket(request_with("__Host-gateway_session=Xab=c=="))
    assert "XyzX" == p.session_ticket(request_with('__Host-gateway_session="XyzX"'))


def test_a_request_without_cookies_has_no_session() -> None:
    """No Cookie header at all: no ticket, nothing ambiguous, no error."""
    p = policy()
    request = make_mocked_request("GET", "/")
    assert p.session_ticket(request) is None
    assert not p.session_ambiguous(request)
    assert p.login_binding(request) is None
