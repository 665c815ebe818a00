"""Fixtures for the provider-profile tests: an OP that behaves like one real provider."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.op import OidcProvider
from tests.support.ports import free_port


class ProfiledProvider(OidcProvider):
    """An oidc-provider started with a provider profile; `profile_issuer` is its issuer."""

    profile_issuer: str


ProfiledOP = Callable[..., ProfiledProvider]


@pytest.fixture
def profiled_op(tmp_path: Path) -> Iterator[ProfiledOP]:
    """`profiled_op(profile, issuer_path="", env=None)`: a fresh oidc-provider started with
    OP_PROFILE=profile and issuer http://127.0.0.1:PORT<issuer_path> (see tests/op/op.mjs);
    its `.profile_issuer` is that issuer. Stopped after the test."""
    made: list[ProfiledProvider] = []

    def start(
        profile: str, *, issuer_path: str = "", env: dict[str, str] | None = None
    ) -> ProfiledProvider:
        port = free_port()
        issuer = f"http://127.0.0.1:{port}{issuer_path}"
        op = ProfiledProvider(
            tmp_path / f"op-{profile}-{len(made)}",
            port=port,
            env={"OP_PROFILE": profile, "OP_ISSUER": issuer, **(env or {})},
        )
        op.start()
        op.profile_issuer = issuer
        made.append(op)
        return op

    yield start
    for op in made:
        op.stop()
