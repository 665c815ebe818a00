"""The token response's token_type decides whether the gateway can use the access token."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support.login import http_login
from tests.support.op import OidcProvider
from tests.web.login_setup import start_login_gateway


@pytest.mark.parametrize("token_type", ["mac", "absent"])
async def test_login_fails_for_a_token_type_it_cannot_use(
    gateway_factory: Any, upstream: str, tmp_path: Path, token_type: str
) -> None:
    """A token response whose token_type is not Bearer (or missing) fails the login with a
    reason in the log; no session is made and the upstream is never reached."""
    op = OidcProvider(tmp_path / "op", env={"OP_TOKEN_TYPE": token_type})
    op.start()
    try:
        gw, _ = start_login_gateway(gateway_factory, op, upstream)
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
            landed = await http_login(session, f"{gw.url}/app", user="kim")
            assert landed.status == 400
            assert "headers" not in await landed.text()
            after = await session.get(f"{gw.url}/app", headers={"Accept": "application/json"})
            assert after.status == 401
        assert "token_type" in gw.log_text()
    finally:
        op.stop()
