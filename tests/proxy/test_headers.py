"""Forwarding headers: whom the gateway believes, and what it sends up and back (pure)."""

from __future__ import annotations

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from gateway.errors import BadRequest
from gateway.proxy.headers import (
    REQUEST_DROP,
    ClientView,
    TrustedProxies,
    connection_tokens,
    response_headers,
    upstream_request_headers,
)


def proxies() -> TrustedProxies:
    return TrustedProxies(["10.0.0.0/24", "fd00::/64"])


def headers(*items: tuple[str, str]) -> CIMultiDictProxy[str]:
    return CIMultiDictProxy(CIMultiDict(items))


def view_of(peer: str, *items: tuple[str, str], scheme: str = "http") -> ClientView:
    return proxies().client_view(peer, headers(("Host", "app.example"), *items), scheme, None)


def test_an_untrusted_peer_cannot_claim_another_address_scheme_or_host() -> None:
    """From a peer outside trusted_proxies, X-Forwarded-For/-Proto/-Host are ignored: the
    client is the peer itself, the scheme and host are the connection's own."""
    view = view_of(
        "203.0.113.9",
        ("X-Forwarded-For", "10.0.0.7"),
        ("X-Forwarded-Proto", "https"),
        ("X-Forwarded-Host", "admin.example"),
    )
    assert ClientView("203.0.113.9", "203.0.113.9", "http", "app.example", (), False) == view


@pytest.mark.parametrize(
    ("chain", "client"),
    [
        (["198.51.100.1"], "198.51.100.1"),
        # The leftmost value is whatever the client wrote: only the hop our proxy saw counts.
        (["6.6.6.6, 198.51.100.1"], "198.51.100.1"),
        (["6.6.6.6", "198.51.100.1, 10.0.0.2"], "198.51.100.1"),
        (["198.51.100.1, 10.0.0.3, 10.0.0.2"], "198.51.100.1"),
        # Only trusted hops: the farthest one is the client.
        (["10.0.0.3, 10.0.0.2"], "10.0.0.3"),
        (["198.51.100.1, fd00::5"], "198.51.100.1"),
        ([], "10.0.0.1"),
    ],
)
def test_trusted_proxies_are_walked_right_to_left(chain: list[str], client: str) -> None:
    """Behind a trusted proxy the client is the first untrusted hop from the right of
    X-Forwarded-For: a forged leftmost entry is never believed."""
    view = view_of("10.0.0.1", *[("X-Forwarded-For", c) for c in chain])
    assert client == view.client_ip
    assert view.trusted_peer
    assert tuple(p.strip() for c in chain for p in c.split(",")) == view.forwarded_for


def test_trusted_proxy_scheme_and_host_are_its_last_values() -> None:
    """A trusted proxy's X-Forwarded-Proto and -Host are believed, the rightmost value of
    each (what the nearest proxy appended), lower-cased and canonical."""
    view = view_of(
        "10.0.0.1",
        ("X-Forwarded-Proto", "http, HTTPS"),
        ("X-Forwarded-Host", "evil.example, App.Example.:8443"),
    )
    assert ("https", "app.example:8443") == (view.scheme, view.host)
    assert "https://app.example:8443" == view.origin


@pytest.mark.parametrize("proto", ["ftp", "", "https2"])
def test_an_unknown_forwarded_proto_keeps_the_connection_scheme(proto: str) -> None:
    """Only http and https are believed; anything else leaves the connection's scheme."""
    view = view_of("10.0.0.1", ("X-Forwarded-Proto", proto), scheme="https")
    assert "https" == view.scheme
    assert "app.example" == view.host


@pytest.mark.parametrize(
    ("networks", "address", "trusted"),
    [
        ([], "10.0.0.1", False),
        (["10.0.0.0/24"], "10.0.0.255", True),
        (["10.0.0.0/24"], "10.0.1.0", False),
        (["10.0.0.0/24"], "not-an-ip", False),
        (["10.0.0.5"], "10.0.0.5", True),
        (["fd00::/64"], "fd00::1", True),
    ],
)
def test_trust_is_by_network(networks: list[str], address: str, trusted: bool) -> None:
    """An address is trusted only inside a configured network; no networks trust nothing."""
    assert trusted == TrustedProxies(networks).trusts(address)


def test_a_missing_host_is_refused_unless_a_default_stands_in() -> None:
    """No Host header: 400, except where the listener names a default (HTTP/1.0 checks)."""
    with pytest.raises(BadRequest, match="0 Host headers"):
        proxies().client_view("203.0.113.9", headers(), "http", None)
    view = proxies().client_view("203.0.113.9", headers(), "http", None, "Health.Example")
    assert "health.example" == view.host


