"""Introspection verdicts shared in Redis: forged, foreign-config and stale entries grant
nothing, and deployments with other audiences never share a verdict.

Real gateways (subprocesses) on one real Redis, the real OP introspecting, and an upstream
of the test's own that records every request it served. Entries are planted with redis-py
at the very key a gateway used (found by scanning Redis before and after its request), so
the tests hold whatever the key layout is.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis as redis_sync
import yaml

from gateway.crypto import KeyRing
from gateway.secret import Secret
from tests.support.gateway import REPO_ROOT, GatewayProcess
from tests.support.op import OidcProvider
from tests.support.redis import RedisServer
from tests.web.session_setup import ModuleGateways

API = "urn:test:api"  # the audience of the OP's api and api-opaque tokens
OTHER_API = "urn:test:billing"
OPAQUE = "urn:test:api-opaque"
PREFIX = "gw:"  # the default key prefix: two deployments that both kept it
SECRET = "shared-state-deployment-secret-0123456789"
USER_HEADER = "X-Auth-Request-User"
CACHE_TTL = 2  # seconds a positive verdict is cached (the stale case waits it out)


class RecordingUpstream:
    """An upstream that answers 200 with the headers it got and records every request."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str]]] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                headers = dict(self.headers.items())
                recorder.requests.append((self.path, headers))
                body = json.dumps({"path": self.path, "headers": headers}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def saw(self, path: str) -> list[dict[str, str]]:
        """The headers of every request the upstream served for ``path``."""
        return [headers for seen, headers in self.requests if seen == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Deployments:
    """Gateways on one Redis with the same prefix and secret: a1 and a2 are instances of
    deployment A (audience API), b is deployment B (audience OTHER_API)."""

    a1: GatewayProcess
    a2: GatewayProcess
    b: GatewayProcess
    op: OidcProvider
    rs: dict[str, Any]
    redis: redis_sync.Redis
    upstream: RecordingUpstream


def gateway_config(
    op: OidcProvider, rs: dict[str, Any], redis_url: str, upstream: str, audience: str
) -> dict[str, Any]:
    issuer = {
        "issuer": op.issuer, "audiences": [audience], "allow_insecure_http": True,
        "allow_private_network": True, "leeway": 0,
        "introspection": {"client_id": rs["client_id"], "client_secret": rs["client_secret"]},
    }  # fmt: skip
    return {
        "routes": [{"path": "/api/", "upstream": upstream, "auth": "bearer"}],
        "bearer": {"issuers": [issuer], "cache_ttl": CACHE_TTL},
        "sessions": {
            "store": "redis",
            "redis": {"url": redis_url, "key_prefix": PREFIX},
            "secrets": [SECRET],
        },
        "identity": {"headers": {USER_HEADER: "sub"}},
    }


@pytest.fixture(scope="module")
def deployments(
    tmp_path_factory: pytest.TempPathFactory, oidc_provider: OidcProvider, redis_server: RedisServer
) -> Iterator[Deployments]:
    upstream = RecordingUpstream()
    factory = ModuleGateways(tmp_path_factory)
    rs = oidc_provider.register_client()
    client = redis_sync.Redis.from_url(redis_server.url)
    try:
        configs = {
            name: gateway_config(oidc_provider, rs, redis_server.url, upstream.url, audience)
            for name, audience in (("a1", API), ("a2", API), ("b", OTHER_API))
        }
        gws = {name: factory(config, name=name, port=None) for name, config in configs.items()}
        yield Deployments(gws["a1"], gws["a2"], gws["b"], oidc_provider, rs, client, upstream)
    finally:
        factory.stop_all()
        client.close()
        upstream.close()


def verdict_keys(redis: redis_sync.Redis) -> set[bytes]:
    return set(redis.scan_iter(match=f"{PREFIX}*introspection*", count=1000))


async def get(gw: GatewayProcess, path: str, token: str) -> tuple[int, dict[str, Any] | None]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{gw.url}{path}", headers={"Authorization": f"Bearer {token}"}) as response,
    ):
        body = await response.json() if response.status == 200 else None
        return response.status, body


async def get_caching(
    d: Deployments, gw: GatewayProcess, path: str, token: str
) -> tuple[int, bytes]:
    """Send ``token`` through ``gw``; the status and the one key its verdict went to."""
    before = verdict_keys(d.redis)
    status, _ = await get(gw, path, token)
    written = verdict_keys(d.redis) - before
    assert len(written) == 1, f"HTTP {status}, and {len(written)} new verdict keys in Redis"
    return status, written.pop()


def opaque_token(d: Deployments) -> str:
    return d.op.client_credentials_token(d.rs, resource=OPAQUE)


def plain_verdict(active: bool) -> bytes:
    """A verdict written as plain JSON, in the layout of the unsealed cache."""
    now = int(time.time())
    result: dict[str, Any] = {"active": False, "reason": "The access token is not active."}
    if active:
        result = {"active": True, "sub": "root", "aud": API, "client_id": "root",
                  "scope": "api:read", "token_type": "Bearer", "exp": now + 3600}  # fmt: skip
    return json.dumps({"expires_at": now + 3600, "result": result}).encode()


def sealed_by_stranger(key: bytes, active: bool) -> bytes:
    """A value in the sealed format, for the very key, but under a secret we do not hold."""
    stranger = KeyRing([Secret("not-the-deployment-secret-" + "x" * 24)]).derive("shared-state")
    record = json.loads(plain_verdict(active))
    plain = json.dumps({"exp": record["expires_at"], "value": record["result"]}).encode()
    bare = key.decode().removeprefix(PREFIX).encode()
    return stranger.seal(plain, key_material=bare, context=b"shared/introspection")


def plant(d: Deployments, key: bytes, value: Any) -> None:
    d.redis.set(key, value, px=600_000)


async def rejections(gw: GatewayProcess) -> float:
    """gateway_shared_cache_rejected_total for introspection entries, all reasons."""
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://{gw.config['metrics']['listen']}/metrics") as response,
    ):
        text = await response.text()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith('gateway_shared_cache_rejected_total{cache="introspection"')
    )


