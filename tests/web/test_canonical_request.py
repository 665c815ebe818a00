"""One canonical request: what the real upstream receives and reads, judged from its side.

Each test puts the sample upstream (tests/support/upstream.py, which reports the exact
target, Host and headers it received) behind a real gateway process and sends raw
bytes, so nothing here relies on the gateway's own reading of the request.
"""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from tests.support.op import OidcProvider
from tests.support.redis import RedisServer
from tests.support.upstream import UpstreamServer
from tests.web.login_setup import start_login_gateway
from tests.web.session_setup import direct_manager, new_session
from tests.web.test_attacks import raw


def status_of(reply: bytes) -> int:
    return int(reply.split(b" ", 2)[1])


def echoed(reply: bytes) -> dict[str, Any]:
    """The upstream's report of the request it received."""
    assert status_of(reply) == 200, reply[:300]
    body: dict[str, Any] = json.loads(reply.partition(b"\r\n\r\n")[2])
    return body


def request(target: str, *headers: str, method: str = "GET", host: str = "gw.test") -> bytes:
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}", *headers, "Connection: close"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def public_and_admin(upstream: str, **admin: Any) -> list[dict[str, Any]]:
    return [
        {"name": "public", "path": "/", "upstream": upstream, "auth": "public"},
        {"name": "admin", "path": "/admin", "upstream": upstream, "auth": "login", **admin},
    ]


@pytest.fixture
def gw(gateway_factory: Any, oidc_provider: OidcProvider, upstream: str) -> Any:
    gateway, _ = start_login_gateway(
        gateway_factory, oidc_provider, upstream, routes=public_and_admin(upstream)
    )
    return gateway


@pytest.mark.parametrize(
    "target",
    [
        "/x/..;/admin/secret",
        "/x/%2e%2e;/admin/secret",
        "/x/..;foo=bar/admin/secret",
        "/x/.;/admin",
        "/ADMIN/secret",
        "/Admin",
        "/admin.",
        "/admin%20",
        "/%2561dmin",
        "/%EF%BD%81dmin",
        "/%EF%BC%8Fadmin/secret",  # fullwidth '/': NFKC and merged, /admin
        "/x/%EF%BC%8E%EF%BC%8E/admin/secret",  # fullwidth '..': NFKC and resolved, /admin
        "/x/%E2%80%A5/%2561dmin",  # NFKC, then a second decoding: /x/../admin
        "/x/%25E2%2580%25A5/admin",  # a second decoding, then NFKC
        "/admin%3Fdelete=1",  # a decoded '?' ends the path at nginx `$uri` re-read
        "/admin%EF%BC%9F",  # a fullwidth '?', folded
        "/%2Fadmin",
        "/adm%C4%B1n",  # U+0131: Java's equalsIgnoreCase reads /admin
        "/adm%C4%B0n/secret",  # U+0130, the same
    ],
)
async def test_readings_of_admin_never_reach_the_upstream_without_login(
    gw: Any, target: str
) -> None:
    """Every path some upstream resolves to /admin is refused (400) or asks for a login
    (401); the public route never forwards it."""
    reply = await raw(gw.port, request(target, "Accept: application/json"))
    assert status_of(reply) in (400, 401), reply[:200]
    assert b'"raw_path"' not in reply


@pytest.mark.parametrize("target", ["/pa%C3%9Fword", "/PA%E1%BA%9EWORD/reset"])
async def test_a_sharp_s_never_reaches_a_stricter_route_through_a_public_one(
    gateway_factory: Any, oidc_provider: OidcProvider, upstream: str, target: str
) -> None:
    """Case-folded fully (Python's casefold, Java's toUpperCase), U+00DF is `ss`: the
    path reads as /password upstream, so the public route must not forward it."""
    routes = [
        {"name": "public", "path": "/", "upstream": upstream, "auth": "public"},
        {"name": "password", "path": "/password", "upstream": upstream, "auth": "login"},
    ]
    gateway, _ = start_login_gateway(gateway_factory, oidc_provider, upstream, routes=routes)
    reply = await raw(gateway.port, request(target, "Accept: application/json"))
    assert status_of(reply) == 400, reply[:200]
    assert b'"raw_path"' not in reply
    # The positive control: a public path of the same shape is served.
    assert echoed(await raw(gateway.port, request("/pa%C3%9Fage")))["path"] == "/pa\u00dfage"


