"""The audit log: one JSON line per security event on its own logger, in its own file when
`logging.audit.file` is set, with identifiers (sub, iss, client address) and no secret."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp

from tests.support.login import HTML_ACCEPT, http_login, op_logout
from tests.support.op import OidcProvider
from tests.support.ports import free_port
from tests.test_log_secrets import callback_parameters, recorder
from tests.web.login_setup import SECRET, start_login_gateway

ADMIN_TOKEN = "admin-" + "a" * 40


def audit_lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


async def settled(path: Path, count: int) -> list[dict[str, Any]]:
    """The audit file once it holds ``count`` lines (a background revocation may lag)."""
    for _ in range(100):
        lines = audit_lines(path)
        if len(lines) >= count:
            return lines
        await asyncio.sleep(0.05)
    return audit_lines(path)


def only(lines: list[dict[str, Any]], event: str, **fields: Any) -> dict[str, Any]:
    """The one line of ``event`` with these field values (fails if none or several)."""
    found = [
        line
        for line in lines
        if line["event"] == event and all(line.get(k) == v for k, v in fields.items())
    ]
    assert len(found) == 1, f"{event} {fields}: {found} in {lines}"
    return found[0]


async def test_security_events_go_to_the_audit_file_without_secrets(
    gateway_factory: Any, oidc_provider: OidcProvider, upstream: str, tmp_path: Path
) -> None:
    """A login, a failed callback, an RP logout, a back-channel logout from the real OP, an
    admin revoke and a refused admin call each write exactly one audit line, with the right
    event, subject, issuer, session count and client address, only to
    `logging.audit.file` (not to stderr), whatever `logging.format`; no token, code, state,
    cookie, admin token or secret appears in it."""
    audit_file = tmp_path / "audit.jsonl"
    internal = free_port()
    routes = [{"name": "app", "path": "/", "upstream": upstream, "auth": "login",
               "pass_access_token": True}]  # fmt: skip
    gw, client = start_login_gateway(
        gateway_factory, oidc_provider, upstream, routes=routes,
        extra={
            "logging": {"format": "text", "audit": {"file": str(audit_file)}},
            "admin": {"token": ADMIN_TOKEN},
            "metrics": {"listen": f"127.0.0.1:{internal}"},
        },
    )  # fmt: skip
    admin_url = f"http://127.0.0.1:{internal}/_gateway/admin/sessions"
    urls: list[str] = []
    tokens: list[str] = []
    cookies: list[str] = []

    async def sign_in(user: str) -> aiohttp.ClientSession:
        jar = aiohttp.CookieJar(unsafe=True)
        session = aiohttp.ClientSession(cookie_jar=jar, trace_configs=[recorder(urls)])
        answer = await http_login(session, f"{gw.url}/app", user=user)
        tokens.append((await answer.json())["headers"]["Authorization"].removeprefix("Bearer "))
        cookies.extend(c.value for c in jar)
        return session

    olga = await sign_in("olga")
    bert = await sign_in("bert")
    carol = await sign_in("carol")
    try:
        # A callback with a code and a state but no login-binding cookie: refused.
        async with aiohttp.ClientSession() as stranger:
            bad = await stranger.get(
                f"{gw.url}/_gateway/callback?code=forgedcode123456&state=forgedstate12345",
                headers={"Accept": HTML_ACCEPT},
            )
            assert bad.status >= 400
        # olga logs out at the gateway (RP-initiated).
        page = await (await olga.get(f"{gw.url}/_gateway/logout")).text()
        csrf = page.split('name="csrf" value="')[1].split('"')[0]
        out = await olga.post(f"{gw.url}/_gateway/logout", data={"csrf": csrf},
                              allow_redirects=False)  # fmt: skip
        assert out.status == 302
        # bert signs out at the OP: it sends the gateway a back-channel logout token.
        await op_logout(bert, oidc_provider.discovery["end_session_endpoint"])
        # carol's sessions are revoked by an admin; then a caller with a wrong token.
        async with aiohttp.ClientSession() as http:
            auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
            carol_sub = only(audit_lines(audit_file), "login_succeeded", sub="carol")["sub"]
            revoked = await http.post(f"{admin_url}/revoke", json={"sub": carol_sub},
                                      headers=auth)  # fmt: skip
            assert (await revoked.json())["revoked"] == 1
            wrong_auth = {"Authorization": "Bearer wrong-admin-token-xyz"}
            wrong = await http.get(admin_url, params={"sub": "carol"}, headers=wrong_auth)
            assert wrong.status == 401
    finally:
        for session in (olga, bert, carol):
            await session.close()

    lines = await settled(audit_file, 8)
    for line in lines:
        assert line["logger"] == "gateway.audit"
        assert line["message"] == line["event"]
    issuer = oidc_provider.issuer
    for user in ("olga", "bert", "carol"):
        login = only(lines, "login_succeeded", sub=user)
        assert (login["provider"], login["iss"], login["client"]) == ("op", issuer, "127.0.0.1")
    failed = only(lines, "login_failed")
    assert (failed["reason"], failed["page_reason"]) == ("refused", "expired")
    logout = only(lines, "logout", sub="olga")
    assert (logout["iss"], logout["sessions"]) == (issuer, 1)
    backchannel = only(lines, "backchannel_logout", sub="bert")
    assert (backchannel["iss"], backchannel["sessions"]) == (issuer, 1)
    revoke = only(lines, "admin_sessions_revoked", sub="carol")
    assert (revoke["sessions"], revoke["client"]) == (1, "127.0.0.1")
    assert only(lines, "admin_refused")["client"] == "127.0.0.1"

    # Separable: none of these lines reached the main log.
    assert "gateway.audit" not in gw.log_text()
    assert "login_succeeded" not in gw.log_text()
    text = audit_file.read_text()
    secrets = {
        "client secret": client["client_secret"],
        "session secret": SECRET,
        "admin token": ADMIN_TOKEN,
        "wrong admin token": "wrong-admin-token-xyz",
        "forged code": "forgedcode123456",
        "forged state": "forgedstate12345",
        "csrf": csrf,
        **{f"token {i}": t for i, t in enumerate(tokens)},
        **{f"callback value {i}": v for i, v in enumerate(callback_parameters(urls))},
        **{f"cookie {i}": c for i, c in enumerate(cookies) if len(c) >= 16},
    }
    leaked = [name for name, value in secrets.items() if value in text]
    assert leaked == []


async def test_audit_lines_join_the_main_log_without_a_file_and_stop_when_disabled(
    gateway_factory: Any, oidc_provider: OidcProvider, upstream: str
) -> None:
    """Without `logging.audit.file` a login's audit line is in the main log (JSON, logger
    gateway.audit); with `logging.audit.enabled: false` no audit line is written at all."""
    for enabled in (True, False):
        gw, _ = start_login_gateway(
            gateway_factory, oidc_provider, upstream, name=f"audit-{enabled}",
            extra={"logging": {"format": "json", "audit": {"enabled": enabled}}},
        )  # fmt: skip
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
            await http_login(s, f"{gw.url}/", user="dora")
        await asyncio.sleep(0.2)
        records = [json.loads(x) for x in gw.log_text().splitlines() if x.startswith("{")]
        audit = [r for r in records if r["logger"] == "gateway.audit"]
        if enabled:
            assert [(r["event"], r["sub"]) for r in audit] == [("login_succeeded", "dora")]
        else:
            assert audit == []
            assert any(r["message"] == "login completed" for r in records)
        gw.stop()