async def test_forged_verdicts_in_redis_never_let_a_made_up_token_in(
    deployments: Deployments,
) -> None:
    """`Authorization: Bearer totally-made-up` with a forged positive verdict planted at its
    key (plain JSON naming sub=root, or the sealed format under another secret) gets 401 at
    another instance, the upstream never sees the request, and the entry is counted."""
    d = deployments
    counted = await rejections(d.a2)
    forgeries: list[tuple[str, Callable[[bytes], bytes]]] = [
        ("totally-made-up", lambda key: plain_verdict(True)),
        ("totally-made-up-2", lambda key: sealed_by_stranger(key, True)),
    ]
    for n, (token, forge) in enumerate(forgeries):
        status, key = await get_caching(d, d.a1, f"/api/probe-{n}", token)
        assert status == 401
        plant(d, key, forge(key))
        status, _ = await get(d.a2, f"/api/forged-{n}", token)
        assert status == 401, token
        assert d.upstream.saw(f"/api/forged-{n}") == []
    assert not [h for _, h in d.upstream.requests if h.get(USER_HEADER) == "root"]
    assert await rejections(d.a2) - counted == 2


async def test_planted_negative_verdict_does_not_refuse_a_valid_token(
    deployments: Deployments,
) -> None:
    """A refusal planted at a valid token's key (plain JSON, or sealed under another secret)
    does not make another instance refuse it: the upstream serves that instance's request."""
    d = deployments
    forgeries: list[Callable[[bytes], bytes]] = [
        lambda key: plain_verdict(False),
        lambda key: sealed_by_stranger(key, False),
    ]
    for n, forge in enumerate(forgeries):
        token = opaque_token(d)
        status, key = await get_caching(d, d.a1, f"/api/first-{n}", token)
        assert status == 200
        plant(d, key, forge(key))
        status, _ = await get(d.a2, f"/api/planted-{n}", token)
        assert status == 200
        [served] = d.upstream.saw(f"/api/planted-{n}")
        assert served[USER_HEADER] == d.rs["client_id"]