def test_two_host_headers_are_refused() -> None:
    """Two Host headers are refused even when a default exists (one reading only)."""
    two = headers(("Host", "app.example"), ("Host", "admin.example"))
    with pytest.raises(BadRequest, match="2 Host headers") as info:
        proxies().client_view("203.0.113.9", two, "http", None, "app.example")
    assert "Exactly one Host header is required." == info.value.public_message


@pytest.mark.parametrize(
    ("scheme", "authority", "host"),
    [
        ("https", "app.example:443", "app.example"),
        ("https", "App.Example", "app.example:443"),
        ("http", "app.example:80", "app.example"),
        ("http", "app.example:8080", "app.example:8080"),
    ],
)
def test_an_absolute_target_naming_the_host_is_accepted(
    scheme: str, authority: str, host: str
) -> None:
    """An absolute-form target and the Host header agree up to case and the default port."""
    view = proxies().client_view("203.0.113.9", headers(("Host", host)), scheme, authority)
    assert host.lower() == view.host


@pytest.mark.parametrize(
    ("scheme", "authority", "host"),
    [
        ("http", "admin.example", "app.example"),
        ("https", "app.example:80", "app.example"),
        ("http", "app.example:443", "app.example"),
        ("http", "app.example:8080", "app.example"),
    ],
)
def test_an_absolute_target_naming_another_host_is_refused(
    scheme: str, authority: str, host: str
) -> None:
    """A request whose target names another host (or port) than Host is refused with 400."""
    with pytest.raises(BadRequest, match="differs from Host"):
        proxies().client_view("203.0.113.9", headers(("Host", host)), scheme, authority)


def upstream(
    incoming: CIMultiDictProxy[str],
    view: ClientView,
    *,
    preserve_host: bool = False,
    owned: tuple[str, ...] = (),
) -> CIMultiDict[str]:
    return upstream_request_headers(
        incoming,
        view,
        drop=REQUEST_DROP,
        owned=lambda name: name.lower() in owned,
        upstream_host="backend:8080",
        preserve_host=preserve_host,
        request_id="rid-1",
    )


def test_upstream_headers_drop_hop_by_hop_forged_and_owned_ones() -> None:
    """Hop-by-hop headers, those named in Connection, headers the gateway owns and
    client-sent forwarding headers never reach the upstream; the rest does."""
    incoming = headers(
        ("Host", "app.example"),
        ("Connection", "keep-alive, X-Secret-Hop"),
        ("X-Secret-Hop", "1"),
        ("Keep-Alive", "timeout=5"),
        ("TE", "trailers"),
        ("Transfer-Encoding", "chunked"),
        ("Proxy-Authorization", "Basic eA=="),
        ("Upgrade", "h2c"),
        ("Content-Length", "5"),
        ("Cookie", "a=1"),
        ("X-User", "admin"),
        ("X-Forwarded-Host", "evil.example"),
        ("Forwarded", "for=1.2.3.4"),
        ("X-Request-ID", "client-chosen"),
        ("Accept", "text/html"),
        ("Accept", "application/json"),
    )
    view = proxies().client_view("203.0.113.9", incoming, "http", None)
    out = upstream(incoming, view, owned=("x-user",))
    assert ["text/html", "application/json"] == out.getall("Accept")
    assert "a=1" == out["Cookie"]
    assert {
        "Accept",
        "Cookie",
        "Host",
        "X-Forwarded-For",
        "X-Real-IP",
        "X-Forwarded-Proto",
        "X-Forwarded-Host",
        "Forwarded",
        "X-Request-ID",
    } == set(out.keys())
    assert "backend:8080" == out["Host"]
    assert "rid-1" == out["X-Request-ID"]
    assert "203.0.113.9" == out["X-Forwarded-For"]
    assert "203.0.113.9" == out["X-Real-IP"]
    assert "http" == out["X-Forwarded-Proto"]
    assert "app.example" == out["X-Forwarded-Host"]
    assert 'for=203.0.113.9;proto=http;host="app.example"' == out["Forwarded"]


