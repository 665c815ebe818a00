"""Helpers shared by the session tests (fixtures live in conftest.py)."""

from __future__ import annotations

from collections.abc import Callable

from gateway.config.model import RedisConfig
from gateway.secret import Secret
from gateway.sessions.manager import SessionManager
from gateway.sessions.redis import RedisStore
from tests.support.redis import RedisServer

SECRET = Secret("s" * 40)


class FakeClock:
    """Epoch seconds that move only when a test says so."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def redis_store(server: RedisServer, prefix: str, **config: object) -> RedisStore:
    """A RedisStore on ``server`` whose keys all start with ``prefix``."""
    return RedisStore.from_config(
        RedisConfig.model_validate({"url": server.url, "key_prefix": prefix, **config})
    )


ManagerFactory = Callable[..., SessionManager]
