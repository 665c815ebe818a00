"""Browser login through the gateway against the real oidc-provider."""

from __future__ import annotations

from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
import redis

from tests.support.login import HTML_ACCEPT, http_login, op_logout
from tests.support.op import OidcProvider
from tests.support.redis import RedisServer
from tests.web.login_setup import login_state, start_login_gateway


def jar() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def test_login_forwards_identity_and_strips_spoofed_headers(
    gateway_factory: Any, oidc_provider: OidcProvider, upstream: str
) -> None:
    """After login the upstream sees the identity headers; spoofed ones never reach it."""
    gw, _ = start_login_gateway(gateway_factory, oidc_provider, upstream)
    async with jar() as session:
        landed = await http_login(session, f"{gw.url}/app/page?x=1", user="alice")
        assert landed.status == 200
        assert f"{gw.url}/app/page?x=1" == str(landed.url)
        response = await session.get(
            f"{gw.url}/app/page",
            headers=[
                ("x-auth-request-email", "mallory@evil.test"),
                ("X-AUTH-REQUEST-USER", "mallory"),
                ("X-Auth-Request-Groups", "admins"),
                ("X-Auth-Request-Groups", "root"),
                ("X-Gateway-Anything", "forged"),
            ],
        )
        assert response.status == 200
        body = await response.json()
    received = [(k.lower(), v) for k, v in body["header_list"]]
    assert ("x-auth-request-user", "alice") in received
    assert ("x-auth-request-email", "alice@example.test") in received
    assert ("x-auth-request-groups", "users,admins") in received
    assert all("mallory" not in v and v not in ("root", "forged") for _, v in received)
    assert sum(k == "x-auth-request-groups" for k, _ in received) == 1
    cookie_header = dict(received).get("cookie", "")
    assert "gateway_session" not in cookie_header  # the ticket never reaches the upstream


@pytest.mark.parametrize("auth_method", ["client_secret_post", "none", "private_key_jwt"])
async def test_login_with_each_client_authentication(
    gateway_factory: Any, oidc_provider: OidcProvider, upstream: str, auth_method: str
) -> None:
    """The code exchange works with every supported token-endpoint auth method."""
    gw, _ = start_login_gateway(gateway_factory, oidc_provider, upstream, auth_method=auth_method)
    async with jar() as session:
        landed = await http_login(session, f"{gw.url}/", user="bob")
        body = await landed.json()
    assert body["headers"]["X-Auth-Request-User"] == "bob"


async def test_login_with_hand_configured_endpoints(
    gateway_factory: Any, oidc_provider: OidcProvider, upstream: str
) -> None:
    """A provider without discovery, endpoints given by hand (PiPA), logs in the same way."""
    gw, _ = start_login_gateway(gateway_factory, oidc_provider, upstream, discovery=False)
    async with jar() as session:
        landed = await http_login(session, f"{gw.url}/", user="carol")
        body = await landed.json()
    assert body["headers"]["X-Auth-Request-Email"] == "carol@example.test"


async def test_redis_store_keeps_no_readable_token(
    gateway_factory: Any, oidc_provider: OidcProvider, upstream: str, redis_server: RedisServer
) -> None:
    """With Redis, login works and the raw session records contain no token."""
    routes = [{"path": "/", "upstream": upstream, "auth": "login", "pass_access_token": True}]
    gw, _ = start_login_gateway(
        gateway_factory,
        oidc_provider,
        upstream,
        routes=routes,
        sessions={"store": "redis", "redis": {"url": redis_server.url, "key_prefix": "t-raw:"}},
    )
    async with jar() as session:
        landed = await http_login(session, f"{gw.url}/", user="dave")
        body = await landed.json()
    access_token = body["headers"]["Authorization"].removeprefix("Bearer ")
    assert len(access_token) > 20
    client = redis.Redis.from_url(redis_server.url)
    keys = list(client.scan_iter("t-raw:*"))
    assert keys, "the session must be in Redis"
    strings = [cast(bytes | None, client.get(k)) for k in keys if client.type(k) == b"string"]
    members = [cast(set[bytes], client.smembers(k)) for k in keys if client.type(k) == b"set"]
    raw = b"".join(v or b"" for v in strings) + b"".join(b"".join(m) for m in members)
    assert access_token.encode() not in raw
    assert b"dave@example.test" not in raw


async def test_unauthenticated_requests(
    gateway_factory: Any, oidc_provider: OidcProvider, upstream: str
) -> None:
    """API calls get 401 JSON; a navigation is sent to the provider with state, nonce, PKCE."""
    gw, client = start_login_gateway(gateway_factory, oidc_provider, upstream)
    async with jar() as session:
        api = await session.get(f"{gw.url}/data", headers={"Accept": "application/json"})
        assert api.status == 401
        assert (await api.json())["error"] == "unauthorized"
        post = await session.post(
            f"{gw.url}/form",
            data={"a": "1"},
            allow_redirects=False,
            headers={"Accept": HTML_ACCEPT},
        )
        assert post.status == 401
        nav = await session.get(
            f"{gw.url}/page", allow_redirects=False, headers={"Accept": HTML_ACCEPT}
        )
    assert nav.status == 302
    location = urlsplit(nav.headers["Location"])
    assert oidc_provider.discovery["authorization_endpoint"] == (
        f"{location.scheme}://{location.netloc}{location.path}"
    )
    query = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert client["client_id"] == query["client_id"]
    assert query["code_challenge_method"] == "S256"
    assert len(query["code_challenge"]) == 43
    assert len(query["state"]) >= 22
    assert len(query["nonce"]) >= 22
    assert query["scope"] == "openid email profile groups offline_access"
    assert query["prompt"] == "consent"
    assert f"{gw.url}/_gateway/callback" == query["redirect_uri"]


