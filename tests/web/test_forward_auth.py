"""Forward-auth (`/_gateway/auth`) for nginx, Traefik and Caddy; end to end with a real nginx."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp
import jwt
import pytest

from tests.support.login import HTML_ACCEPT, http_login
from tests.support.nginx import Nginx, documented_server_block
from tests.support.op import OidcProvider
from tests.support.ports import free_port
from tests.support.signing_keys import write_key
from tests.web.login_setup import start_login_gateway

TOKEN_SECRET = "forward-auth-test-secret-" + "y" * 16
ISSUER = "https://gateway.example.test"
JSON_ACCEPT = {"Accept": "application/json"}


def jar() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


def traefik(origin: str, uri: str, method: str = "GET") -> dict[str, str]:
    """What Traefik's forwardAuth (and Caddy's forward_auth) send about the original request."""
    parts = urlsplit(origin)
    return {
        "X-Forwarded-Method": method,
        "X-Forwarded-Proto": parts.scheme,
        "X-Forwarded-Host": parts.netloc,
        "X-Forwarded-Uri": uri,
    }


def login_url(origin: str, target: str) -> str:
    return f"{origin}/_gateway/login?" + urlencode({"rd": target})


async def ask(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str]
) -> tuple[int, dict[str, str]]:
    async with session.get(url, headers=headers, allow_redirects=False) as response:
        await response.read()
        return response.status, dict(response.headers)


async def test_forward_auth_answers_trusted_proxies_only(
    gateway_factory: Any, upstream: str
) -> None:
    """A peer outside trusted_proxies gets 403, even for a public route."""
    config = {
        "trusted_proxies": ["192.0.2.0/24"],
        "routes": [{"path": "/", "upstream": upstream, "auth": "public"}],
    }
    gw = gateway_factory(config, name="untrusted")
    async with aiohttp.ClientSession() as session:
        status, _ = await ask(session, f"{gw.url}/_gateway/auth", traefik(gw.url, "/x"))
    assert status == 403


@pytest.fixture
def policy_gateway(gateway_factory: Any, oidc_provider: OidcProvider, upstream: str) -> Any:
    """A login gateway trusting 127.0.0.1 as its proxy, with routes for host 127.0.0.1."""
    token = {"algorithm": "HS256", "secret": TOKEN_SECRET, "issuer": ISSUER}
    routes: list[dict[str, Any]] = [
        {"host": "127.0.0.1", "path": "/", "upstream": upstream, "identity_token": token},
        {"host": "127.0.0.1", "path": "/admin/", "upstream": upstream,
         "policy": {"emails": ["alice@example.test"]}},
        {"host": "127.0.0.1", "path": "/read/", "upstream": upstream,
         "policy": {"methods": ["GET"]}},
        {"host": "127.0.0.1", "path": "/public/", "upstream": upstream, "auth": "public"},
    ]  # fmt: skip
    gw, _ = start_login_gateway(
        gateway_factory, oidc_provider, upstream, routes=routes,
        extra={"trusted_proxies": ["127.0.0.1/32"]},
    )  # fmt: skip
    return gw


async def test_without_session_401_names_the_login_never_the_provider(
    policy_gateway: Any,
) -> None:
    """No session: 401 carrying the escaped login URL (no redirect to the IdP); with
    ?redirect=1 a browser navigation gets a 302 there instead; a public route passes."""
    gw = policy_gateway
    auth = f"{gw.url}/_gateway/auth"
    original = f"{gw.url}/app/page?x=1&y=2"
    nginx_style = {"X-Original-URL": original, "X-Original-Method": "GET", "Accept": HTML_ACCEPT}
    async with aiohttp.ClientSession() as session:
        status, headers = await ask(session, auth, nginx_style)
        assert (status, headers.get("Location")) == (401, None)
        assert headers["X-Gateway-Login-URL"] == login_url(gw.url, original)
        navigate = {**traefik(gw.url, "/app/page?x=1&y=2"), "Accept": HTML_ACCEPT}
        status, headers = await ask(session, f"{auth}?redirect=1", navigate)
        assert (status, headers["Location"]) == (302, login_url(gw.url, original))
        api_call = {**traefik(gw.url, "/app/data"), **JSON_ACCEPT}
        assert (await ask(session, f"{auth}?redirect=1", api_call))[0] == 401
        public = await ask(session, auth, traefik(gw.url, "/public/x", "POST"))
        assert public[0] == 200
        assert not any(k.lower().startswith("x-auth-request") for k in public[1])
        assert (await ask(session, auth, {"Accept": HTML_ACCEPT}))[
            0
        ] == 403  # malformed: 403, since nginx turns a 400 into a 500


async def test_signed_in_caller_gets_identity_headers_and_policy_applies(
    policy_gateway: Any, upstream: str
) -> None:
    """After login: 200 with identity headers and a verifiable token; a policy refusal, a
    refused method and an unknown host are 403 (nginx only takes 2xx/401/403)."""
    gw = policy_gateway
    auth = f"{gw.url}/_gateway/auth"
    async with jar() as session:
        await http_login(session, f"{gw.url}/", user="bob")
        status, headers = await ask(session, auth, traefik(gw.url, "/app?q=1", "POST"))
        assert status == 200
        assert (headers["X-Auth-Request-User"], headers["X-Auth-Request-Email"]) == (
            "bob",
            "bob@example.test",
        )
        claims = jwt.decode(
            headers["X-Gateway-Identity"], TOKEN_SECRET, algorithms=["HS256"], audience=upstream
        )
        assert (claims["sub"], claims["iss"]) == ("bob", ISSUER)
        assert (await ask(session, auth, traefik(gw.url, "/admin/x")))[0] == 403
        assert (await ask(session, auth, traefik(gw.url, "/read/x", "GET")))[0] == 200
        assert (await ask(session, auth, traefik(gw.url, "/read/x", "DELETE")))[0] == 403
        elsewhere = {"X-Original-URL": "http://elsewhere.test/", "X-Original-Method": "GET"}
        assert (await ask(session, auth, elsewhere))[0] == 403
        smuggled = {**traefik(gw.url, "/admin/x"), "X-Original-URL": f"{gw.url}/app"}
        assert (await ask(session, auth, {**smuggled, "X-Original-Method": "GET"}))[0] == 403


def nginx_server_block(port: int, gateway_port: int, upstream: str) -> str:
    """The documented nginx snippet with this test's addresses in place of the examples."""
    block = documented_server_block()
    for example, actual in (
        ("listen 80 default_server;", f"listen 127.0.0.1:{port} default_server;"),
        ("listen 80;", f"listen 127.0.0.1:{port};"),
        ("server_name app.example.com;", "server_name 127.0.0.1;"),
        ("http://127.0.0.1:4180", f"http://127.0.0.1:{gateway_port}"),
        ("http://127.0.0.1:3000", upstream),
    ):
        assert example in block, f"docs/forward-auth.md nginx block lost {example!r}"
        block = block.replace(example, actual)
    return block


