"""Fixtures: a fake identity provider on a real loopback server (see tests/idp/fake_provider.py)."""

from __future__ import annotations

from tests.idp.fake_provider import fake_provider

__all__ = ["fake_provider"]
