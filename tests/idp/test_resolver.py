"""Connect-time DNS filtering for provider calls (DNS rebinding defence)."""

from __future__ import annotations

import socket

import aiohttp
import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from gateway.config import parse_config
from gateway.idp.resolver import PublicOnlyResolver, idp_connector


class ScriptedDns(AbstractResolver):
    """A resolver whose answers the test sets (what a rebinding DNS server would send)."""

    def __init__(self, *addresses: str) -> None:
        self.addresses = addresses

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(hostname=host, host=a, port=port, family=family, proto=0, flags=0)
            for a in self.addresses
        ]

    async def close(self) -> None:
        return None


async def test_internal_answers_are_refused_at_connect_time() -> None:
    """A name that now resolves to loopback or a private network cannot be connected to."""
    for address in ("127.0.0.1", "10.1.2.3", "169.254.169.254", "::1"):
        with pytest.raises(OSError, match="internal addresses"):
            await PublicOnlyResolver(ScriptedDns(address)).resolve("idp.example.com", 443)


async def test_public_answers_pass_and_internal_ones_are_dropped() -> None:
    """Of a mixed answer only the public addresses are used."""
    results = await PublicOnlyResolver(ScriptedDns("10.0.0.1", "93.184.216.34")).resolve(
        "idp.example.com", 443
    )
    assert ["93.184.216.34"] == [r["host"] for r in results]


async def test_real_connection_to_a_loopback_name_is_refused() -> None:
    """Through a real aiohttp session, 'localhost' (resolving to 127.0.0.1) is not reached."""
    config = parse_config(
        "routes: [{path: /, upstream: 'http://u'}]\n"
        "providers: [{name: op, issuer: 'https://idp.example.com', client_id: c,"
        " client_secret: s}]\n"
    )
    async with aiohttp.ClientSession(connector=idp_connector(config)) as session:
        with pytest.raises(aiohttp.ClientConnectorError):
            await session.get("http://localhost:9/")
