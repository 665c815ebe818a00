"""Back-channel and front-channel logout across two gateway instances sharing one Redis."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import secrets
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import aiohttp
import pytest
import yaml

from gateway.config.model import Config, Sessions
from gateway.crypto import KeyRing, digest
from gateway.secret import Secret
from gateway.sessions.layout import sess_key
from gateway.sessions.manager import SessionManager
from gateway.sessions.shared import shared_namespace
from tests.support.gateway import GatewayProcess
from tests.support.login import HTML_ACCEPT, http_login, op_logout
from tests.support.logout_tokens import foreign_rsa_key, logout_claims, sign, unsigned
from tests.support.op import OidcProvider
from tests.support.ports import free_port
from tests.support.redis import RedisServer
from tests.support.watchers import BulkWriter, Monitor, NoticeSink, command_keys
from tests.web.login_setup import SECRET, start_login_gateway
from tests.web.session_setup import ModuleGateways, direct_manager, handle_of, new_session

JSON = {"Accept": "application/json"}


@dataclass
class Pair:
    """Instances A and B: one client at the OP, whose back-channel URI is B's."""

    a: GatewayProcess
    b: GatewayProcess
    client: dict[str, Any]
    op: OidcProvider
    redis: RedisServer
    key_prefix: str
    sink: NoticeSink

    def backchannel(self, gw: GatewayProcess) -> str:
        return f"{gw.url}/_gateway/backchannel-logout"

    def manager(self) -> SessionManager:
        return direct_manager(self.redis.url, self.key_prefix)

    async def session(self, manager: SessionManager, sub: str, sid: str | None) -> str:
        return await new_session(
            manager, self.op.issuer, sub, sid, client_id=self.client["client_id"]
        )


@pytest.fixture(scope="module")
def pair(
    tmp_path_factory: pytest.TempPathFactory,
    oidc_provider: OidcProvider,
    redis_server: RedisServer,
    upstream: str,
) -> Iterator[Pair]:
    factory = ModuleGateways(tmp_path_factory)
    port_a, port_b = free_port(), free_port()
    a_prefix, b_prefix = (
        f"http://127.0.0.1:{port_a}/_gateway",
        f"http://127.0.0.1:{port_b}/_gateway",
    )
    client = oidc_provider.register_client(
        redirect_uris=[f"{a_prefix}/callback"],
        post_logout_redirect_uris=[f"{a_prefix}/logged-out"],
        grant_types=["authorization_code", "refresh_token"],
        backchannel_logout_uri=f"{b_prefix}/backchannel-logout",
        backchannel_logout_session_required=True,
    )
    key_prefix = f"bc-{secrets.token_hex(4)}:"
    sessions = {"store": "redis", "redis": {"url": redis_server.url, "key_prefix": key_prefix}}
    sink = NoticeSink()
    routes = [{"path": "/", "upstream": upstream, "logout_notify_url": sink.url}]
    try:
        gws = [
            start_login_gateway(
                factory, oidc_provider, upstream, sessions=sessions, routes=routes,
                name=name, port=port, client=client,
            )[0]
            for name, port in (("a", port_a), ("b", port_b))
        ]  # fmt: skip
        yield Pair(gws[0], gws[1], client, oidc_provider, redis_server, key_prefix, sink)
    finally:
        sink.close()
        factory.stop_all()


@pytest.fixture
async def manager(pair: Pair) -> AsyncIterator[SessionManager]:
    made = pair.manager()
    yield made
    await made.close()


def jar() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def post_token(url: str, token: str) -> aiohttp.ClientResponse:
    async with aiohttp.ClientSession() as http:
        response = await http.post(url, data={"logout_token": token})
        await response.read()
        return response


async def test_signout_at_provider_ends_session_on_every_instance(
    pair: Pair, manager: SessionManager
) -> None:
    """Login at A, sign out at the OP, the OP calls B: A no longer knows the session."""
    user = f"frank-{secrets.token_hex(3)}"
    async with jar() as session:
        await http_login(session, f"{pair.a.url}/app", user=user)
        before = await session.get(f"{pair.a.url}/app", headers=JSON)
        assert before.status == 200
        [alive] = await manager.list_by_sub(pair.op.issuer, user)
        assert alive.sid is not None
        final = await op_logout(session, pair.op.endpoint("end_session"))
        assert "signed out" in (await final.text()).lower()
        after = await session.get(f"{pair.a.url}/app", headers=JSON)
        assert after.status == 401
    assert await manager.list_by_sub(pair.op.issuer, user) == []
    notice = await pair.sink.wait_for(lambda n: n["sub"] == user)
    expected = {"sub": user, "sid": alive.sid, "issuer": pair.op.issuer, "reason": "backchannel"}
    assert notice == expected
    assert "backchannel.success" in pair.op.log_text()


