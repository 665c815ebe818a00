"""Cross-field rules of the configuration model."""

from __future__ import annotations

import pytest

from gateway.config import parse_config
from gateway.errors import ConfigError

PROVIDER = (
    "providers: [{name: op, issuer: 'https://idp.example.com', client_id: c, client_secret: s}]\n"
)


def test_memory_store_with_several_workers_is_refused() -> None:
    """Sessions in one worker's memory would be unknown to the others: a config error."""
    text = "listen: {workers: 2}\nroutes: [{path: /, upstream: 'http://u'}]\n" + PROVIDER
    with pytest.raises(ConfigError, match=r"listen\.workers: each worker process"):
        parse_config(text)


def test_redis_store_with_several_workers_is_fine() -> None:
    """With Redis every worker sees every session."""
    text = (
        "listen: {workers: 2}\nroutes: [{path: /, upstream: 'http://u'}]\n"
        "sessions: {store: redis}\n" + PROVIDER
    )
    assert 2 == parse_config(text).listen.workers
