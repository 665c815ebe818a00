"""Fixtures: the fake identity provider on a real loopback server."""

from __future__ import annotations

from tests.idp.fake_provider import fake_provider

__all__ = ["fake_provider"]