async def test_replayed_token_is_refused_by_the_other_instance(
    pair: Pair, manager: SessionManager
) -> None:
    """A token accepted by A is refused by B (same jti), and the replay kills nothing."""
    sid = "sid-" + secrets.token_hex(6)
    await pair.session(manager, "grace", sid)
    token = sign(pair.op, logout_claims(pair.op, pair.client["client_id"], sub="grace", sid=sid))
    first = await post_token(pair.backchannel(pair.a), token)
    assert (first.status, first.headers["Cache-Control"]) == (200, "no-store")
    assert await manager.list_by_sid(pair.op.issuer, sid) == []
    again = await pair.session(manager, "grace", sid)
    replay = await post_token(pair.backchannel(pair.b), token)
    assert (replay.status, replay.headers["Cache-Control"]) == (400, "no-store")
    body = await replay.json()
    assert body["error"] == "invalid_request"
    assert "already used" in body["error_description"]
    [survivor] = await manager.list_by_sid(pair.op.issuer, sid)
    assert survivor.handle == handle_of(again)


def replay_keys(pair: Pair, jti: str) -> tuple[str, str]:
    """Where a jti's "already used" mark lives: unsealed (before), and now (namespaced)."""
    name = digest(f"{pair.op.issuer}\x00{jti}")
    namespace = shared_namespace(Config.model_validate(pair.b.config))
    return (
        f"{pair.key_prefix}logout-jti:{name}",
        f"{pair.key_prefix}logout_jti:{namespace}:{name}",
    )


def stranger_mark(key: str, key_prefix: str) -> bytes:
    """A mark in the sealed format, for the very key, under a secret the gateways lack."""
    stranger = KeyRing([Secret("not-the-gateways-secret-" + "y" * 24)]).derive("shared-state")
    plain = json.dumps({"exp": time.time() + 600, "value": None}).encode()
    bare = key.removeprefix(key_prefix).encode()
    return stranger.seal(plain, key_material=bare, context=b"shared/logout_jti")


async def test_forged_replay_mark_does_not_refuse_a_genuine_logout(
    pair: Pair, manager: SessionManager
) -> None:
    """A "jti already used" mark planted in Redis for a genuine logout token (the bare
    marker where the unsealed cache looked, one in the sealed format under another secret
    where it looks now) does not refuse that logout: the session is gone from Redis. The
    mark the gateway then writes is obeyed: a replay to the other instance gets 400."""
    sid, sub = "sid-" + secrets.token_hex(6), "kate-" + secrets.token_hex(3)
    ticket = await pair.session(manager, sub, sid)
    claims = logout_claims(pair.op, pair.client["client_id"], sub=sub, sid=sid)
    raw = pair.redis.client()
    unsealed, sealed = replay_keys(pair, claims["jti"])
    raw.set(unsealed, b"1", px=600_000)
    raw.set(sealed, stranger_mark(sealed, pair.key_prefix), px=600_000)
    token = sign(pair.op, claims)
    response = await post_token(pair.backchannel(pair.b), token)
    assert response.status == 200
    assert raw.get(pair.key_prefix + sess_key(handle_of(ticket))) is None
    replay = await post_token(pair.backchannel(pair.a), token)
    assert replay.status == 400


def bad_tokens(op: OidcProvider, client_id: str, sub: str, sid: str) -> dict[str, str]:
    def good(**overrides: Any) -> dict[str, Any]:
        return logout_claims(op, client_id, **{"sub": sub, "sid": sid, **overrides})

    return {
        "bad signature": sign(op, good(), key=foreign_rsa_key()),
        "nonce": sign(op, good(nonce="n-1")),
        "no events": sign(op, good(events=None)),
        "events not an object": sign(op, good(events=["backchannel-logout"])),
        "wrong aud": sign(op, logout_claims(op, "other-client", sub=sub, sid=sid)),
        "neither sid nor sub": sign(op, good(sub=None, sid=None)),
        "alg none": unsigned(good()),
        "no jti": sign(op, good(jti=None)),
        "too old": sign(op, good(iat=int(time.time()) - 3600, exp=int(time.time()) + 60)),
    }


BAD = [
    "bad signature",
    "nonce",
    "no events",
    "events not an object",
    "wrong aud",
    "neither sid nor sub",
    "alg none",
    "no jti",
    "too old",
]


