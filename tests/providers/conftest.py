"""Fixtures for the provider-profile tests: an OP that behaves like one real provider."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.op import OidcProvider
from tests.support.ports import free_port

ProfiledOP = Callable[..., OidcProvider]


@pytest.fixture
def profiled_op(tmp_path: Path) -> Iterator[ProfiledOP]:
    """`profiled_op(profile, issuer_path="", env=None)`: a fresh oidc-provider started with
    OP_PROFILE=profile and issuer http://127.0.0.1:PORT<issuer_path> (see tests/op/op.mjs);
    its `.profile_issuer` is that issuer. Stopped after the test."""
    made: list[OidcProvider] = []

    def start(
        profile: str, *, issuer_path: str = "", env: dict[str, str] | None = None
    ) -> OidcProvider:
        port = free_port()
        issuer = f"http://127.0.0.1:{port}{issuer_path}"
        op = OidcProvider(
            tmp_path / f"op-{profile}-{len(made)}",
            port=port,
            env={"OP_PROFILE": profile, "OP_ISSUER": issuer, **(env or {})},
        )
        op.start()
        op.profile_issuer = issuer  # type: ignore[attr-defined]
        made.append(op)
        return op

    yield start
    for op in made:
        op.stop()