def test_behind_a_trusted_proxy_the_chain_and_forwarded_are_extended() -> None:
    """Behind a trusted proxy the upstream sees the whole chain plus the proxy, the real
    client, and the proxy's Forwarded elements followed by the gateway's own."""
    incoming = headers(
        ("Host", "app.example"),
        ("X-Forwarded-For", "198.51.100.1"),
        ("X-Forwarded-Proto", "https"),
        ("Forwarded", 'for=198.51.100.1;host="app.example"'),
    )
    view = proxies().client_view("10.0.0.1", incoming, "http", None)
    out = upstream(incoming, view, preserve_host=True)
    assert "app.example" == out["Host"]
    assert "198.51.100.1, 10.0.0.1" == out["X-Forwarded-For"]
    assert "198.51.100.1" == out["X-Real-IP"]
    assert "https" == out["X-Forwarded-Proto"]
    assert (
        'for=198.51.100.1;host="app.example", for=10.0.0.1;proto=https;host="app.example"'
        == out["Forwarded"]
    )


def test_forwarded_brackets_ipv6_and_quotes_the_host() -> None:
    """An IPv6 peer is bracketed and quoted in Forwarded (RFC 7239 6); the host is quoted
    with its backslashes and quotes escaped."""
    view = ClientView("2001:db8::1", "2001:db8::1", "https", 'a"b\\c', (), False)
    out = upstream(headers(("Forwarded", "for=evil")), view)
    assert 'for="[2001:db8::1]";proto=https;host="a\\"b\\\\c"' == out["Forwarded"]


def test_connection_tokens_are_lower_cased_names() -> None:
    """Every comma-separated token of every Connection header, lower-cased."""
    found = connection_tokens(headers(("Connection", "Close, X-A"), ("Connection", " ,x-b")))
    assert frozenset({"close", "x-a", "x-b"}) == found


def test_response_headers_drop_hop_by_hop_and_keep_the_rest() -> None:
    """The browser gets the upstream's headers (every Set-Cookie, in order) but none of
    its hop-by-hop ones, none it named in Connection, and no stale Content-Length."""
    upstream_headers = headers(
        ("Content-Type", "text/plain"),
        ("Set-Cookie", "a=1"),
        ("Set-Cookie", "b=2"),
        ("Connection", "X-Internal"),
        ("X-Internal", "secret"),
        ("Transfer-Encoding", "chunked"),
        ("Keep-Alive", "timeout=5"),
        ("Proxy-Authenticate", "Basic"),
        ("Trailer", "X-T"),
        ("Upgrade", "h2c"),
        ("Content-Length", "10"),
        ("Cache-Control", "no-store"),
    )
    out = response_headers(CIMultiDict(upstream_headers))
    assert [
        ("Content-Type", "text/plain"),
        ("Set-Cookie", "a=1"),
        ("Set-Cookie", "b=2"),
        ("Cache-Control", "no-store"),
    ] == list(out.items())


def test_a_network_written_with_host_bits_is_still_the_network() -> None:
    """trusted_proxies: ["10.0.0.1/24"] trusts the whole /24, as an operator means it."""
    assert TrustedProxies(["10.0.0.1/24"]).trusts("10.0.0.200")


def test_a_trusted_proxy_may_downgrade_the_scheme_to_http() -> None:
    """Behind a TLS-terminating listener, a trusted proxy saying http is believed."""
    assert "http" == view_of("10.0.0.1", ("X-Forwarded-Proto", "http"), scheme="https").scheme


def test_a_differing_target_host_is_logged_cut_and_answered_plainly() -> None:
    """The refusal quotes at most 100 characters of each host and tells the client why."""
    authority = "a" * 150 + ".example"
    host = "b" * 150 + ".example"
    with pytest.raises(BadRequest) as info:
        proxies().client_view("203.0.113.9", headers(("Host", host)), "http", authority)
    assert f"request target host {authority[:100]!r} differs from Host {host[:100]!r}" == str(
        info.value
    )
    assert "The request target and the Host header name different hosts." == (
        info.value.public_message
    )


def test_several_forwarded_headers_of_a_trusted_proxy_are_kept_in_order() -> None:
    """Each Forwarded header a trusted proxy sent is kept, joined by ', ', before the
    gateway's own element; without any, only the gateway's element is sent."""
    incoming = headers(
        ("Host", "app.example"), ("Forwarded", "for=1.1.1.1"), ("Forwarded", "for=2.2.2.2")
    )
    view = proxies().client_view("10.0.0.1", incoming, "http", None)
    out = upstream(incoming, view)
    assert (
        'for=1.1.1.1, for=2.2.2.2, for=10.0.0.1;proto=http;host="app.example"' == (out["Forwarded"])
    )
    bare = headers(("Host", "app.example"))
    out = upstream(bare, proxies().client_view("10.0.0.1", bare, "http", None))
    assert 'for=10.0.0.1;proto=http;host="app.example"' == out["Forwarded"]
