"""The aiohttp application: endpoints under the reserved prefix, the proxy catch-all."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from gateway import __version__
from gateway.config.model import Config
from gateway.crypto import KeyRing
from gateway.idp.resolver import idp_connector
from gateway.login.provider import ProviderClient
from gateway.proxy.upstream_pool import UpstreamPool
from gateway.sessions.layout import LOGIN_PREFIX
from gateway.sessions.manager import SessionManager
from gateway.sessions.memory import MemoryStore
from gateway.sessions.redis import RedisStore
from gateway.sessions.shared import SharedState, shared_namespace
from gateway.sessions.store import SessionStore
from gateway.tokens.authenticator import BearerAuthenticator
from gateway.web.body_limit import gateway_body_limit
from gateway.web.connections import handler_args
from gateway.web.cookies import CookiePolicy
from gateway.web.handlers import (
    admin,
    backchannel,
    forward_auth,
    frontchannel,
    health,
    jwks,
    login,
    logout,
    ui,
    userinfo,
)
from gateway.web.handlers import metrics as metrics_handlers
from gateway.web.handlers.proxy import proxy_handler
from gateway.web.internal import internal_listener
from gateway.web.keys import SERVICES
from gateway.web.login_services import LoginServices
from gateway.web.logout_notify import NOTIFIER, LogoutNotifier, drain_notices
from gateway.web.middlewares import context_middleware
from gateway.web.resource_metadata import WELL_KNOWN, protected_resource_metadata
from gateway.web.server_header import drop_server_banner
from gateway.web.services import Services
from gateway.web.tracing_middleware import tracing_lifecycle, tracing_middleware
from gateway.web.websocket_sessions import WEBSOCKET_SESSIONS, SessionSockets, websocket_watchdog

log = logging.getLogger("gateway.app")


def build_app(config: Config) -> web.Application:
    """An application serving ``config``; its clients open and close with the app."""
    services = Services.compile(config)
    # Tracing, when on, wraps everything: the access log line is written inside the span.
    traced = [tracing_middleware] if config.tracing.enabled else []
    app = web.Application(
        middlewares=[
            *traced,
            context_middleware,
            gateway_body_limit(),
        ],
        # Proxied bodies stream (never read whole), under limits.max_body_size; the
        # gateway's own endpoints are capped per request by gateway_body_limit.
        client_max_size=config.limits.max_body_size or 2**63,
        handler_args=handler_args(config),
    )
    app[SERVICES] = services
    app[NOTIFIER] = LogoutNotifier()
    if config.admin.token is not None:
        app[admin.ADMIN_FAILURES] = admin.failure_budget(config.admin.max_failures)
    app.on_response_prepare.append(drop_server_banner)
    app.cleanup_ctx.append(tracing_lifecycle)  # first up, last down: spans of teardown flush
    app.cleanup_ctx.append(_clients)
    app.cleanup_ctx.append(drain_notices)  # torn down first: notices finish, then clients close
    app.cleanup_ctx.append(internal_listener)
    app[WEBSOCKET_SESSIONS] = SessionSockets()
    app.cleanup_ctx.append(websocket_watchdog)  # after _clients: it needs the session manager
    _add_routes(app, config.prefix.rstrip("/"))
    return app


def _add_routes(app: web.Application, prefix: str) -> None:
    router = app.router
    router.add_get(f"{prefix}/healthz", health.healthz, allow_head=True)
    router.add_get(f"{prefix}/readyz", health.readyz, allow_head=True)
    router.add_get(f"{prefix}/login", login.login)
    router.add_get(f"{prefix}/callback", metrics_handlers.count_login_failures(login.callback))
    router.add_post(f"{prefix}/callback", metrics_handlers.count_login_failures(login.callback))
    router.add_get(f"{prefix}/logout", logout.logout_page)
    router.add_post(f"{prefix}/logout", logout.logout)
    router.add_get(f"{prefix}/logged-out", logout.logged_out)
    router.add_get(f"{prefix}/userinfo", userinfo.userinfo)
    router.add_post(f"{prefix}/backchannel-logout", backchannel.backchannel_logout)
    router.add_post(f"{prefix}/backchannel-logout/{{provider}}", backchannel.backchannel_logout)
    router.add_get(f"{prefix}/frontchannel-logout", frontchannel.frontchannel_logout)
    services = app[SERVICES]
    if services.config.admin.public and services.config.admin.token is not None:
        admin.add_admin_routes(app, prefix)
    router.add_get(f"{prefix}/ui/logo", ui.logo, allow_head=True)
    router.add_get(f"{prefix}/ui/providers/{{provider}}/logo", ui.provider_logo, allow_head=True)
    router.add_get(f"{prefix}/jwks", jwks.jwks, allow_head=True)
    router.add_get(f"{prefix}/.well-known/jwks.json", jwks.jwks, allow_head=True)
    router.add_route("*", f"{prefix}/auth", forward_auth.forward_auth)
    metrics_handlers.add_metrics_route(app, prefix)
    router.add_get(WELL_KNOWN, protected_resource_metadata)
    router.add_get(WELL_KNOWN + "/{resource:.*}", protected_resource_metadata)
    router.add_route("*", "/{tail:.*}", proxy_handler)


def _store(config: Config) -> SessionStore:
    if config.sessions.store == "redis":
        return RedisStore.from_config(config.sessions.redis)
    return MemoryStore(
        max_entries=config.sessions.memory_max_entries,
        partitions={LOGIN_PREFIX: config.sessions.max_login_states},
    )


def _keyring(config: Config) -> KeyRing:
    if config.sessions.secrets:
        return KeyRing(config.sessions.secrets)
    if not config.providers:
        return KeyRing.ephemeral()
    log.warning(
        "sessions.secrets is not set: using a random key, so sessions end when the process "
        "restarts and cannot be shared between instances"
    )
    return KeyRing.ephemeral()


def _shared_verdicts(config: Config, shared: SharedState, keyring: KeyRing) -> SharedState | None:
    """Introspection verdicts go to Redis only if other instances can open them."""
    if config.sessions.store != "redis" or not config.bearer.shared_cache:
        return None
    if keyring.is_ephemeral:
        log.warning(
            "bearer.shared_cache is off: without sessions.secrets no other instance "
            "could open the verdicts this one shares"
        )
        return None
    return shared


async def _clients(app: web.Application) -> AsyncIterator[None]:
    """Open the upstream pool, the provider client, the session store; close them at exit."""
    services = app[SERVICES]
    config = services.config
    services.upstream_pool = UpstreamPool()
    services.upstream_http = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0, limit_per_host=256, keepalive_timeout=60),
        auto_decompress=False,
        cookie_jar=aiohttp.DummyCookieJar(),
        skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"),
    )
    idp_http = aiohttp.ClientSession(
        connector=idp_connector(config),
        cookie_jar=aiohttp.DummyCookieJar(),
        headers={"User-Agent": f"oidc-gateway/{__version__}"},
    )
    store = _store(config)
    keyring = _keyring(config)
    shared = SharedState(store, keyring, shared_namespace(config))
    if config.sessions.store == "redis":
        log.info("shared caches use namespace %s", shared.namespace)
    manager = SessionManager(store, keyring, config.sessions, time.time)
    await manager.start()
    services.readiness_checks["session_store"] = manager.ping
    if config.providers:
        services.login = LoginServices(
            config=config,
            providers={p.name: ProviderClient(p, idp_http) for p in config.providers},
            manager=manager,
            keyring=keyring,
            cookies=CookiePolicy.from_config(config.sessions),
            shared=shared,
        )
    if config.bearer.issuers:
        verdicts = _shared_verdicts(config, shared, keyring)
        services.bearer = BearerAuthenticator(
            config.bearer, idp_http, shared_cache=verdicts, dpop_replay=shared
        )
        if config.sessions.store == "redis" and keyring.is_ephemeral and config.bearer.dpop.enabled:
            log.warning(
                "without sessions.secrets no other instance can open this one's DPoP "
                "replay marks: a DPoP proof may be replayed once at each instance"
            )
    yield
    await manager.close()
    await idp_http.close()
    await services.upstream_http.close()
    services.upstream_pool.close()
