"""Sessions made directly in the gateways' Redis, and gateways started once per module."""

from __future__ import annotations

import time
from typing import Any

import pytest

from gateway.config.model import RedisConfig, Sessions
from gateway.crypto import KeyRing
from gateway.secret import Secret
from gateway.sessions.codec import Ticket
from gateway.sessions.manager import SessionManager
from gateway.sessions.redis import RedisStore
from gateway.types import SessionRecord, TokenSet
from tests.support.gateway import GatewayProcess
from tests.web.login_setup import SECRET


def direct_manager(redis_url: str, key_prefix: str) -> SessionManager:
    """A manager on a gateway's store and key: the sessions it makes are the gateway's."""
    config = RedisConfig.model_validate({"url": redis_url, "key_prefix": key_prefix})
    settings = Sessions.model_validate({"cache_ttl": 0})
    return SessionManager(
        RedisStore.from_config(config), KeyRing([Secret(SECRET)]), settings, time.time
    )


async def new_session(
    manager: SessionManager,
    issuer: str,
    sub: str,
    sid: str | None,
    provider: str = "op",
    *,
    client_id: str,
) -> str:
    """Store a session as a login would; return its ticket (the cookie value)."""
    record = SessionRecord(
        provider=provider,
        issuer=issuer,
        subject=sub,
        sid=sid,
        claims={"sub": sub},
        tokens=TokenSet(access_token="at-" + sub),
        created_at=0,
        last_seen=0,
        expires_at=time.time() + 3600,
        client_id=client_id,
    )
    return await manager.create(record)


def handle_of(ticket: str) -> str:
    parsed = Ticket.parse(ticket)
    assert parsed is not None
    return parsed.handle


class ModuleGateways:
    """A `factory` for start_login_gateway whose gateways live as long as a module fixture."""

    def __init__(self, tmp: pytest.TempPathFactory, **extra_config: Any) -> None:
        self.tmp = tmp
        self.extra = extra_config
        self.made: list[GatewayProcess] = []

    def __call__(
        self, config: dict[str, Any], *, name: str, port: int | None, start: bool = True
    ) -> GatewayProcess:
        gw = GatewayProcess({**config, **self.extra}, self.tmp.mktemp(name), name=name, port=port)
        self.made.append(gw)
        if start:
            gw.start()
        return gw

    def stop_all(self) -> None:
        for gw in self.made:
            gw.stop()
            print(f"----- log of {gw.name} -----\n{gw.log_text()[-10000:]}")
