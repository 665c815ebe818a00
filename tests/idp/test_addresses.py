"""Issuer URL rules and the SSRF guard for outbound provider calls."""

from __future__ import annotations

import pytest

from gateway.config.issuer import validate_issuer
from gateway.errors import ProviderUnavailable
from gateway.idp.addresses import AddressGuard

ISSUERS = [
    # issuer, allow_insecure_http, expected problem fragments (empty: acceptable)
    ("https://idp.example.com", False, []),
    ("https://idp.example.com/oidc/v1", False, []),
    ("https://idp.example.com:8443/realms/x/", False, []),
    ("http://idp.example.com", False, ["must use https"]),
    ("http://idp.example.com", True, ["must use https"]),
    ("http://127.0.0.1:9000", False, ["allow_insecure_http"]),
    ("http://127.0.0.1:9000", True, []),
    ("http://localhost:9000/oidc", True, []),
    ("http://[::1]:9000", True, []),
    ("https://idp.example.com?tenant=1", False, ["query string"]),
    ("https://idp.example.com/?", False, ["query string"]),
    ("https://idp.example.com#top", False, ["fragment"]),
    ("https://user:pw@idp.example.com", False, ["credentials"]),
    ("https://user@idp.example.com", False, ["credentials"]),
    ("ftp://idp.example.com", False, ["must use https"]),
    ("idp.example.com", False, ["not a URL"]),
    ("https://", False, ["not a URL"]),
    ("https://idp.example.com:99999", False, ["not a URL"]),
    ("http://evil.com?x#y", True, ["must use https", "query", "fragment"]),
]


@pytest.mark.parametrize(("issuer", "insecure", "expected"), ISSUERS)
def test_validate_issuer(issuer: str, insecure: bool, expected: list[str]) -> None:
    """Each problem is reported as a sentence; acceptable issuers yield none."""
    problems = validate_issuer(issuer, allow_insecure_http=insecure)
    assert len(problems) == len(expected), problems
    for fragment, problem in zip(expected, problems, strict=True):
        assert fragment in problem


def resolving_to(*addresses: str):  # type: ignore[no-untyped-def]
    async def resolve(host: str) -> list[str]:
        return list(addresses)

    return resolve


GUARD_CASES = [
    # url, resolved addresses, expected refusal fragment (None: allowed)
    ("https://idp.example.com/jwks", ["93.184.216.34"], None),
    ("https://idp.example.com/jwks", ["2606:2800:220:1::1"], None),
    ("https://idp.example.com/jwks", ["10.0.0.5"], "a private address"),
    ("https://idp.example.com/jwks", ["93.184.216.34", "192.168.1.1"], "a private address"),
    ("https://idp.example.com/jwks", ["127.0.0.1"], "a loopback address"),
    ("https://idp.example.com/jwks", ["169.254.169.254"], "a link-local address"),
    ("https://idp.example.com/jwks", ["fe80::1%eth0"], "a link-local address"),
    ("https://idp.example.com/jwks", ["::ffff:127.0.0.1"], "a loopback address"),
    ("https://idp.example.com/jwks", ["0.0.0.0"], "an unspecified address"),
    ("https://idp.example.com/jwks", ["224.0.0.1"], "a multicast address"),
    ("https://idp.example.com/jwks", ["100.64.0.1"], "not a public address"),
    ("https://idp.example.com/jwks", ["fd00::1"], "a private address"),
    ("https://127.0.0.1/jwks", [], "a loopback address"),
    ("https://[::1]:8443/jwks", [], "a loopback address"),
    ("https://169.254.169.254/latest/meta-data", [], "a link-local address"),
    ("http://idp.example.com/jwks", ["93.184.216.34"], "plain http"),
    ("gopher://idp.example.com/", ["93.184.216.34"], "not an http(s) URL"),
]


@pytest.mark.parametrize(("url", "addresses", "expected"), GUARD_CASES)
async def test_address_guard(url: str, addresses: list[str], expected: str | None) -> None:
    """Internal addresses are refused with the reason; public https hosts pass."""
    guard = AddressGuard(resolver=resolving_to(*addresses))
    if expected is None:
        await guard.check(url)
        return
    with pytest.raises(ProviderUnavailable) as caught:
        await guard.check(url)
    assert expected in str(caught.value)


async def test_private_network_allowed_by_option() -> None:
    """allow_private_network lets internal addresses through (https still required)."""
    guard = AddressGuard(allow_private_network=True, resolver=resolving_to("10.0.0.5"))
    await guard.check("https://idp.internal/jwks")
    with pytest.raises(ProviderUnavailable, match="plain http"):
        await guard.check("http://idp.internal/jwks")


async def test_insecure_http_only_on_loopback() -> None:
    """allow_insecure_http permits http to loopback hosts only."""
    guard = AddressGuard(allow_private_network=True, allow_insecure_http=True)
    await guard.check("http://127.0.0.1:8080/jwks")
    await guard.check("http://localhost:8080/jwks")
    with pytest.raises(ProviderUnavailable, match="plain http"):
        await guard.check("http://10.1.1.1/jwks")


async def test_real_resolution_of_localhost_is_refused() -> None:
    """The default resolver (loop.getaddrinfo) sees that localhost is loopback."""
    with pytest.raises(ProviderUnavailable, match="loopback"):
        await AddressGuard().check("https://localhost/jwks")


async def test_unresolvable_host_is_a_plain_error() -> None:
    """A resolver failure becomes ProviderUnavailable naming the host."""

    async def failing(host: str) -> list[str]:
        raise OSError(-2, "Name or service not known")

    with pytest.raises(ProviderUnavailable, match=r"could not resolve idp\.example\.com"):
        await AddressGuard(resolver=failing).check("https://idp.example.com/")


async def test_verdicts_are_cached_per_host() -> None:
    """A host is resolved once within the cache TTL."""
    calls: list[str] = []

    async def counting(host: str) -> list[str]:
        calls.append(host)
        return ["93.184.216.34"]

    guard = AddressGuard(resolver=counting)
    for _ in range(3):
        await guard.check("https://idp.example.com/x")
    assert calls == ["idp.example.com"]
