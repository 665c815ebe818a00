"""DNS for calls to identity providers: internal addresses refused at connect time.

The SSRF guard resolves a provider's host before each call, but the connection resolves
it again; a DNS answer that changes in between (rebinding) could still reach an internal
service. This resolver filters the connection's own answers, so both agree.
"""

from __future__ import annotations

import ipaddress
import socket

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from gateway.config.model import Config
from gateway.idp.addresses import address_problem


class PublicOnlyResolver(AbstractResolver):
    """Resolves like aiohttp does, then keeps only public addresses (none left: an error)."""

    def __init__(self, inner: AbstractResolver | None = None) -> None:
        self._inner = inner or aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        public = [r for r in results if address_problem(ipaddress.ip_address(r["host"])) is None]
        if not public:
            raise OSError(f"{host} resolves only to internal addresses (refused)")
        return public

    async def close(self) -> None:
        await self._inner.close()


def idp_connector(config: Config) -> aiohttp.TCPConnector:
    """The connector for provider calls; filters DNS unless some entry allows private networks."""
    private_ok = any(p.allow_private_network for p in config.providers) or any(
        i.allow_private_network for i in config.bearer.issuers
    )
    return aiohttp.TCPConnector(resolver=None if private_ok else PublicOnlyResolver())