@pytest.mark.parametrize(
    ("target", "received"),
    [
        ("/a;jsessionid=1/b", "/a/b"),
        ("//a//b", "/a/b"),
        ("/%7euser/%41", "/~user/A"),
        ("/a%3Bb", "/a%3Bb"),
        ("/a%c3%bc%2a", "/a%C3%BC*"),
    ],
)
async def test_upstream_receives_the_canonical_path(gw: Any, target: str, received: str) -> None:
    """The upstream gets the path the route was chosen by, never the raw one."""
    assert received == echoed(await raw(gw.port, request(target)))["raw_path"]


async def test_absolute_form_target_must_name_the_host_header(
    gateway_factory: Any, upstream: str
) -> None:
    """`GET http://www.../` with `Host: admin...` is refused; agreeing forms are served with
    the canonical Host (a vhost upstream cannot be steered to the other site)."""
    routes = [
        {"host": "www.example.test", "path": "/", "upstream": upstream, "auth": "public",
         "preserve_host": True},
        {"host": "admin.example.test", "path": "/", "upstream": upstream, "auth": "bearer",
         "preserve_host": True},
    ]  # fmt: skip
    # An issuer that is never reached: the admin site stays protected (`run` refuses a
    # bearer route with no issuer at all).
    issuer = {"issuer": "https://idp.example.test", "discovery": False,
              "jwks_uri": "https://idp.example.test/jwks", "audiences": ["admin"]}  # fmt: skip
    gw = gateway_factory({"routes": routes, "bearer": {"issuers": [issuer]}})
    mixed = request("http://www.example.test/dashboard", host="admin.example.test")
    assert 400 == status_of(await raw(gw.port, mixed))
    agreeing = request("http://WWW.example.test:80/dashboard", host="www.example.test")
    body = echoed(await raw(gw.port, agreeing))
    assert ("/dashboard", "www.example.test") == (body["raw_path"], body["headers"]["Host"])


@pytest.mark.parametrize("host", ["www.example.test, admin.example.test", "[x", "a@b", "", "x y"])
async def test_unusable_host_is_400(gateway_factory: Any, upstream: str, host: str) -> None:
    """Several hosts, a broken IPv6 literal, user info: 400 (never 500, never forwarded)."""
    gw = gateway_factory({"routes": [{"path": "/", "upstream": upstream, "auth": "public"}]})
    reply = await raw(gw.port, request("/x", host=host))
    assert 400 == status_of(reply), reply[:200]
    assert "Traceback" not in gw.log_text()


async def test_two_host_headers_are_400(gateway_factory: Any, upstream: str) -> None:
    """Two Host headers could be read either way by the next hop: refused."""
    gw = gateway_factory({"routes": [{"path": "/", "upstream": upstream, "auth": "public"}]})
    reply = await raw(gw.port, request("/x", "Host: admin.test", host="www.test"))
    assert 400 == status_of(reply)


async def test_methods_policy_applies_on_public_routes(gateway_factory: Any, upstream: str) -> None:
    """A public route with policy.methods [GET] refuses POST/PUT/DELETE before the upstream."""
    routes = [{"path": "/", "upstream": upstream, "auth": "public",
               "policy": {"methods": ["GET"]}}]  # fmt: skip
    gw = gateway_factory({"routes": routes})
    for method in ("POST", "PUT", "DELETE"):
        reply = await raw(gw.port, request("/x", "Content-Length: 0", method=method))
        assert 405 == status_of(reply), (method, reply[:200])
    assert "GET" == echoed(await raw(gw.port, request("/x")))["method"]


SPOOFED = [
    "X-Api-User: root",
    "X_Api_User: root",
    "X-Forwarded-User: root",
    "X-Forwarded-Email: root@example.test",
    "X-Forwarded-Groups: admins",
    "X-Forwarded-Preferred-Username: root",
    "X-Forwarded-Access-Token: forged",
    "Remote-User: root",
    "Remote_User: root",
    "X-Auth-Request-User: root",
    "X-HTTP-Method-Override: DELETE",
    "X_HTTP_Method_Override: DELETE",
    "X-Method-Override: DELETE",
    "X-HTTP-Method: DELETE",
    "X-Original-URL: /admin",
    "X-Rewrite-URL: /admin",
    "X-Real-IP: 10.9.9.9",
    "True-Client-IP: 10.9.9.9",
    "X-Client-IP: 10.9.9.9",
    "X-Forwarded-Port: 9999",
    "X-Forwarded-Prefix: /admin",
    "X-Forwarded-Server: admin.test",
    "X-Forwarded: for=10.9.9.9",
    "Forwarded-For: 10.9.9.9",
    "X-Envoy-External-Address: 10.9.9.9",
    "X-Azure-ClientIP: 10.9.9.9",
    "X-Original-Remote-Addr: 10.9.9.9",
    "Proxy: http://10.9.9.9:3128",
    "Remote-Groups: admins",
    "Remote-Email: root@example.test",
    "X-Webauth-User: root",
    "X-Authenticated-User: root",
    "X-Goog-Authenticated-User-Email: root@example.test",
    "X-Amzn-Oidc-Identity: root",
    "X-MS-Client-Principal-Name: root",
    "X-Original-Path: /admin",
    "X-Envoy-Original-Path: /admin",
    "X-Request-URI: /admin",
]


