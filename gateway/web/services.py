"""Everything a request needs, compiled once from config and shared by the handlers."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import aiohttp

from gateway.config.model import Config, Route
from gateway.policy.identity_headers import IdentityHeaderInjector, OwnedHeaders
from gateway.policy.rego import RegoPolicy
from gateway.policy.routes import RouteTable
from gateway.proxy.forward import Upstream
from gateway.proxy.headers import TrustedProxies
from gateway.proxy.upstream_pool import UpstreamPool
from gateway.tokens.minting import IdentityTokens
from gateway.web.ext_authz import AuthorizerClient
from gateway.web.pages.site import Site
from gateway.web.rate_limit import RateLimiter

# Endpoints whose every hit costs the provider or Redis work, so a flood must be capped.
RATE_LIMITED_ENDPOINTS = ("login", "callback", "backchannel-logout", "frontchannel-logout")

if TYPE_CHECKING:
    from gateway.tokens.authenticator import BearerAuthenticator
    from gateway.web.login_services import LoginServices


def owned_headers(route: Route) -> list[str]:
    """Headers only the gateway may set on this route: its identity token, the id_token,
    and what its authorizer may add."""
    owned = [route.pass_id_token_header]
    if route.identity_token is not None:
        owned.append(route.identity_token.header)
    if route.authorizer is not None:
        owned += route.authorizer.upstream_headers  # only the authorizer may set them
    return [name for name in owned if name]


def owned_header_set(config: Config) -> OwnedHeaders:
    """Every route's identity and gateway-set header names, stripped on every route."""
    names: list[str] = list(config.identity.headers)
    for route in config.routes:
        names += [*(route.identity_headers or {}), *owned_headers(route)]
    if config.bearer.client_certificate_header:
        names.append(config.bearer.client_certificate_header)  # vouched for by proxies only
    return OwnedHeaders(names, config.identity.strip_prefixes)


@dataclass(frozen=True, slots=True)
class Compiled:
    """One immutable snapshot of the compiled config; a request keeps the one it started with.

    The tables are keyed by route index, so they must only ever be read from the same
    snapshot as the route: a reload swaps the whole snapshot, never a table in place.
    """

    config: Config
    routes: RouteTable
    upstreams: dict[int, Upstream]
    injectors: dict[int, IdentityHeaderInjector]
    trusted: TrustedProxies
    identity_tokens: IdentityTokens
    owned: OwnedHeaders
    site: Site  # the gateway's own pages: templates, branding, languages
    authorizers: dict[int, AuthorizerClient] = field(default_factory=dict)
    rego: dict[int, RegoPolicy] = field(default_factory=dict)

    @classmethod
    def build(cls, config: Config) -> Compiled:
        routes = RouteTable(config.routes)
        return cls(
            config=config,
            routes=routes,
            upstreams={
                r.index: Upstream.from_route(r.config, r.name)
                for r in routes
                if r.config.upstream is not None
            },
            injectors={
                r.index: IdentityHeaderInjector(
                    config.identity, r.config.identity_headers, owned_headers(r.config)
                )
                for r in routes
            },
            trusted=TrustedProxies(config.trusted_proxies),
            identity_tokens=IdentityTokens.compile(config, routes),
            owned=owned_header_set(config),
            site=Site.compile(config.ui, config.prefix),
            authorizers={
                r.index: AuthorizerClient(r.config.authorizer)
                for r in routes
                if r.config.authorizer is not None
            },
            rego=rego_policies(routes),
        )


def rego_policies(routes: RouteTable) -> dict[int, RegoPolicy]:
    """Each route's Rego policy, compiled (ConfigError names the route on any problem)."""
    return {
        r.index: RegoPolicy(r.config.rego.file, r.config.rego.query, f"routes[{r.index}].rego")
        for r in routes
        if r.config.rego is not None
    }


# Opened by the app's cleanup context or changed while serving: a reload keeps them.
RUNTIME_FIELDS = frozenset(
    {"upstream_http", "upstream_pool", "login", "bearer", "draining", "readiness_checks"}
)


@dataclass
class Services:
    """The compiled config plus the long-lived clients opened in the app's cleanup context."""

    compiled: Compiled
    upstream_http: aiohttp.ClientSession | None = None  # WebSockets to upstreams
    upstream_pool: UpstreamPool | None = None  # every other request to upstreams
    login: LoginServices | None = None
    bearer: BearerAuthenticator | None = None
    rate_limiter: RateLimiter | None = None
    limited_paths: frozenset[str] = frozenset()
    draining: bool = False
    readiness_checks: dict[str, Callable[[], Awaitable[object]]] = field(default_factory=dict)

    @classmethod
    def compile(cls, config: Config) -> Services:
        return cls(
            compiled=Compiled.build(config),
            rate_limiter=RateLimiter(config.rate_limit.per_minute)
            if config.rate_limit.enabled
            else None,
            limited_paths=frozenset(
                config.prefix.rstrip("/") + "/" + name for name in RATE_LIMITED_ENDPOINTS
            ),
        )

    # The current snapshot's parts, for code outside a request's flow (a request reads
    # request[COMPILED] instead, so a reload in the middle cannot mix two configs).
    @property
    def config(self) -> Config:
        return self.compiled.config

    @property
    def routes(self) -> RouteTable:
        return self.compiled.routes

    @property
    def trusted(self) -> TrustedProxies:
        return self.compiled.trusted

    @property
    def identity_tokens(self) -> IdentityTokens:
        return self.compiled.identity_tokens

    @property
    def reserved_prefix(self) -> str:
        return self.config.prefix.rstrip("/") + "/"

    @property
    def http(self) -> aiohttp.ClientSession:
        if self.upstream_http is None:
            raise RuntimeError("the upstream client is opened by the app's cleanup context")
        return self.upstream_http

    @property
    def pool(self) -> UpstreamPool:
        if self.upstream_pool is None:
            raise RuntimeError("the upstream pool is opened by the app's cleanup context")
        return self.upstream_pool

    def reload(self, config: Config) -> None:
        """Swap in a new config's routes, upstreams and headers; clients and sessions stay."""
        fresh = Services.compile(config)
        for item in dataclasses.fields(self):
            if item.name not in RUNTIME_FIELDS:
                setattr(self, item.name, getattr(fresh, item.name))
