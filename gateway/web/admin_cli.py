"""`gateway sessions list|revoke`: operate on the configured session store directly."""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime

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
        print(
            "gateway: the memory store lives inside the running process; "
            "use the admin endpoint of that process instead"
        )
        return 1
    if not config.sessions.secrets:
        print("gateway: sessions.secrets is not set, so no stored session can be read")
        return 1
    store = RedisStore.from_config(config.sessions.redis)
    manager = SessionManager(store, KeyRing(config.sessions.secrets), config.sessions, time.time)
    try:
        issuers = _issuers(config, args.provider)
        if args.sessions_command == "list":
            total = await _list(manager, issuers, args.sub, args.sid)
            print(f"{total} session(s) found")
        else:
            total = await _revoke(manager, config, issuers, args.sub, args.sid)
            print(f"{total} session(s) revoked")
        return 0
    finally:
        await manager.close()


async def _list(
    manager: SessionManager, issuers: list[str], sub: str | None, sid: str | None
) -> int:
    found: list[SessionSummary] = []
    for issuer in issuers:
        if sub is not None:
            found += await manager.list_by_sub(issuer, sub)
        elif sid is not None:
            found += await manager.list_by_sid(issuer, sid)
    for s in found:
        print("\t".join([s.short_id, s.provider, s.subject, s.sid or "-", _time(s.expires_at)]))
    return len(found)


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
    return datetime.fromtimestamp(epoch, UTC).strftime("expires %Y-%m-%dT%H:%M:%SZ")
