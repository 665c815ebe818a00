"""The shipped example config and reference are generated from the schema and stay in sync."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import parse_config
from gateway.config.reference import example_yaml, markdown_reference

ROOT = Path(__file__).resolve().parents[2]


def test_example_config_is_up_to_date() -> None:
    """config.example.yaml equals `gateway config example` (regenerate it if this fails)."""
    assert example_yaml() == (ROOT / "config.example.yaml").read_text()


def test_reference_is_up_to_date() -> None:
    """docs/configuration.md equals `gateway config reference`."""
    assert markdown_reference() == (ROOT / "docs" / "configuration.md").read_text()


def test_example_config_is_itself_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    """The example validates, so users can start from it."""
    for name in ("GATEWAY_CLIENT_SECRET", "GATEWAY_RS_SECRET"):
        monkeypatch.setenv(name, "example")
    monkeypatch.setenv("GATEWAY_SESSION_SECRET", "s" * 40)
    config = parse_config(example_yaml())
    assert config.prefix == "/_gateway"


def test_every_key_is_documented() -> None:
    """Every key of the schema appears in the example file."""
    text = example_yaml()
    for key in (
        "public_url:",
        "trusted_proxies:",
        "backchannel_logout:",
        "negative_cache_ttl:",
        "refresh_grace:",
        "strip_prefixes:",
        "identity_token:",
        "introspection:",
    ):
        assert key in text
