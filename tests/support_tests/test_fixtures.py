"""The test infrastructure itself: real redis, OP, upstream, gateway process, browser."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp
import jwt
import pytest
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestServer
from playwright.async_api import Page
from yarl import URL

from tests.support.gateway import GatewayFactory
from tests.support.keys import rsa_client_key
from tests.support.login import LoginError, http_login, op_logout
from tests.support.op import OidcProvider, OPError
from tests.support.ports import free_port, port_open
from tests.support.processes import ManagedProcess, ProcessError
from tests.support.redis import RedisServer


def jwt_header(token: str) -> dict[str, Any]:
    part = token.split(".")[0]
    header: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return header


def verify_with_op_keys(op: OidcProvider, token: str, audience: str) -> dict[str, Any]:
    keys = jwt.PyJWKSet.from_dict(op.jwks())
    key = next(k for k in keys.keys if k.key_id == jwt_header(token)["kid"])
    claims: dict[str, Any] = jwt.decode(
        token, key.key, algorithms=["RS256"], audience=audience, issuer=op.issuer
    )
    return claims


# -- redis ---------------------------------------------------------------------------


async def test_redis_answers_ping_and_flush_empties_it(redis_server: RedisServer) -> None:
    client = aioredis.from_url(redis_server.url)
    try:
        assert await client.ping() is True  # type: ignore[misc]
        await client.set("support-test", "1")
        assert await client.get("support-test") == b"1"
        redis_server.flush()
        assert await client.get("support-test") is None
    finally:
        await client.aclose()


@pytest.mark.slow
def test_persistent_redis_keeps_keys_across_restart(persistent_redis: RedisServer) -> None:
    with persistent_redis.client() as r:
        r.set("survives", "yes")
    old_pid = persistent_redis.pid
    persistent_redis.stop()
    assert not port_open(persistent_redis.port)
    persistent_redis.start()
    assert persistent_redis.pid != old_pid
    with persistent_redis.client() as r:
        assert r.get("survives") == b"yes"


def test_plain_redis_forgets_keys_on_restart(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "r")
    server.start()
    try:
        with server.client() as r:
            r.set("gone", "1")
        server.restart()
        with server.client() as r:
            assert r.get("gone") is None
    finally:
        server.stop()
    assert not server.alive


# -- processes -----------------------------------------------------------------------


def test_managed_process_reports_early_exit_with_log_tail(tmp_path: Path) -> None:
    proc = ManagedProcess(
        "dies",
        ["sh", "-c", "echo something went wrong; exit 3"],
        log_path=tmp_path / "dies.log",
        ready_port=free_port(),
        start_timeout=5,
    )
    with pytest.raises(ProcessError, match=r"(?s)status 3.*something went wrong"):
        proc.start()
    assert not proc.alive


def test_managed_process_times_out_and_is_stopped(tmp_path: Path) -> None:
    proc = ManagedProcess(
        "sleeper",
        ["sh", "-c", "echo waiting; exec sleep 60"],
        log_path=tmp_path / "sleeper.log",
        ready_port=free_port(),
        start_timeout=1,
    )
    with pytest.raises(ProcessError, match=r"(?s)not ready after 1s.*waiting"):
        proc.start()
    assert not proc.alive
    assert proc.returncode is not None


# -- the OpenID Provider ---------------------------------------------------------------


def test_op_discovery_names_its_issuer(oidc_provider: OidcProvider) -> None:
    discovery = oidc_provider.discovery
    assert discovery["issuer"] == oidc_provider.issuer
    assert discovery["registration_endpoint"] == oidc_provider.url("/reg")
    assert discovery["authorization_response_iss_parameter_supported"] is True
    assert discovery["code_challenge_methods_supported"] == ["S256"]
    assert discovery["backchannel_logout_supported"] is True
    assert "urn:ietf:params:oauth:grant-type:device_code" in discovery["grant_types_supported"]
    assert {"openid", "email", "profile", "groups", "offline_access"} <= set(
        discovery["scopes_supported"]
    )


def test_client_credentials_jwt_is_rfc9068(oidc_provider: OidcProvider) -> None:
    client = oidc_provider.register_client()
    token = oidc_provider.client_credentials_token(client, scope="api:read api:write")
    assert jwt_header(token)["typ"] == "at+jwt"
    claims = verify_with_op_keys(oidc_provider, token, "urn:test:api")
    assert claims["client_id"] == client["client_id"]
    assert claims["scope"] == "api:read api:write"
    assert claims["exp"] - claims["iat"] == 3600

    other = oidc_provider.client_credentials_token(client, resource="urn:test:other")
    assert jwt.decode(other, options={"verify_signature": False})["aud"] == "urn:test:other"
    short = oidc_provider.client_credentials_token(client, resource="urn:test:api-short")
    short_claims = jwt.decode(short, options={"verify_signature": False})
    assert short_claims["exp"] - short_claims["iat"] == 1


def test_opaque_token_introspection_and_revocation(oidc_provider: OidcProvider) -> None:
    owner = oidc_provider.register_client(token_endpoint_auth_method="client_secret_post")
    checker = oidc_provider.register_client()
    token = oidc_provider.client_credentials_token(owner, resource="urn:test:api-opaque")
    assert token.count(".") == 0
    info = oidc_provider.introspect(checker, token)
    assert info["active"] is True
    assert info["aud"] == "urn:test:api"
    assert info["client_id"] == owner["client_id"]
    oidc_provider.revoke(owner, token)
    assert oidc_provider.introspect(checker, token) == {"active": False}


def test_private_key_jwt_client(oidc_provider: OidcProvider) -> None:
    key = rsa_client_key()
    client = oidc_provider.register_client(
        token_endpoint_auth_method="private_key_jwt", jwks=key.public_jwks
    )
    assert "client_secret" not in client
    token = oidc_provider.client_credentials_token(client, private_key=key)
    assert verify_with_op_keys(oidc_provider, token, "urn:test:api")["sub"] == client["client_id"]
    with pytest.raises(OPError) as refused:
        oidc_provider.client_credentials_token(client, private_key=rsa_client_key(key.kid))
    assert refused.value.error == "invalid_client"


def test_device_flow_for_a_public_client(oidc_provider: OidcProvider) -> None:
    client = oidc_provider.register_client(
        token_endpoint_auth_method="none",
        grant_types=["urn:ietf:params:oauth:grant-type:device_code", "refresh_token"],
    )
    tokens = oidc_provider.device_flow_token(client, "bob", scope="openid email groups")
    assert tokens["refresh_token"]
    claims = jwt.decode(tokens["id_token"], options={"verify_signature": False})
    assert claims["sub"] == "bob"
    assert claims["email"] == "bob@example.test"
    assert claims["groups"] == ["users"]


def test_restart_keeps_clients_and_can_rotate_keys(fresh_oidc_provider: OidcProvider) -> None:
    op = fresh_oidc_provider
    client = op.register_client()
    old_token = op.client_credentials_token(client)
    old_kid = jwt_header(old_token)["kid"]
    op.restart()
    assert jwt_header(op.client_credentials_token(client))["kid"] == old_kid
    op.restart(keys_file=op.new_keys_file())
    new_token = op.client_credentials_token(client)
    assert jwt_header(new_token)["kid"] != old_kid
    assert [k["kid"] for k in op.jwks()["keys"]] == [jwt_header(new_token)["kid"]]
    verify_with_op_keys(op, new_token, "urn:test:api")


# -- upstream --------------------------------------------------------------------------


async def test_upstream_echo_returns_request_headers(
    upstream: str, http_session: aiohttp.ClientSession
) -> None:
    async with http_session.post(
        URL(f"{upstream}/any/p%61th?x=1&y=%2F", encoded=True),
        data=b"12345",
        headers={"X-Test": "hello"},
    ) as resp:
        assert resp.status == 200
        echo = await resp.json()
    assert echo["method"] == "POST"
    assert echo["path"] == "/any/path"  # decoded
    assert echo["raw_path"] == "/any/p%61th?x=1&y=%2F"
    assert echo["query"] == "x=1&y=%2F"
    assert echo["headers"]["X-Test"] == "hello"
    assert ["X-Test", "hello"] in echo["header_list"]
    assert echo["body_length"] == 5


async def test_upstream_big_streams_and_sink_hashes(upstream: str) -> None:
    size = 5 * 1024 * 1024 + 7
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{upstream}/big?bytes={size}") as resp:
            assert resp.content_length == size
            chunks = [len(c) async for c in resp.content.iter_any()]
        assert sum(chunks) == size
        assert len(chunks) > 1  # arrived in pieces, not as one buffered body
        async with s.get(f"{upstream}/big?bytes=1000&chunked=1") as resp:
            assert resp.headers.get("Transfer-Encoding") == "chunked"
            assert len(await resp.read()) == 1000

        payload = secrets.token_bytes(300_000)
        async with s.post(f"{upstream}/sink", data=payload) as resp:
            result = await resp.json()
        assert result == {"bytes": len(payload), "sha256": hashlib.sha256(payload).hexdigest()}


async def test_upstream_status_websocket_and_headers(upstream: str) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{upstream}/status/418") as resp:
            assert resp.status == 418
        async with s.get(f"{upstream}/set-headers?X-One=1&Set-Cookie=a%3Db") as resp:
            assert resp.headers["X-One"] == "1"
            assert resp.headers["Set-Cookie"] == "a=b"
        async with s.ws_connect(f"{upstream}/ws") as ws:
            await ws.send_str("ping")
            assert await ws.receive_str(timeout=5) == "ping"
            await ws.send_bytes(b"\x00\x01")
            assert await ws.receive_bytes(timeout=5) == b"\x00\x01"


# -- browser-less login against a minimal relying party ----------------------------------


class MiniRP:
    """A tiny code-flow relying party (confidential client) to exercise the helpers."""

    def __init__(self, op: OidcProvider, port: int) -> None:
        self.op = op
        self.base = f"http://127.0.0.1:{port}"
        self.client = op.register_client(
            redirect_uris=[f"{self.base}/cb"],
            post_logout_redirect_uris=[f"{self.base}/bye"],
            backchannel_logout_uri=f"{self.base}/bc",
            backchannel_logout_session_required=True,
            grant_types=["authorization_code", "refresh_token"],
        )
        self.sessions: dict[str, dict[str, Any]] = {}  # cookie -> id_token claims
        self.states: set[str] = set()
        self.logout_tokens: list[dict[str, Any]] = []
        self.app = web.Application()
        self.app.router.add_get("/protected", self.protected)
        self.app.router.add_get("/cb", self.callback)
        self.app.router.add_post("/bc", self.backchannel)
        self.app.router.add_get("/bye", self.bye)

    async def protected(self, request: web.Request) -> web.Response:
        session = self.sessions.get(request.cookies.get("rp", ""))
        if session is not None:
            return web.json_response(session)
        state = secrets.token_urlsafe(8)
        self.states.add(state)
        query = urlencode(
            {
                "client_id": self.client["client_id"],
                "redirect_uri": f"{self.base}/cb",
                "response_type": "code",
                "scope": "openid email profile groups",
                "state": state,
            }
        )
        raise web.HTTPFound(f"{self.op.endpoint('authorization')}?{query}")

    async def callback(self, request: web.Request) -> web.Response:
        assert request.query["iss"] == self.op.issuer
        self.states.remove(request.query["state"])
        form = {
            "grant_type": "authorization_code",
            "code": request.query["code"],
            "redirect_uri": f"{self.base}/cb",
        }
        tokens = self.op.token_request(self.client, form)
        assert tokens["refresh_token"]  # the client has the refresh_token grant
        claims = jwt.decode(tokens["id_token"], options={"verify_signature": False})
        cookie = secrets.token_urlsafe(16)
        self.sessions[cookie] = {**claims, "id_token": tokens["id_token"]}
        resp = web.HTTPFound("/protected")
        resp.set_cookie("rp", cookie)
        raise resp

    async def backchannel(self, request: web.Request) -> web.Response:
        token = (await request.post())["logout_token"]
        assert isinstance(token, str)
        claims = jwt.decode(token, options={"verify_signature": False})
        self.logout_tokens.append(claims)
        for cookie, session in list(self.sessions.items()):
            if session.get("sid") == claims["sid"]:
                del self.sessions[cookie]
        return web.Response()

    async def bye(self, request: web.Request) -> web.Response:
        return web.Response(text="bye")

    def end_session_url(self, cookie: str) -> str:
        query = urlencode(
            {
                "id_token_hint": self.sessions[cookie]["id_token"],
                "post_logout_redirect_uri": f"{self.base}/bye",
            }
        )
        return f"{self.op.endpoint('end_session')}?{query}"


def jar_value(session: aiohttp.ClientSession, name: str) -> str:
    return next(c.value for c in session.cookie_jar if c.key == name)


async def test_http_login_and_op_logout_with_backchannel(oidc_provider: OidcProvider) -> None:
    port = free_port()
    rp = MiniRP(oidc_provider, port)
    async with TestServer(rp.app, host="127.0.0.1", port=port):
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar) as s:
            resp = await http_login(s, f"{rp.base}/protected", user="carol")
            assert resp.status == 200
            assert str(resp.url) == f"{rp.base}/protected"
            me = await resp.json()
            assert me["sub"] == "carol"
            assert me["email"] == "carol@example.test"
            assert me["preferred_username"] == "carol"
            assert me["groups"] == ["users"]

            cookie = jar_value(s, "rp")
            final = await op_logout(s, rp.end_session_url(cookie))
            assert str(final.url) == f"{rp.base}/bye"
            assert await final.text() == "bye"
        assert cookie not in rp.sessions  # the back-channel logout arrived before the redirect
        assert [t["sub"] for t in rp.logout_tokens] == ["carol"]
        assert rp.logout_tokens[0]["events"] == {
            "http://schemas.openid.net/event/backchannel-logout": {}
        }

        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
            resp = await http_login(s, f"{rp.base}/protected", user="alice")
            assert (await resp.json())["groups"] == ["users", "admins"]


async def test_http_login_reports_where_it_got_stuck(oidc_provider: OidcProvider) -> None:
    port = free_port()
    rp = MiniRP(oidc_provider, port)
    rp.base = f"http://127.0.0.1:{port}/wrong"  # a redirect_uri the OP does not know
    async with (
        TestServer(rp.app, host="127.0.0.1", port=port),
        aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s,
    ):
        with pytest.raises(LoginError, match="redirect_uri"):
            await http_login(s, f"http://127.0.0.1:{port}/protected")


# -- the gateway as a process --------------------------------------------------------------


async def test_gateway_process_proxies_a_public_route(
    gateway_factory: GatewayFactory, upstream: str, http_session: aiohttp.ClientSession
) -> None:
    gw = gateway_factory({"routes": [{"path": "/", "upstream": upstream, "auth": "public"}]})
    assert gw.alive
    assert urlsplit(gw.url).hostname == "127.0.0.1"
    async with http_session.get(f"{gw.url}/hello?a=1", headers={"X-Test": "through"}) as resp:
        assert resp.status == 200
        echo = await resp.json()
    assert echo["path"] == "/hello"
    assert echo["headers"]["X-Test"] == "through"
    pid = gw.pid
    gw.stop()
    assert not gw.alive
    assert not port_open(gw.port)
    gw.start()
    assert gw.pid != pid


def test_gateway_process_start_failure_shows_the_log(gateway_factory: GatewayFactory) -> None:
    with pytest.raises(ProcessError, match="upstream"):
        gateway_factory({"routes": [{"path": "/", "upstream": "not-a-url", "auth": "public"}]})


# -- the browser -----------------------------------------------------------------------


async def test_browser_logs_in_through_the_op(oidc_provider: OidcProvider, page: Page) -> None:
    port = free_port()
    rp = MiniRP(oidc_provider, port)
    async with TestServer(rp.app, host="127.0.0.1", port=port):
        await page.goto(f"{rp.base}/protected")
        await page.fill("input[name=login]", "dave")
        await page.fill("input[name=password]", "whatever")
        await page.click("button[type=submit]")
        await page.click("button[type=submit]")  # consent
        await page.wait_for_url(f"{rp.base}/protected")
        me = json.loads(await page.inner_text("body"))
        assert me["sub"] == "dave"
