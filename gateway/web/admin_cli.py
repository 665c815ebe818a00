"""`gateway sessions list|revoke`: operate on the configured session store directly."""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from typing import Any

import aiohttp

from gateway.config.model import Config
from gateway.crypto import KeyRing
from gateway.idp.resolver import idp_connector
from gateway.login.provider import ProviderClient
from gateway.sessions.manager import SessionManager, SessionSummary
from gateway.sessions.redis import RedisStore
from gateway.web.logout_notify import (
    end_matching,
    notices_of,
    revoke_ended,
    send_notices,
    wants_notices,
)


def _issuers(config: Config, provider: str | None) -> list[str]:
    chosen = [p for p in config.providers if provider is None or p.name == provider]
    if provider is not None and not chosen:
        raise SystemExit(f"gateway: no provider named {provider!r}")
    return sorted({p.issuer for p in chosen})


async def sessions_command(args: argparse.Namespace, config: Config) -> int:
    """List or revoke sessions by sub or sid, through the store's indexes."""
    if config.sessions.store != "redis":
        print(f"gateway: {memory_store_hint(config)}", file=sys.stderr)
        return 1
    if not config.sessions.secrets:
        print("gateway: sessions.secrets is not set, so no stored session can be read")
        return 1
    store = RedisStore.from_config(config.sessions.redis)
    manager = SessionManager(store, KeyRing(config.sessions.secrets), config.sessions, time.time)
    try:
        issuers = _issuers(config, args.provider)
        if args.sessions_command == "list":
            if args.all:
                found = await _all(manager, max(1, args.page_size))
            else:
                found = await _matching(manager, issuers, args.sub, args.sid)
            _print(found, as_json=args.json)
        else:
            total = await _revoke(manager, config, issuers, args.sub, args.sid)
            print(f"{total} session(s) revoked")
        return 0
    finally:
        await manager.close()


async def _matching(
    manager: SessionManager, issuers: list[str], sub: str | None, sid: str | None
) -> list[SessionSummary]:
    found: list[SessionSummary] = []
    for issuer in issuers:
        if sub is not None:
            found += await manager.list_by_sub(issuer, sub)
        elif sid is not None:
            found += await manager.list_by_sid(issuer, sid)
    return found


async def _all(manager: SessionManager, page_size: int) -> list[SessionSummary]:
    """Every live session, read a page at a time (the store is scanned, never dumped)."""
    found: list[SessionSummary] = []
    page, cursor = await manager.list_all("", page_size)
    found += page
    while cursor:
        page, cursor = await manager.list_all(cursor, page_size)
        found += page
    return sorted(found, key=lambda s: s.created_at)


HEADERS = ("ID", "PROVIDER", "SUB", "SID", "CREATED", "EXPIRES")


def _print(found: list[SessionSummary], *, as_json: bool) -> None:
    if as_json:
        print(json.dumps([summary_dict(s) for s in found], indent=2))
        return
    rows = [HEADERS] + [
        (s.short_id, s.provider, s.subject, s.sid or "-", _time(s.created_at), _time(s.expires_at))
        for s in found
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADERS))]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    print(f"{len(found)} session(s) found")


def summary_dict(s: SessionSummary) -> dict[str, Any]:
    """The same fields the admin API returns for a session."""
    return {"id": s.short_id, "provider": s.provider, "issuer": s.issuer, "sub": s.subject,
            "sid": s.sid, "created_at": s.created_at, "expires_at": s.expires_at}  # fmt: skip


def memory_store_hint(config: Config) -> str:
    """Where the sessions of a memory store can be listed: the running process's admin API."""
    where = "the memory store lives inside the running gateway process"
    if config.admin.token is None:
        return f"{where}; set admin.token to reach its sessions through the admin API"
    base = config.prefix.rstrip("/") + "/admin/sessions"
    if config.metrics.listen is not None:
        url = f"http://{config.metrics.listen}{base}"
    elif config.admin.public:
        origin = config.public_url or f"http://{config.listen.host}:{config.listen.port}"
        url = origin.rstrip("/") + base
    else:
        return f"{where}; its admin API is on the internal listener: set metrics.listen"
    return (f"{where}; ask it instead: GET {url}?all=true with Authorization: Bearer "
            "<admin.token> (see /admin/openapi.json next to it)")  # fmt: skip


async def _revoke(
    manager: SessionManager, config: Config, issuers: list[str], sub: str | None, sid: str | None
) -> int:
    """End the sessions (sid alone: that provider session only), then notify upstreams."""
    notify = wants_notices(config)
    revoke = config.sessions.revoke_tokens_on_admin_end
    total = 0
    doomed: list[SessionSummary] = []
    for issuer in issuers:
        ended, which = await end_matching(
            manager, issuer, sid=sid, sub=sub, collect=notify or revoke
        )
        total, doomed = total + ended, doomed + which
    if notify and doomed:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
            await send_notices(http, config, notices_of(doomed, "admin"))
    if revoke and doomed:
        async with aiohttp.ClientSession(
            connector=idp_connector(config), cookie_jar=aiohttp.DummyCookieJar()
        ) as idp:
            providers = {p.name: ProviderClient(p, idp) for p in config.providers}
            revoked = await revoke_ended(providers, doomed)
        print(f"{revoked} token(s) revoked at the provider")
    return total


def _time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
