"""Session administration: the admin endpoints and `gateway sessions list|revoke`."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import jsonschema
import pytest
import yaml

from gateway.sessions.manager import SessionManager
from tests.support.gateway import GatewayProcess
from tests.support.op import OidcProvider
from tests.support.ports import free_port
from tests.support.redis import RedisServer
from tests.web.login_setup import start_login_gateway
from tests.web.session_setup import ModuleGateways, direct_manager, new_session

ADMIN_TOKEN = "admin-" + "x" * 40


@dataclass
class Admin:
    gw: GatewayProcess
    issuer: str
    redis: RedisServer
    key_prefix: str
    internal_port: int
    client_id: str

    @property
    def sessions_url(self) -> str:
        """On the internal listener, where the admin endpoints are served by default."""
        return f"http://127.0.0.1:{self.internal_port}/_gateway/admin/sessions"


@pytest.fixture(scope="module")
def admin(
    tmp_path_factory: pytest.TempPathFactory,
    oidc_provider: OidcProvider,
    redis_server: RedisServer,
    upstream: str,
) -> Iterator[Admin]:
    internal_port = free_port()
    factory = ModuleGateways(
        tmp_path_factory,
        admin={"token": ADMIN_TOKEN},
        metrics={"listen": f"127.0.0.1:{internal_port}"},
    )
    key_prefix = f"adm-{secrets.token_hex(4)}:"
    sessions = {"store": "redis", "redis": {"url": redis_server.url, "key_prefix": key_prefix}}
    try:
        gw, client = start_login_gateway(
            factory, oidc_provider, upstream, sessions=sessions, name="admin"
        )
        yield Admin(
            gw, oidc_provider.issuer, redis_server, key_prefix, internal_port, client["client_id"]
        )
    finally:
        factory.stop_all()


@pytest.fixture
async def manager(admin: Admin) -> AsyncIterator[SessionManager]:
    made = direct_manager(admin.redis.url, admin.key_prefix)
    yield made
    await made.close()


def bearer(token: str = ADMIN_TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Accept": "application/json"}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        bearer("admin-wrong"),
        bearer(ADMIN_TOKEN[:-1]),
        {"Authorization": f"Basic {ADMIN_TOKEN}"},
    ],
    ids=["none", "wrong", "prefix of the token", "basic scheme"],
)
async def test_admin_needs_the_configured_credential(
    admin: Admin, manager: SessionManager, headers: dict[str, str]
) -> None:
    """Without the exact admin token: 401, nothing listed, nothing revoked."""
    sub = "nina-" + secrets.token_hex(3)
    await new_session(manager, admin.issuer, sub, None, client_id=admin.client_id)
    async with aiohttp.ClientSession() as http:
        listed = await http.get(admin.sessions_url, params={"sub": sub}, headers=headers)
        revoked = await http.post(
            f"{admin.sessions_url}/revoke", json={"sub": sub}, headers=headers
        )
    assert (listed.status, revoked.status) == (401, 401)
    assert "Bearer" in listed.headers["WWW-Authenticate"]
    assert len(await manager.list_by_sub(admin.issuer, sub)) == 1


async def test_admin_lists_and_revokes_by_sub_and_sid(
    admin: Admin, manager: SessionManager
) -> None:
    """List by sub and by sid; revoke by sub ends only that user's sessions, by sid one."""
    leo, mia = "leo-" + secrets.token_hex(3), "mia-" + secrets.token_hex(3)
    await new_session(manager, admin.issuer, leo, "sid-leo-1", client_id=admin.client_id)
    await new_session(manager, admin.issuer, leo, "sid-leo-2", client_id=admin.client_id)
    await new_session(manager, admin.issuer, mia, "sid-mia-" + leo, client_id=admin.client_id)
    async with aiohttp.ClientSession(headers=bearer()) as http:
        by_sub = await (await http.get(admin.sessions_url, params={"sub": leo})).json()
        assert sorted(s["sid"] for s in by_sub["sessions"]) == ["sid-leo-1", "sid-leo-2"]
        assert {leo} == {s["sub"] for s in by_sub["sessions"]}
        by_sid = await http.get(admin.sessions_url, params={"sid": "sid-mia-" + leo})
        assert [mia] == [s["sub"] for s in (await by_sid.json())["sessions"]]
        revoke = await http.post(f"{admin.sessions_url}/revoke", json={"sub": leo})
        assert (revoke.status, await revoke.json()) == (200, {"revoked": 2})
        form = await http.post(f"{admin.sessions_url}/revoke", data={"sid": "sid-mia-" + leo})
        assert await form.json() == {"revoked": 1}
    assert await manager.list_by_sub(admin.issuer, leo) == []
    assert await manager.list_by_sub(admin.issuer, mia) == []


