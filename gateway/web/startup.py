"""The start-up summary: what this process serves, in one log line an operator can read."""

from __future__ import annotations

from typing import Any

from gateway import __version__
from gateway.config.model import Config
from gateway.providers import profile_for
from gateway.sessions.shared import shared_namespace


def startup_summary(config: Config, loop: str) -> dict[str, Any]:
    """Version, listeners, routes with their auth mode, providers, store and namespace."""
    scheme = "https" if config.listen.tls is not None else "http"
    listeners = [f"{scheme}://{config.listen.host}:{config.listen.port}"]
    if config.metrics.listen is not None:
        listeners.append(f"internal http://{config.metrics.listen} (metrics, admin)")
    store: str = config.sessions.store
    if store == "redis":
        redis = config.sessions.redis
        store = "redis sentinel" if redis.sentinel else "redis cluster" if redis.cluster else store
    return {
        "version": __version__,
        "loop": loop,
        "listeners": listeners,
        "routes": [
            f"{route.name or '-'} {route.host or '*'}{route.path} -> "
            f"{route.upstream or '(forward-auth only)'} [{route.auth}]"
            for route in config.routes
        ],
        "providers": [
            f"{p.name} {p.issuer} (profile {profile_for(p).name})" for p in config.providers
        ],
        "bearer_issuers": [issuer.issuer for issuer in config.bearer.issuers],
        "store": store,
        "namespace": shared_namespace(config),
        "workers": config.listen.workers,
    }
