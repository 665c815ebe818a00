"""Which provider addresses the gateway may call: issuer URL rules and the SSRF guard."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import Awaitable, Callable

from gateway.config.issuer import is_loopback_host, split_url
from gateway.errors import ProviderUnavailable

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str], Awaitable[list[str]]]


def address_problem(ip: IpAddress) -> str | None:
    """Why an address is internal ('a loopback address'...), or None when it is public."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return address_problem(ip.ipv4_mapped)
    checks = (
        (ip.is_unspecified, "an unspecified address"),
        (ip.is_loopback, "a loopback address"),
        (ip.is_link_local, "a link-local address"),
        (ip.is_multicast, "a multicast address"),
        (ip.is_private, "a private address"),
        (ip.is_reserved, "a reserved address"),
        (not ip.is_global, "not a public address"),
    )
    return next((reason for hit, reason in checks if hit), None)


async def resolve_with_loop(host: str) -> list[str]:
    """Every address the host name resolves to, via the event loop's getaddrinfo."""
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, None, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    return [str(info[4][0]) for info in infos]


class AddressGuard:
    """Refuses outbound calls to internal addresses (SSRF) and plain http off loopback."""

    def __init__(
        self,
        *,
        allow_private_network: bool = False,
        allow_insecure_http: bool = False,
        resolver: Resolver = resolve_with_loop,
        cache_ttl: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.allow_private_network = allow_private_network
        self.allow_insecure_http = allow_insecure_http
        self._resolver = resolver
        self._cache_ttl = cache_ttl
        self._clock = clock
        self._verdicts: dict[str, tuple[float, str | None]] = {}

    async def check(self, url: str) -> None:
        """Raise ProviderUnavailable with a plain reason when the URL may not be called."""
        parts = split_url(url)
        if parts is None or not parts.hostname or parts.scheme not in ("http", "https"):
            raise ProviderUnavailable("the provider URL is not an http(s) URL")
        host = parts.hostname
        if parts.scheme == "http" and not (self.allow_insecure_http and is_loopback_host(host)):
            raise ProviderUnavailable(
                f"refused to call {host} over plain http; the provider must use https"
            )
        if self.allow_private_network:
            return
        problem = await self._host_problem(host)
        if problem is not None:
            raise ProviderUnavailable(
                f"refused to call {host}: it is {problem}; "
                "set allow_private_network to allow internal addresses"
            )

    async def _host_problem(self, host: str) -> str | None:
        now = self._clock()
        cached = self._verdicts.get(host)
        if cached is not None and cached[0] > now:
            return cached[1]
        problem = await self._resolve_problem(host)
        if len(self._verdicts) > 1024:
            self._verdicts.clear()
        self._verdicts[host] = (now + self._cache_ttl, problem)
        return problem

    async def _resolve_problem(self, host: str) -> str | None:
        try:
            return _ip_problem(ipaddress.ip_address(host), host)
        except ValueError:
            pass
        try:
            addresses = await self._resolver(host)
        except OSError as exc:
            raise ProviderUnavailable(f"could not resolve {host}: {exc.strerror or exc}") from None
        if not addresses:
            raise ProviderUnavailable(f"could not resolve {host}: no addresses")
        for text in addresses:
            problem = _ip_problem(ipaddress.ip_address(text.split("%", 1)[0]), host)
            if problem is not None:
                return problem
        return None


def _ip_problem(ip: IpAddress, host: str) -> str | None:
    problem = address_problem(ip)
    if problem is None or str(ip) == host:
        return problem
    return f"{problem} ({ip})"