@pytest.mark.parametrize(
    ("method", "query", "body"),
    [
        ("GET", {}, None),
        ("GET", {"sub": "a", "sid": "b"}, None),
        ("GET", {"sub": "a", "provider": "nope"}, None),
        ("POST", {}, {"sub": ["a"]}),
        ("POST", {}, "not json"),
        ("POST", {}, {}),
    ],
    ids=["neither", "both", "unknown provider", "sub not a string", "bad json", "empty"],
)
async def test_admin_bad_requests_get_400(
    admin: Admin, method: str, query: dict[str, str], body: Any
) -> None:
    """Malformed admin requests get a 400 JSON error, not a traceback."""
    url = admin.sessions_url if method == "GET" else f"{admin.sessions_url}/revoke"
    data = body if isinstance(body, str) else None
    payload = None if isinstance(body, str) else body
    headers = {**bearer(), "Content-Type": "application/json"}
    async with aiohttp.ClientSession() as http:
        response = await http.request(
            method, url, params=query, json=payload, data=data, headers=headers
        )
        assert response.status == 400
        assert (await response.json())["error"] == "bad_request"


async def test_admin_endpoints_do_not_exist_without_a_token(
    gateway_factory: Any, upstream: str
) -> None:
    """No admin.token configured: the admin paths answer 404, even with a credential."""
    gw = gateway_factory({"routes": [{"path": "/", "upstream": upstream, "auth": "public"}]})
    async with aiohttp.ClientSession(headers=bearer()) as http:
        listed = await http.get(f"{gw.url}/_gateway/admin/sessions", params={"sub": "x"})
        revoked = await http.post(f"{gw.url}/_gateway/admin/sessions/revoke", json={"sub": "x"})
    assert (listed.status, revoked.status) == (404, 404)


def gateway_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args], capture_output=True, text=True, timeout=60
    )


async def test_sessions_cli_lists_and_revokes_against_the_store(
    admin: Admin, manager: SessionManager, tmp_path: Path
) -> None:
    """`gateway sessions list/revoke` work on the shared store, and a running instance
    stops accepting the revoked session at once."""
    sub = "olga-" + secrets.token_hex(3)
    ticket = await new_session(
        manager, admin.issuer, sub, "sid-olga-" + sub, client_id=admin.client_id
    )
    await new_session(manager, admin.issuer, sub, None, client_id=admin.client_id)
    config = tmp_path / "gw.yaml"
    config.write_text(yaml.safe_dump(admin.gw.config))
    cookie = {"Cookie": f"gateway_session={ticket}", "Accept": "application/json"}
    async with aiohttp.ClientSession() as http:
        assert (await http.get(f"{admin.gw.url}/x", headers=cookie)).status == 200
        listed = gateway_cli("sessions", "list", "--sub", sub, "-c", str(config))
        assert listed.returncode == 0, listed.stderr
        assert "2 session(s) found" in listed.stdout
        assert f"sid-olga-{sub}" in listed.stdout
        revoked = gateway_cli("sessions", "revoke", "--sid", f"sid-olga-{sub}", "-c", str(config))
        assert (revoked.returncode, revoked.stdout.strip()) == (0, "1 session(s) revoked")
        assert (await http.get(f"{admin.gw.url}/x", headers=cookie)).status == 401
    [left] = await manager.list_by_sub(admin.issuer, sub)
    assert left.sid is None