async def test_deployments_with_other_audiences_never_share_a_verdict(
    deployments: Deployments,
) -> None:
    """Two deployments on one Redis, same default prefix and secret, other audiences: a
    token for A passes A, and B still refuses it after A cached its verdict; B refusing a
    token first does not make A refuse it. Instances of A still share (one introspection)."""
    d = deployments
    token = opaque_token(d)
    assert (await get(d.a1, "/api/a-first", token))[0] == 200
    assert (await get(d.b, "/api/b-after-a", token))[0] == 401
    assert d.upstream.saw("/api/b-after-a") == []
    other = opaque_token(d)
    assert (await get(d.b, "/api/b-first", other))[0] == 401
    assert (await get(d.a1, "/api/a-after-b", other))[0] == 200
    assert len(d.upstream.saw("/api/a-after-b")) == 1
    # a2 is an instance of A: it uses a1's verdict and does not ask the OP.
    calls = counters(d.op).get("POST /token/introspection", 0)
    assert (await get(d.a2, "/api/a2-shares", other))[0] == 200
    assert counters(d.op).get("POST /token/introspection", 0) == calls


async def test_foreign_and_stale_sealed_verdicts_are_ignored(
    deployments: Deployments,
) -> None:
    """B's genuine refusal copied to A's key for the same token does not refuse it at A; a
    genuine positive verdict of A, re-planted after its expiry for a token revoked
    meanwhile, does not let it in (the OP's answer counts)."""
    d = deployments
    token = opaque_token(d)
    status, b_key = await get_caching(d, d.b, "/api/b-refuses", token)
    assert status == 401
    status, a_key = await get_caching(d, d.a1, "/api/a-accepts", token)
    assert status == 200
    refusal = d.redis.get(b_key)
    assert refusal is not None
    plant(d, a_key, refusal)
    assert (await get(d.a2, "/api/foreign", token))[0] == 200
    assert len(d.upstream.saw("/api/foreign")) == 1

    revoked = opaque_token(d)
    status, key = await get_caching(d, d.a1, "/api/before-revocation", revoked)
    assert status == 200
    genuine = d.redis.get(key)
    assert genuine is not None
    d.op.revoke(d.rs, revoked)
    await asyncio.sleep(CACHE_TTL + 0.5)  # the verdict's own expiry passes
    plant(d, key, genuine)
    assert (await get(d.a2, "/api/stale", revoked))[0] == 401
    assert d.upstream.saw("/api/stale") == []


def counters(op: OidcProvider) -> dict[str, int]:
    """Requests the OP has served, by "METHOD /path" (tests/op/op.mjs)."""
    with urllib.request.urlopen(op.url("/test/counters"), timeout=5) as response:
        found: dict[str, int] = json.loads(response.read())
    return found


def check_output(config: dict[str, Any], path: Path) -> str:
    path.write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "check", "-c", str(path), "--offline"],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=60, check=False,
    )  # fmt: skip
    [line] = [x for x in result.stdout.splitlines() if "namespace" in x]
    return line


def test_check_prints_the_namespace_equal_only_for_equal_configs(
    deployments: Deployments, tmp_path: Path
) -> None:
    """`gateway check` names the namespace: the same for two instances of A (other port),
    another for B."""
    a1, a2, b = (
        check_output(gw.config, tmp_path / f"{gw.name}.yaml")
        for gw in (deployments.a1, deployments.a2, deployments.b)
    )
    assert deployments.a1.port != deployments.a2.port
    assert a1 == a2
    assert a1 != b


async def test_a_session_from_another_deployment_is_not_accepted(
    gateway_factory: Any, oidc_provider: OidcProvider, upstream: str, redis_server: RedisServer
) -> None:
    """Two deployments with their own clients at one provider, sharing a Redis, its default
    prefix and a secret: a session made by one is no session at the other."""
    from tests.web.login_setup import start_login_gateway
    from tests.web.session_setup import direct_manager, new_session

    sessions = {"store": "redis", "redis": {"url": redis_server.url}}
    one, client_one = start_login_gateway(
        gateway_factory, oidc_provider, upstream, sessions=sessions, name="one"
    )
    two, _ = start_login_gateway(
        gateway_factory, oidc_provider, upstream, sessions=sessions, name="two"
    )
    manager = direct_manager(redis_server.url, "gw:")
    try:
        ticket = await new_session(
            manager, oidc_provider.issuer, "alice", None, client_id=client_one["client_id"]
        )
    finally:
        await manager.close()
    cookie = {"Cookie": f"gateway_session={ticket}", "Accept": "application/json"}
    async with aiohttp.ClientSession() as http:
        assert 200 == (await http.get(f"{one.url}/x", headers=cookie)).status
        assert 401 == (await http.get(f"{two.url}/x", headers=cookie)).status