@pytest.mark.parametrize("case", BAD)
async def test_invalid_token_is_refused_and_kills_nothing(
    pair: Pair, manager: SessionManager, case: str
) -> None:
    """An invalid logout token gets 400 JSON (no-store) and every session stays alive."""
    sid, sub = "sid-" + secrets.token_hex(6), "henry-" + secrets.token_hex(3)
    await pair.session(manager, sub, sid)
    await pair.session(manager, sub, None)
    token = bad_tokens(pair.op, pair.client["client_id"], sub, sid)[case]
    response = await post_token(pair.backchannel(pair.b), token)
    assert (response.status, response.headers["Cache-Control"]) == (400, "no-store")
    assert (await response.json())["error"] == "invalid_request"
    assert len(await manager.list_by_sub(pair.op.issuer, sub)) == 2


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", b'{"logout_token": "x"}'),
        ("application/x-www-form-urlencoded", b""),
        ("application/x-www-form-urlencoded", b"logout_token=a&logout_token=b"),
        ("application/x-www-form-urlencoded", b"logout_token=%ff%fe"),
    ],
    # a body over limits.max_gateway_body_size is refused with 413 before the endpoint
    # (tests/web/test_edge_limits.py)
    ids=["json", "empty", "two tokens", "not utf-8"],
)
async def test_malformed_requests_get_400_json(pair: Pair, content_type: str, body: bytes) -> None:
    """Anything but one form-encoded logout_token is a 400 JSON error, never a traceback."""
    async with aiohttp.ClientSession() as http:
        response = await http.post(
            pair.backchannel(pair.b), data=body, headers={"Content-Type": content_type}
        )
        payload = await response.json()
    assert (response.status, response.headers["Cache-Control"]) == (400, "no-store")
    assert payload["error"] == "invalid_request"
    assert "Traceback" not in pair.b.log_text()


async def test_sid_logout_spares_the_users_other_provider_sessions(
    pair: Pair, manager: SessionManager
) -> None:
    """sid + sub ends that provider session and sid-less ones; other sids of the user live."""
    sub, sid, other = "ivy-" + secrets.token_hex(3), "sid-a-" + secrets.token_hex(4), "sid-b"
    await pair.session(manager, sub, sid)
    await pair.session(manager, sub, None)
    await pair.session(manager, sub, other)
    token = sign(pair.op, logout_claims(pair.op, pair.client["client_id"], sub=sub, sid=sid))
    assert (await post_token(pair.backchannel(pair.a), token)).status == 200
    assert [s.sid for s in await manager.list_by_sub(pair.op.issuer, sub)] == [other]


async def create_many(pair: Pair, count: int) -> None:
    """``count`` sessions of distinct users, each with its own sid."""
    writer = BulkWriter(pair.redis.client(), pair.key_prefix)
    settings = Sessions.model_validate({"cache_ttl": 0})
    bulk = SessionManager(writer, KeyRing([Secret(SECRET)]), settings, time.time)  # type: ignore[arg-type]
    for n in range(count):
        await pair.session(bulk, f"bystander-{n}", f"sid-by-{n}")
    writer.pipe.execute()


@pytest.mark.slow
async def test_logout_touches_only_that_users_keys(pair: Pair, manager: SessionManager) -> None:
    """With 10,000 other users' sessions stored, a logout reads and writes only the
    logged-out user's keys: no scan, a handful of commands."""
    await create_many(pair, 10_000)
    sub, sid = "judy-" + secrets.token_hex(3), "sid-" + secrets.token_hex(6)
    tickets = [
        await pair.session(manager, sub, sid),
        await pair.session(manager, sub, sid),
    ]
    handles = {handle_of(t) for t in tickets}
    claims = logout_claims(pair.op, pair.client["client_id"], sub=sub, sid=sid)
    token = sign(pair.op, claims)
    await post_token(
        pair.backchannel(pair.b),
        sign(
            pair.op, logout_claims(pair.op, pair.client["client_id"], sub="warm-up", sid="warm-up")
        ),
    )  # JWKS, discovery
    raw = pair.redis.client()
    dbsize = int(cast(int, raw.dbsize()))
    assert dbsize >= 30_000  # each bystander: a session, a sub index, a sid index
    with Monitor(pair.redis.url) as watched:
        response = await post_token(pair.backchannel(pair.b), token)
    assert response.status == 200
    mine = {
        pair.key_prefix + k
        for k in (manager.sub_index(pair.op.issuer, sub), manager.sid_index(pair.op.issuer, sid))
    }
    mine |= {pair.key_prefix + sess_key(h) for h in handles}
    mine |= {replay_keys(pair, claims["jti"])[1]}
    mine.add(pair.key_prefix + "invalidate")
    touched = command_keys(watched.commands, pair.key_prefix)
    assert touched <= mine, touched - mine
    assert not [c for c in watched.commands if c.split()[0].upper() in ("SCAN", "KEYS")]
    assert len(watched.commands) < 30, watched.commands
    # 2 sessions + 2 indexes gone, 1 replay marker added; the 10,000 others are all there
    assert raw.dbsize() == dbsize - 4 + 1
    assert len(await manager.list_by_sub(pair.op.issuer, "bystander-9999")) == 1


