"""`gateway sessions list|revoke`: operate on the configured session store directly."""

from __future__ import annotations

import argparse
import time

from gateway.config.model import Config
from gateway.crypto import KeyRing
from gateway.sessions.manager import SessionManager, SessionSummary
from gateway.sessions.redis import RedisStore


def _issuers(config: Config, provider: str | None) -> list[str]:
    chosen = [p for p in config.providers if provider is None or p.name == provider]
    if provider is not None and not chosen:
        raise SystemExit(f"gateway: no provider named {provider!r}")
    return [p.issuer for p in chosen]


async def sessions_command(args: argparse.Namespace, config: Config) -> int:
    """List or revoke sessions by sub or sid, through the store's indexes."""
    if config.sessions.store != "redis":
        print(
            "gateway: the memory store lives inside the running process; "
            "use the admin endpoint of that process instead"
        )
        return 1
    store = RedisStore.from_config(config.sessions.redis)
    keyring = KeyRing(config.sessions.secrets) if config.sessions.secrets else KeyRing.ephemeral()
    manager = SessionManager(store, keyring, config.sessions, time.time)
    try:
        await manager.start()
        total = 0
        for issuer in _issuers(config, args.provider):
            if args.sessions_command == "list":
                found = await (
                    manager.list_by_sub(issuer, args.sub)
                    if args.sub
                    else manager.list_by_sid(issuer, args.sid)
                )
                _print(issuer, found)
                total += len(found)
            else:
                total += await (
                    manager.destroy_by_sub(issuer, args.sub)
                    if args.sub
                    else manager.destroy_by_sid(issuer, args.sid)
                )
        verb = "found" if args.sessions_command == "list" else "revoked"
        print(f"{total} session(s) {verb}")
        return 0
    finally:
        await manager.close()


def _print(issuer: str, sessions: list[SessionSummary]) -> None:
    for s in sessions:
        print(f"{issuer}\t{s.short_id}\t{s}")
