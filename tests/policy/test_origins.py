"""Which Origin may open a session WebSocket: the route's own, or one it allows (table)."""

from __future__ import annotations

import pytest
import yaml

from gateway.config import parse_config
from gateway.config.model import canonical_origin
from gateway.errors import ConfigError
from gateway.policy.origins import websocket_origin_allowed

OWN = "https://app.example.com"
ALLOWED = frozenset({"https://admin.example.com", "http://localhost:3000"})


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        ("https://app.example.com", True),
        ("HTTPS://APP.Example.com:443", True),
        ("https://admin.example.com", True),
        ("http://localhost:3000", True),
        ("http://app.example.com", False),  # same host, other scheme: another origin
        ("https://app.example.com:8443", False),
        ("https://evil.example.com", False),
        ("https://app.example.com.evil.test", False),
        ("http://localhost:3001", False),
        ("null", False),  # sandboxed frames, file: pages
        ("", False),
        (None, False),
        ("https://app.example.com/path", False),
        ("https://user@app.example.com", False),
        ("https://app.example.com:99999", False),
    ],
)
def test_origin_table(origin: str | None, allowed: bool) -> None:
    """Only the canonical own origin or an allow-listed one passes; absent or odd ones fail."""
    assert websocket_origin_allowed(origin, OWN, ALLOWED) is allowed


def test_own_origin_with_a_default_port_in_host_matches() -> None:
    """A Host header that spells out the default port still names the browser's origin."""
    assert websocket_origin_allowed("http://app.test", "http://app.test:80", ())


@pytest.mark.parametrize("bad", ["app.example.com", "ftp://x", "https://", "https://a/b", "*"])
def test_allow_list_entries_must_be_origins(bad: str) -> None:
    """A config entry that is not scheme://host[:port] is a config error naming its key."""
    text = yaml.safe_dump(
        {"routes": [{"upstream": "http://127.0.0.1:1", "websocket_origins": [bad]}]}
    )
    with pytest.raises(ConfigError, match=r"routes\[0\]\.websocket_origins\[0\]: "):
        parse_config(text)


def test_allow_list_entries_are_kept_canonical() -> None:
    """Entries are compared in their canonical form, whatever case or default port they use."""
    assert canonical_origin("HTTPS://Admin.Example.com:443/") == "https://admin.example.com"