async def test_frontchannel_logout_ends_the_sid_and_may_be_framed(
    pair: Pair, manager: SessionManager
) -> None:
    """GET ?iss=&sid= ends that provider session; the page may be framed by the OP only."""
    sid, sub = "sid-" + secrets.token_hex(6), "kim-" + secrets.token_hex(3)
    await pair.session(manager, sub, sid)
    await pair.session(manager, sub, "sid-other")
    url = f"{pair.a.url}/_gateway/frontchannel-logout"
    async with aiohttp.ClientSession() as http:
        missing = await http.get(
            url, params={"iss": pair.op.issuer}, headers={"Accept": HTML_ACCEPT}
        )
        unknown = await http.get(url, params={"iss": "https://evil.test", "sid": sid})
        assert (missing.status, unknown.status) == (400, 400)
        assert len(await manager.list_by_sub(pair.op.issuer, sub)) == 2
        page = await http.get(url, params={"iss": pair.op.issuer, "sid": sid})
        assert page.status == 200
        csp = page.headers["Content-Security-Policy"]
    assert f"frame-ancestors {pair.op.issuer}" in csp
    assert "X-Frame-Options" not in page.headers
    assert page.headers["Cache-Control"] == "no-store"
    assert [s.sid for s in await manager.list_by_sub(pair.op.issuer, sub)] == ["sid-other"]
    notice = await pair.sink.wait_for(lambda n: n["sub"] == sub)
    assert notice["reason"] == "frontchannel"
    # One audit line for it, naming the provider session and how many sessions ended.
    audit = [
        json.loads(line)
        for line in pair.a.log_text().splitlines()
        if '"event":"frontchannel_logout"' in line and sid in line
    ]
    assert [(a["iss"], a["sid"], a["sessions"]) for a in audit] == [(pair.op.issuer, sid, 1)]


def test_check_prints_the_backchannel_uri(pair: Pair, tmp_path: Path) -> None:
    """`gateway check` checks the provider live and names the URI to register."""
    config = dict(pair.b.config, public_url="https://gw.example.com")
    path = tmp_path / "gw.yaml"
    path.write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "check", "-c", str(path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert re.search(
        r"backchannel_logout_uri: +https://gw.example.com/_gateway/backchannel-logout",
        result.stdout,
    ), result.stdout + result.stderr
    assert "back-channel logout with session ids is advertised" in result.stdout


async def test_emptied_indexes_never_keep_a_session_alive_through_logout(
    pair: Pair, manager: SessionManager
) -> None:
    """A neighbour on Redis cannot find one user's index (its name is a keyed MAC, not a
    hash anyone can compute), and deleting every index does not keep sessions alive through
    a back-channel logout: a session missing from its index counts as ended."""
    sub, sid = "lena-" + secrets.token_hex(3), "sid-" + secrets.token_hex(6)
    ticket = await pair.session(manager, sub, sid)
    raw = pair.redis.client()
    plain = hashlib.sha256(f"{pair.op.issuer}\x00{sub}".encode()).hexdigest()
    assert 0 == raw.exists(pair.key_prefix + "idx:sub:" + plain)
    cookie = {"Cookie": f"gateway_session={ticket}", "Accept": "application/json"}
    async with aiohttp.ClientSession() as http:
        assert 200 == (await http.get(f"{pair.a.url}/x", headers=cookie)).status
        for key in raw.scan_iter(match=pair.key_prefix + "idx:*", count=1000):
            raw.delete(key)
        token = sign(pair.op, logout_claims(pair.op, pair.client["client_id"], sub=sub, sid=sid))
        assert 200 == (await post_token(pair.backchannel(pair.b), token)).status
        # Each instance's cache may hold the opened session for sessions.cache_ttl (2 s).
        for gw in (pair.b, pair.a):
            deadline, status = time.monotonic() + 10, 200
            while status == 200 and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
                status = (await http.get(f"{gw.url}/x", headers=cookie)).status
            assert 401 == status, gw.name