def test_sessions_cli_names_the_admin_endpoint_for_the_memory_store(
    tmp_path: Path, upstream: str
) -> None:
    """With the memory store the CLI names the running process's admin URL to ask instead
    (it used to say "use the admin endpoint" without naming it)."""
    config = tmp_path / "gw.yaml"
    config.write_text(yaml.safe_dump({
        "routes": [{"path": "/", "upstream": upstream}],
        "admin": {"token": ADMIN_TOKEN}, "metrics": {"listen": "127.0.0.1:9464"},
    }))  # fmt: skip
    result = gateway_cli("sessions", "list", "--all", "-c", str(config))
    assert result.returncode == 1
    assert "GET http://127.0.0.1:9464/_gateway/admin/sessions?all=true" in result.stderr
    assert ADMIN_TOKEN not in result.stderr
    assert "Traceback" not in result.stderr


def _validator(document: dict[str, Any], schema: dict[str, Any]) -> jsonschema.Validator:
    """A validator for one schema of the OpenAPI document (its $refs resolve in it)."""
    return jsonschema.Draft202012Validator({**schema, "components": document["components"]})


def _response_schema(document: dict[str, Any], path: str, method: str) -> dict[str, Any]:
    ok = document["paths"][path][method]["responses"]["200"]
    schema: dict[str, Any] = ok["content"]["application/json"]["schema"]
    return schema


async def test_admin_api_answers_as_its_openapi_description_says(
    admin: Admin, manager: SessionManager
) -> None:
    """The gateway serves an OpenAPI 3.1 description of its admin API; the listing by sub,
    the paged listing of all sessions and the revocation answer as it describes."""
    sub = "pat-" + secrets.token_hex(3)
    for i in range(5):
        await new_session(manager, admin.issuer, sub, f"sid-{sub}-{i}", client_id=admin.client_id)
    base = f"http://127.0.0.1:{admin.internal_port}"
    async with aiohttp.ClientSession(headers=bearer()) as http:
        document = await (await http.get(f"{base}/_gateway/admin/openapi.json")).json()
        jsonschema.Draft202012Validator.check_schema(document["components"]["schemas"]["Session"])
        assert document["openapi"].startswith("3.1")
        listing = _validator(
            document, _response_schema(document, "/_gateway/admin/sessions", "get")
        )
        by_sub = await (await http.get(admin.sessions_url, params={"sub": sub})).json()
        listing.validate(by_sub)
        assert len(by_sub["sessions"]) == 5
        seen: list[str] = []
        params = {"all": "true", "limit": "2"}
        for _ in range(100):
            page = await (await http.get(admin.sessions_url, params=params)).json()
            listing.validate(page)
            seen += [s["sid"] for s in page["sessions"] if s["sub"] == sub]
            if page["next_cursor"] is None:
                break
            params["cursor"] = page["next_cursor"]
        assert sorted(seen) == [f"sid-{sub}-{i}" for i in range(5)]
        revoke = await http.post(f"{admin.sessions_url}/revoke", json={"sub": sub})
        path = "/_gateway/admin/sessions/revoke"
        _validator(document, _response_schema(document, path, "post")).validate(await revoke.json())
        bad = await http.get(admin.sessions_url, params={"all": "true", "limit": "0"})
        assert bad.status == 400
        assert "400" in document["paths"]["/_gateway/admin/sessions"]["get"]["responses"]


async def test_sessions_cli_lists_all_with_headers_and_json(
    admin: Admin, manager: SessionManager, tmp_path: Path
) -> None:
    """`sessions list --all` pages through the whole store (page size 2 here), prints a
    header row, and `--json` gives the admin API's fields for every session."""
    sub = "quin-" + secrets.token_hex(3)
    for i in range(3):
        await new_session(manager, admin.issuer, sub, f"sid-{sub}-{i}", client_id=admin.client_id)
    config = tmp_path / "gw.yaml"
    config.write_text(yaml.safe_dump(admin.gw.config))
    table = gateway_cli("sessions", "list", "--all", "--page-size", "2", "-c", str(config))
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["ID", "PROVIDER", "SUB", "SID", "CREATED", "EXPIRES"]
    assert sum(sub in line for line in lines) == 3
    listed = gateway_cli("sessions", "list", "--all", "--json", "-c", str(config))
    rows = [row for row in json.loads(listed.stdout) if row["sub"] == sub]
    assert sorted(row["sid"] for row in rows) == [f"sid-{sub}-{i}" for i in range(3)]
    assert set(rows[0]) == {"id", "provider", "issuer", "sub", "sid", "created_at", "expires_at"}