@pytest.fixture
def nginx_gateway(
    gateway_factory: Any, oidc_provider: OidcProvider, upstream: str, tmp_path: Path
) -> Iterator[tuple[Nginx, Any]]:
    """nginx (docs/forward-auth.md's server block) with auth_request to a login gateway."""
    nginx = Nginx(tmp_path / "nginx", "", port=free_port())
    client = oidc_provider.register_client(
        redirect_uris=[f"{nginx.url}/_gateway/callback"],
        grant_types=["authorization_code", "refresh_token"],
        token_endpoint_auth_method="client_secret_basic",
    )
    key = write_key(tmp_path, "identity", "rsa")
    extra = {
        "trusted_proxies": ["127.0.0.1/32"],
        "signing_keys": [{"file": str(key)}],
        # Groups come from a claim the OP does not send: the gateway sends no such header.
        "identity": {"headers": {"X-Auth-Request-User": "sub", "X-Auth-Request-Email": "email",
                                 "X-Auth-Request-Groups": "department"}},
    }  # fmt: skip
    routes = [{"path": "/", "upstream": upstream, "identity_token": {"issuer": nginx.url}}]
    gw, _ = start_login_gateway(
        gateway_factory, oidc_provider, upstream, routes=routes, client=client, extra=extra
    )
    nginx.server_block = nginx_server_block(nginx.port, gw.port, upstream)
    nginx.start()
    yield nginx, gw
    nginx.stop()
    print(f"----- nginx error log -----\n{nginx.error_log()[-5000:]}")


async def test_nginx_auth_request_end_to_end(
    nginx_gateway: tuple[Nginx, Any], oidc_provider: OidcProvider, upstream: str
) -> None:
    """Through nginx: unauthenticated requests end at the provider's login; after login the
    upstream sees the gateway's identity headers and token; spoofed ones never pass."""
    nginx, _ = nginx_gateway
    page = f"{nginx.url}/app/page?x=1&y=2"
    spoofed = {"X-Auth-Request-User": "mallory", "X-Auth-Request-Groups": "root",
               "X-Gateway-Identity": "forged"}  # fmt: skip
    async with jar() as stranger:
        status, headers = await ask(stranger, page, {**spoofed, "Accept": HTML_ACCEPT})
        assert (status, headers["Location"]) == (302, login_url(nginx.url, page))
        async with stranger.get(page, headers={"Accept": HTML_ACCEPT}) as at_provider:
            assert urlsplit(str(at_provider.url)).netloc == urlsplit(oidc_provider.issuer).netloc
            assert "<form" in await at_provider.text()
        assert (await ask(stranger, f"{nginx.url}/_gateway/auth", spoofed))[0] == 404
    async with jar() as alice:
        landed = await http_login(alice, page, user="alice")
        assert str(landed.url) == page  # the escaped return URL kept its whole query
        async with alice.get(f"{nginx.url}/app/other", headers=spoofed) as response:
            body = await response.json()
        async with alice.get(f"{nginx.url}/_gateway/jwks") as response:
            jwks = await response.json()
    received = {k.lower(): v for k, v in body["header_list"]}
    assert (received["x-auth-request-user"], received["x-auth-request-email"]) == (
        "alice",
        "alice@example.test",
    )
    assert "x-auth-request-groups" not in received  # the client's "root" was dropped
    token = received["x-gateway-identity"]
    key = jwt.PyJWKSet.from_dict(jwks)[jwt.get_unverified_header(token)["kid"]]
    claims = jwt.decode(token, key, algorithms=["RS256"], audience=upstream)
    assert (claims["sub"], claims["iss"]) == ("alice", nginx.url)
    assert all("mallory" not in v for _, v in body["header_list"])


async def test_route_without_upstream_answers_forward_auth_only(gateway_factory: Any) -> None:
    """`upstream: null` routes are decided by /auth but never proxied (404 on the gateway)."""
    config = {
        "trusted_proxies": ["127.0.0.0/8"],
        "routes": [{"path": "/", "upstream": None, "auth": "public"}],
    }
    gw = gateway_factory(config, name="auth-only")
    async with aiohttp.ClientSession() as session:
        status, _ = await ask(session, f"{gw.url}/_gateway/auth", traefik(gw.url, "/x"))
        assert 200 == status
        async with session.get(f"{gw.url}/x", headers={"Accept": "application/json"}) as r:
            assert 404 == r.status