async def test_owned_headers_are_stripped_on_every_route(
    gateway_factory: Any, oidc_provider: OidcProvider, upstream: str
) -> None:
    """Identity headers of any route, other gateways' identity names, forwarding and
    method/URL override headers: the upstream never reads a client-chosen value."""
    routes = public_and_admin(upstream, identity_headers={"X-Api-User": "sub"})
    gw, _ = start_login_gateway(gateway_factory, oidc_provider, upstream, routes=routes)
    body = echoed(await raw(gw.port, request("/x", *SPOOFED, method="POST")))
    chosen = {"root", "root@example.test", "admins", "forged", "DELETE", "/admin", "10.9.9.9",
              "9999", "admin.test", "for=10.9.9.9", "http://10.9.9.9:3128"}  # fmt: skip
    leaked = [(name, value) for name, value in body["header_list"] if value.strip() in chosen]
    assert [] == leaked
    assert "POST" == body["method"]
    assert "127.0.0.1" == body["headers"]["X-Real-IP"]  # the gateway's own view


async def test_forwarded_host_and_proto_are_read_right_to_left(
    gateway_factory: Any, upstream: str
) -> None:
    """Behind a trusted proxy that appends, the rightmost X-Forwarded-Host is the real one."""
    gw = gateway_factory(
        {
            "trusted_proxies": ["127.0.0.1/32"],
            "routes": [{"path": "/", "upstream": upstream, "auth": "public"}],
        }
    )
    reply = await raw(
        gw.port,
        request(
            "/x",
            "X-Forwarded-Host: admin.example.test, www.example.test",
            "X-Forwarded-Proto: http, https",
        ),
    )
    headers = echoed(reply)["headers"]
    assert ("www.example.test", "https") == (
        headers["X-Forwarded-Host"],
        headers["X-Forwarded-Proto"],
    )


async def test_strip_prefix_cuts_the_canonical_path(gateway_factory: Any, upstream: str) -> None:
    """`//svc/admin` with strip_prefix reaches the upstream as /admin (it used to be /c/admin)."""
    routes = [{"path": "/svc", "upstream": upstream, "auth": "public", "strip_prefix": True}]
    gw = gateway_factory({"routes": routes})
    assert "/admin" == echoed(await raw(gw.port, request("//svc/admin")))["raw_path"]


@pytest.mark.parametrize("rd", ["https://%5B", "https://x%EF%BC%8Fy", "https://[", "//%5B"])
async def test_unparsable_return_urls_are_not_500(gw: Any, rd: str) -> None:
    """A return URL nobody can parse falls back to '/', it never raises."""
    reply = await raw(gw.port, request(f"/_gateway/login?rd={rd}"))
    assert status_of(reply) < 500, reply[:200]
    assert "Traceback" not in gw.log_text()