async def test_logout_ends_session_here_and_at_provider(
    gateway_factory: Any, oidc_provider: OidcProvider, upstream: str
) -> None:
    """Logout kills the gateway session, and the provider's; the old cookie stays dead."""
    gw, _ = start_login_gateway(gateway_factory, oidc_provider, upstream)
    async with jar() as session:
        await http_login(session, f"{gw.url}/", user="erin")
        old_cookies = {c.key: c.value for c in session.cookie_jar}
        page = await session.get(f"{gw.url}/_gateway/logout")
        html = await page.text()
        csrf = html.split('name="csrf" value="')[1].split('"')[0]
        forged = await session.post(
            f"{gw.url}/_gateway/logout", data={"csrf": "forged"}, allow_redirects=False
        )
        assert forged.status == 400
        response = await session.post(
            f"{gw.url}/_gateway/logout", data={"csrf": csrf}, allow_redirects=False
        )
        assert response.status == 302
        end = urlsplit(response.headers["Location"])
        query = parse_qs(end.query)
        assert oidc_provider.discovery["end_session_endpoint"].endswith(end.path)
        assert "id_token_hint" in query
        assert "state" in query
        assert [f"{gw.url}/_gateway/logged-out"] == query["post_logout_redirect_uri"]
        final = await op_logout(session, response)
        assert "signed out" in (await final.text()).lower()
        again = await session.get(
            f"{gw.url}/", allow_redirects=False, headers={"Accept": HTML_ACCEPT}
        )
        assert again.status == 302  # asks to sign in again
    async with jar() as replay:
        name = next(k for k in old_cookies if k.endswith("gateway_session"))
        response = await replay.get(
            f"{gw.url}/",
            headers={"Cookie": f"{name}={old_cookies[name]}", "Accept": "application/json"},
        )
        assert response.status == 401


async def test_reused_state_is_refused(
    gateway_factory: Any, oidc_provider: OidcProvider, upstream: str
) -> None:
    """Replaying a callback URL (same state) gets a 400 page and no new session."""
    gw, _ = start_login_gateway(gateway_factory, oidc_provider, upstream)
    callbacks: list[str] = []

    async def trace(_s: Any, _c: Any, params: aiohttp.TraceRequestEndParams) -> None:
        if params.url.path == "/_gateway/callback":
            callbacks.append(str(params.url))

    config = aiohttp.TraceConfig()
    config.on_request_end.append(trace)
    async with aiohttp.ClientSession(
        cookie_jar=aiohttp.CookieJar(unsafe=True), trace_configs=[config]
    ) as traced:
        await http_login(traced, f"{gw.url}/", user="frank")
        assert len(callbacks) == 1
        traced.cookie_jar.clear(lambda c: c.key.endswith("gateway_session"))
        replay = await traced.get(
            callbacks[0], allow_redirects=False, headers={"Accept": HTML_ACCEPT}
        )
        assert replay.status == 400
        assert "took too long or was already used" in await replay.text()
        assert not any(c.key.endswith("gateway_session") and c.value for c in traced.cookie_jar)


async def test_state_from_another_browser_is_refused(
    gateway_factory: Any, oidc_provider: OidcProvider, upstream: str
) -> None:
    """A callback carried to another browser (no binding cookie) is refused."""
    gw, _ = start_login_gateway(gateway_factory, oidc_provider, upstream)
    async with jar() as victim:
        state = await login_state(victim, f"{gw.url}/")
    async with jar() as attacker:
        response = await attacker.get(
            f"{gw.url}/_gateway/callback?state={state}&code=whatever",
            allow_redirects=False,
            headers={"Accept": HTML_ACCEPT},
        )
        assert response.status == 400


async def test_open_redirect_after_login_goes_home(
    gateway_factory: Any, oidc_provider: OidcProvider, upstream: str
) -> None:
    """A login started with rd=//evil.test returns to '/' on the gateway."""
    gw, _ = start_login_gateway(gateway_factory, oidc_provider, upstream)
    async with jar() as session:
        landed = await http_login(session, f"{gw.url}/_gateway/login?rd=//evil.test/x")
        assert f"{gw.url}/" == str(landed.url)


async def test_userinfo_endpoint(
    gateway_factory: Any, oidc_provider: OidcProvider, upstream: str
) -> None:
    """/_gateway/userinfo returns the session's identity, 401 without one."""
    gw, _ = start_login_gateway(gateway_factory, oidc_provider, upstream)
    async with jar() as session:
        anonymous = await session.get(f"{gw.url}/_gateway/userinfo")
        assert anonymous.status == 401
        await http_login(session, f"{gw.url}/", user="alice")
        info = await (await session.get(f"{gw.url}/_gateway/userinfo")).json()
    assert info["sub"] == "alice"
    assert info["claims"]["email"] == "alice@example.test"
    assert "nonce" not in info["claims"]


async def test_rotated_provider_key_is_fetched(
    gateway_factory: Any, fresh_oidc_provider: OidcProvider, upstream: str
) -> None:
    """After the provider rotates its key, the next id_token's unknown kid triggers a refetch."""
    op = fresh_oidc_provider
    gw, _ = start_login_gateway(gateway_factory, op, upstream)
    async with jar() as session:
        await http_login(session, f"{gw.url}/", user="gina")
    op.restart(keys_file=op.new_keys_file())
    async with jar() as session:
        landed = await http_login(session, f"{gw.url}/", user="hank")
        assert (await landed.json())["headers"]["X-Auth-Request-User"] == "hank"
