"""Everything a request needs, compiled once from config and shared by the handlers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp

from gateway.config.model import Config
from gateway.policy.routes import RouteTable
from gateway.proxy.forward import Upstream
from gateway.proxy.headers import REQUEST_DROP, TrustedProxies


@dataclass
class Services:
    """The compiled config plus the long-lived clients opened in the app's cleanup context."""

    config: Config
    routes: RouteTable
    upstreams: dict[int, Upstream]
    trusted: TrustedProxies
    request_drop: frozenset[str]
    upstream_http: aiohttp.ClientSession | None = None
    draining: bool = False
    readiness_checks: dict[str, Callable[[], Awaitable[object]]] = field(default_factory=dict)

    @classmethod
    def compile(cls, config: Config) -> Services:
        routes = RouteTable(config.routes)
        return cls(
            config=config,
            routes=routes,
            upstreams={r.index: Upstream.from_route(r.config) for r in routes},
            trusted=TrustedProxies(config.trusted_proxies),
            request_drop=REQUEST_DROP,
        )

    @property
    def http(self) -> aiohttp.ClientSession:
        if self.upstream_http is None:
            raise RuntimeError("the upstream client is opened by the app's cleanup context")
        return self.upstream_http

    def reload(self, config: Config) -> None:
        """Swap in a new config's routes and upstreams; open clients and sessions stay."""
        fresh = Services.compile(config)
        self.config, self.routes, self.upstreams = fresh.config, fresh.routes, fresh.upstreams
        self.trusted = fresh.trusted