async def test_reload_keeps_each_request_on_its_own_route(
    gateway_factory: Any,
    oidc_provider: OidcProvider,
    upstream: str,
    redis_server: RedisServer,
    tmp_path: Path,
) -> None:
    """SIGHUP with reordered routes while requests wait on Redis: every answer comes from
    its own route's upstream with that route's own identity header."""
    second = UpstreamServer(tmp_path / "second")
    second.start()
    try:
        routes = [
            {"name": "a", "path": "/a", "upstream": upstream, "auth": "login",
             "identity_headers": {"X-Route-A": "sub"}},
            {"name": "b", "path": "/b", "upstream": second.url, "auth": "login",
             "identity_headers": {"X-Route-B": "sub"}},
        ]  # fmt: skip
        sessions = {"store": "redis", "cache_ttl": 0,
                    "redis": {"url": redis_server.url, "key_prefix": "reload:"}}  # fmt: skip
        gw, client = start_login_gateway(
            gateway_factory, oidc_provider, upstream, routes=routes, sessions=sessions
        )
        manager = direct_manager(redis_server.url, "reload:")
        ticket = await new_session(
            manager, oidc_provider.issuer, "rita", None, client_id=client["client_id"]
        )
        await manager.close()
        ports = {"a": upstream.rsplit(":", 1)[1], "b": second.url.rsplit(":", 1)[1]}
        stop = asyncio.Event()

        async def reload_often() -> None:
            order = list(routes)
            while not stop.is_set():
                order.reverse()
                gw.config_path.write_text(yaml.safe_dump({**gw.config, "routes": order}))
                gw.send_signal(signal.SIGHUP)
                await asyncio.sleep(0.05)

        mixed: list[str] = []
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar) as http:
            http.cookie_jar.update_cookies({"gateway_session": ticket})

            async def one(name: str) -> None:
                async with http.get(f"{gw.url}/{name}/x") as response:
                    body = await response.json()
                headers = body["headers"]
                own = headers.get(f"X-Route-{name.upper()}") == "rita"
                other = "X-Route-" + ("B" if name == "a" else "A")
                if not own or other in headers or not headers["Host"].endswith(ports[name]):
                    mixed.append(f"{name}: {headers}")

            reloader = asyncio.create_task(reload_often())
            for _ in range(30):
                await asyncio.gather(*(one(n) for n in ("a", "b") * 20))
            stop.set()
            await reloader
        assert [] == mixed[:3]
        assert "configuration reloaded" in gw.log_text()
    finally:
        second.stop()


async def test_http10_without_host_is_served_and_http11_without_host_is_400(
    gateway_factory: Any, upstream: str
) -> None:
    """HTTP/1.0 may omit Host (HAProxy's health check does); HTTP/1.1 may not (RFC 9112)."""
    gw = gateway_factory({"routes": [{"path": "/", "upstream": upstream, "auth": "public"}]})
    old = await raw(gw.port, b"GET /_gateway/healthz HTTP/1.0\r\n\r\n")
    new = await raw(gw.port, b"GET /_gateway/healthz HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert (200, 400) == (status_of(old), status_of(new))


async def test_method_override_query_parameter_obeys_policy_methods(
    gateway_factory: Any, upstream: str
) -> None:
    """`POST /x?_method=DELETE` (Express method-override, Laravel, Rails) is a DELETE to the
    app: on a route that allows GET and POST only, it is refused before the upstream."""
    routes = [{"path": "/", "upstream": upstream, "auth": "public",
               "policy": {"methods": ["GET", "POST"]}}]  # fmt: skip
    gw = gateway_factory({"routes": routes})
    for target in ("/x?_method=DELETE", "/x?a=1&_method=put", "/x?_method=GET&_method=PATCH"):
        reply = await raw(gw.port, request(target, "Content-Length: 0", method="POST"))
        assert 405 == status_of(reply), (target, reply[:200])
    assert "POST" == echoed(await raw(gw.port, request("/x?_method=POST", "Content-Length: 0",
                                                       method="POST")))["method"]  # fmt: skip


@pytest.mark.parametrize(
    "headers",
    [
        ("X-Forwarded-Uri: /x",),  # no X-Forwarded-Method
        ("X-Original-URL: http://www.example.test/x", "X-Original-Method: GET", "Host: a?"),
        ("X-Original-URL: http://www.example.test/x/%2e%2e/admin", "X-Original-Method: GET"),
    ],
    ids=["no method", "odd Host", "dot segment"],
)
async def test_forward_auth_refuses_malformed_originals_with_403(
    gateway_factory: Any, upstream: str, headers: tuple[str, ...]
) -> None:
    """nginx turns any auth answer but 2xx/401/403 into a 500: refusals there are 403."""
    gw = gateway_factory(
        {
            "trusted_proxies": ["127.0.0.1/32"],
            "routes": [{"path": "/", "upstream": upstream, "auth": "public"}],
        }
    )
    host = next((h.split(": ", 1)[1] for h in headers if h.startswith("Host: ")), "gw.test")
    others = tuple(h for h in headers if not h.startswith("Host: "))
    reply = await raw(gw.port, request("/_gateway/auth", *others, host=host))
    assert 403 == status_of(reply), reply[:200]


async def test_text_log_lines_cannot_be_forged_through_the_path(
    gateway_factory: Any, upstream: str
) -> None:
    """A CR/LF decoded from the path stays inside its own line of a text-format log."""
    gw = gateway_factory(
        {
            "logging": {"format": "text"},
            "routes": [{"path": "/", "upstream": upstream, "auth": "public"}],
        }
    )
    await raw(gw.port, request("/x%0d%0aFORGED%20GET%20/admin%20200"))
    assert not any(line.startswith("FORGED") for line in gw.log_text().splitlines())
