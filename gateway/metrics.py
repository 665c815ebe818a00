"""Prometheus metrics: one registry per process, every label drawn from a bounded set.

Labels are route names from the config (never paths), method classes (read/write),
status classes (2xx..5xx), provider names, provider hosts and fixed reason/kind words.
With `listen.workers > 1` the supervisor gives its workers one per-run directory
(PROMETHEUS_MULTIPROC_DIR, see gateway.web.server): each worker writes its numbers there
and a scrape of any worker sums them all (prometheus_client's multiprocess mode).
"""

from __future__ import annotations

import functools
import os
import platform
from collections.abc import Iterable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Metric,
    disable_created_metrics,
    gc_collector,
    generate_latest,
    multiprocess,
    platform_collector,
    process_collector,
    values,
)

from gateway import __version__, tracing
from gateway.errors import GatewayError, ProviderUnavailable, StoreUnavailable
from gateway.metric_batch import LoopBatch

# `*_created` series double the series count and tell an operator nothing new.
disable_created_metrics()  # type: ignore[no-untyped-call]  # unannotated upstream


class _Registry(CollectorRegistry):
    """The process's registry: reading it first hands over the batched per-request counts."""

    def collect(self) -> Iterable[Metric]:
        _PER_REQUEST.flush()
        return super().collect()


REGISTRY = _Registry(auto_describe=True)
# Set by the supervisor of several workers (read by prometheus_client at import time too).
MULTIPROCESS_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class _ProcessId:
    """This process's id, read once and again after a fork only."""

    def __init__(self) -> None:
        self.value = os.getpid()
        os.register_at_fork(after_in_child=self._forked)

    def _forked(self) -> None:
        self.value = os.getpid()

    def __call__(self) -> int:
        return self.value


if MULTIPROCESS_DIR is not None:
    # prometheus_client asks for the pid on every inc() and observe(), to notice a fork:
    # a getpid() system call each, six per proxied request. The fork hook answers the same.
    values.ValueClass = values.MultiProcessValue(_ProcessId())  # type: ignore[no-untyped-call]
if MULTIPROCESS_DIR is None:
    # Process, platform and GC numbers describe one process: with several workers a scrape
    # would show whichever worker answered, so they are only exported by a single process.
    process_collector.ProcessCollector(registry=REGISTRY)
    platform_collector.PlatformCollector(registry=REGISTRY)
    gc_collector.GCCollector(registry=REGISTRY)

# Seconds; the long tail covers uploads/downloads streamed through the proxy.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

REQUESTS = Counter(
    "gateway_requests",
    "Requests answered, by route name, method class (read/write) and status class.",
    ["route", "method", "status"],
    registry=REGISTRY,
)
REQUEST_SECONDS = Histogram(
    "gateway_request_duration_seconds",
    "Whole request, until the last byte of a streamed body was sent.",
    ["route", "method"],
    buckets=BUCKETS,
    registry=REGISTRY,
)
UPSTREAM_SECONDS = Histogram(
    "gateway_upstream_duration_seconds",
    "From sending a request upstream until its response head arrived.",
    ["route"],
    buckets=BUCKETS,
    registry=REGISTRY,
)
UPSTREAM_ERRORS = Counter(
    "gateway_upstream_errors",
    "Upstream failures by kind: connect, timeout, protocol, stream (broke mid-body), websocket.",
    ["route", "kind"],
    registry=REGISTRY,
)
AUTHENTICATIONS = Counter(
    "gateway_authentications",
    "Authentication outcomes. session: ok, expired, refreshed, ended (refresh refused); "
    "bearer: ok, missing, invalid, insufficient_scope, unavailable.",
    ["kind", "outcome"],
    registry=REGISTRY,
)
INTROSPECTION_CACHE = Counter(
    "gateway_introspection_cache",
    "Token introspection lookups: hit (memory, shared store or joined call) or miss.",
    ["result"],
    registry=REGISTRY,
)
SHARED_CACHE_REJECTED = Counter(
    "gateway_shared_cache_rejected",
    "Entries read back from the shared store (Redis) and ignored, by cache "
    "(introspection, logout_jti) and reason: invalid (forged, tampered, sealed by another "
    "deployment or for other inputs) or stale (past the expiry sealed into it).",
    ["cache", "reason"],
    registry=REGISTRY,
)
LOGINS_STARTED = Counter(
    "gateway_logins_started", "Browsers sent to a provider.", ["provider"], registry=REGISTRY
)
LOGINS_COMPLETED = Counter(
    "gateway_logins_completed", "Sessions created by a callback.", ["provider"], registry=REGISTRY
)
LOGINS_FAILED = Counter(
    "gateway_logins_failed",
    "Callbacks that created no session, by reason.",
    ["reason"],
    registry=REGISTRY,
)
LOGOUTS = Counter(
    "gateway_logouts",
    "Sessions ended by a logout, by kind: rp, backchannel, frontchannel, admin.",
    ["kind"],
    registry=REGISTRY,
)
PROVIDER_ERRORS = Counter(
    "gateway_provider_errors",
    "Identity provider unreachable or failing.",
    registry=REGISTRY,
)
STORE_ERRORS = Counter(
    "gateway_store_errors", "Session store unreachable or failing.", registry=REGISTRY
)

PROVIDER_CALL_SECONDS = Histogram(
    "gateway_provider_call_duration_seconds",
    "Calls to identity providers, by provider host and endpoint (discovery, jwks, "
    "token_exchange, refresh, userinfo, introspection, api), until the body was read.",
    ["provider", "endpoint"],
    buckets=BUCKETS,
    registry=REGISTRY,
)
PROVIDER_CALLS = Counter(
    "gateway_provider_calls",
    "Calls to identity providers by provider host, endpoint and result: the status class "
    "(2xx..5xx) of the answer, or timeout, connect, protocol when none came.",
    ["provider", "endpoint", "result"],
    registry=REGISTRY,
)
REDIS_SECONDS = Histogram(
    "gateway_redis_duration_seconds",
    "Redis commands (session store and shared state), by command.",
    ["command"],
    buckets=BUCKETS,
    registry=REGISTRY,
)
REDIS_ERRORS = Counter(
    "gateway_redis_errors",
    "Redis commands that failed (connection, timeout, server error), by command.",
    ["command"],
    registry=REGISTRY,
)
UPSTREAM_RESPONSES = Counter(
    "gateway_upstream_responses",
    "Responses received from upstreams, by route and status class (the upstream's own "
    "answer; failures to get one are gateway_upstream_errors).",
    ["route", "status"],
    registry=REGISTRY,
)
REFRESHES = Counter(
    "gateway_refreshes",
    "Session token refreshes by outcome: refreshed, refused (the session ended), "
    "id_token_rejected (ended), unavailable_kept (provider down, session kept in its grace "
    "time), unavailable_failed (provider down, past the grace: the request failed).",
    ["outcome"],
    registry=REGISTRY,
)
CACHE_LOOKUPS = Counter(
    "gateway_cache_lookups",
    "Lookups in the per-process caches, by cache (session) and result (hit, miss).",
    ["cache", "result"],
    registry=REGISTRY,
)
RATE_LIMITED = Counter(
    "gateway_rate_limited",
    "Requests refused by the per-client rate limit, by gateway endpoint.",
    ["endpoint"],
    registry=REGISTRY,
)
WEBSOCKETS_OPEN = Gauge(
    "gateway_websockets_open",
    "WebSockets relayed right now (summed over live workers).",
    registry=REGISTRY,
    multiprocess_mode="livesum",
)
CONFIG_RELOADS = Counter(
    "gateway_config_reloads",
    "Configuration reloads (SIGHUP) by result: applied or refused.",
    ["result"],
    registry=REGISTRY,
)
BUILD_INFO = Gauge(
    "gateway_build_info",
    "Always 1; the labels say which gateway and Python version run.",
    ["version", "python"],
    registry=REGISTRY,
    multiprocess_mode="max",
)
BUILD_INFO.labels(__version__, platform.python_version()).set(1)
TLS_CERTIFICATE_EXPIRY = Gauge(
    "gateway_tls_certificate_expiry_timestamp_seconds",
    "notAfter of the certificate the gateway serves, as a Unix time, by listener.",
    ["listener"],
    registry=REGISTRY,
    multiprocess_mode="max",
)

PROVIDER_ENDPOINTS = (
    "discovery",
    "jwks",
    "token_exchange",
    "refresh",
    "userinfo",
    "introspection",
    "api",
)
REFRESH_OUTCOMES = (
    "refreshed",
    "refused",
    "id_token_rejected",
    "unavailable_kept",
    "unavailable_failed",
)

SHARED_CACHES = ("introspection", "logout_jti")
SHARED_CACHE_REJECTIONS = ("invalid", "stale")

LOGIN_FAILURE_REASONS = (
    "provider_error",  # the provider answered error=... (e.g. access_denied)
    "refused",  # state unknown/expired/reused, other browser, mix-up, failed code exchange
    "id_token_rejected",
    "provider_unavailable",
    "store_unavailable",
    "bad_request",
    "error",
)


def _declare_series() -> None:
    """Export the fixed outcomes at 0 from the start, so rates and alerts have a baseline."""
    for kind, outcomes in (
        ("session", ("ok", "expired", "refreshed", "ended")),
        ("bearer", ("ok", "missing", "invalid", "insufficient_scope", "unavailable")),
    ):
        for outcome in outcomes:
            AUTHENTICATIONS.labels(kind, outcome)
    for result in ("hit", "miss"):
        INTROSPECTION_CACHE.labels(result)
    for reason in LOGIN_FAILURE_REASONS:
        LOGINS_FAILED.labels(reason)
    for cache in SHARED_CACHES:
        for rejection in SHARED_CACHE_REJECTIONS:
            SHARED_CACHE_REJECTED.labels(cache, rejection)
    for kind in ("rp", "backchannel", "frontchannel", "admin"):
        LOGOUTS.labels(kind)
    for outcome in REFRESH_OUTCOMES:
        REFRESHES.labels(outcome)
    for result in ("hit", "miss"):
        CACHE_LOOKUPS.labels("session", result)
    for result in ("applied", "refused"):
        CONFIG_RELOADS.labels(result)


_declare_series()


def method_class(method: str) -> str:
    """'read' for safe methods, 'write' for everything else (a bounded label)."""
    return "read" if method.upper() in READ_METHODS else "write"


def status_class(status: int) -> str:
    return f"{status // 100}xx" if 100 <= status < 600 else "other"


# Resolving a labelled child takes a lock and a dict lookup per call: on the hot path the
# children are memoised (their labels are bounded, so the memo is too).
@functools.cache
def _requests(route: str, kind: str, status: str) -> Any:
    return REQUESTS.labels(route, kind, status)


@functools.cache
def _request_seconds(route: str, kind: str) -> Any:
    return REQUEST_SECONDS.labels(route, kind)


@functools.cache
def _upstream_seconds(upstream: str) -> Any:
    return UPSTREAM_SECONDS.labels(upstream)


# The numbers every proxied request adds go through one batch per process.
_PER_REQUEST = LoopBatch()
flush = _PER_REQUEST.flush


def observe_request(route: str, method: str, status: int, seconds: float) -> None:
    """Count one answered request and its duration."""
    kind = method_class(method)
    _PER_REQUEST.inc(_requests(route, kind, status_class(status)))
    _PER_REQUEST.observe(_request_seconds(route, kind), seconds)


def observe_upstream(upstream: str, seconds: float) -> None:
    """The time from sending a request to ``upstream`` until its response head arrived."""
    _PER_REQUEST.observe(_upstream_seconds(upstream), seconds)


@functools.cache
def _authentications(kind: str, outcome: str) -> Any:
    return AUTHENTICATIONS.labels(kind, outcome)


@functools.cache
def _introspection_cache(result: str) -> Any:
    return INTROSPECTION_CACHE.labels(result)


def authentication(kind: str, outcome: str) -> None:
    """Count an authentication outcome; with tracing on, the request's span carries it too."""
    _PER_REQUEST.inc(_authentications(kind, outcome))
    tracing.annotate_request("gateway.auth.outcome", f"{kind}:{outcome}")


def introspection_cache(result: str) -> None:
    """Count an introspection-cache 'hit' or 'miss'."""
    _PER_REQUEST.inc(_introspection_cache(result))


def shared_cache_rejected(cache: str, reason: str) -> None:
    """Count an entry of a shared cache that was read back and ignored."""
    SHARED_CACHE_REJECTED.labels(cache, reason).inc()


@functools.cache
def _provider_seconds(provider: str, endpoint: str) -> Any:
    return PROVIDER_CALL_SECONDS.labels(provider, endpoint)


def provider_call(provider: str, endpoint: str, result: str, seconds: float) -> None:
    """Count one call to a provider host's endpoint: its result and how long it took."""
    _declare_provider_endpoint(provider, endpoint)
    PROVIDER_CALLS.labels(provider, endpoint, result).inc()
    _provider_seconds(provider, endpoint).observe(seconds)


@functools.cache
def _redis_children(command: str) -> tuple[Any, Any]:
    # The error series is made with the first use of a command, at 0: an error-rate alert
    # then has a baseline, and a dashboard finds the series before the first failure.
    return REDIS_SECONDS.labels(command), REDIS_ERRORS.labels(command)


def redis_command(command: str, seconds: float, *, failed: bool) -> None:
    """Time one Redis command (a fixed word such as GET or replace) and count its failure."""
    duration, errors = _redis_children(command)
    duration.observe(seconds)
    if failed:
        errors.inc()


STATUS_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")
UPSTREAM_ERROR_KINDS = ("connect", "timeout", "protocol", "stream", "websocket")
PROVIDER_RESULTS = (*STATUS_CLASSES, "timeout", "connect", "protocol")


# rate() sees no increase in a series' first sample: the series an alert divides are
# made at 0 with a route's (or provider endpoint's) first use, so the first failure counts.
@functools.cache
def _declare_route(route: str) -> None:
    for status in STATUS_CLASSES:
        UPSTREAM_RESPONSES.labels(route, status)
    for kind in UPSTREAM_ERROR_KINDS:
        UPSTREAM_ERRORS.labels(route, kind)


@functools.cache
def _declare_provider_endpoint(provider: str, endpoint: str) -> None:
    for result in PROVIDER_RESULTS:
        PROVIDER_CALLS.labels(provider, endpoint, result)


@functools.cache
def _upstream_responses(route: str, status: str) -> Any:
    _declare_route(route)
    return UPSTREAM_RESPONSES.labels(route, status)


def upstream_response(route: str, status: int) -> None:
    """Count the status class of a response an upstream sent."""
    _PER_REQUEST.inc(_upstream_responses(route, status_class(status)))


def refresh(outcome: str) -> None:
    """Count a session refresh outcome (one of REFRESH_OUTCOMES)."""
    REFRESHES.labels(outcome).inc()


@functools.cache
def _cache_lookups(cache: str, result: str) -> Any:
    return CACHE_LOOKUPS.labels(cache, result)


def cache_lookup(cache: str, *, hit: bool) -> None:
    _PER_REQUEST.inc(_cache_lookups(cache, "hit" if hit else "miss"))


def exposition() -> tuple[bytes, str]:
    """The registry in the Prometheus text format (all workers' sum), and its content type."""
    flush()  # this process's counts of the requests answered in this loop turn
    if MULTIPROCESS_DIR is None:
        return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
    merged = CollectorRegistry()
    multiprocess.MultiProcessCollector(merged, path=MULTIPROCESS_DIR)  # type: ignore[no-untyped-call]
    return generate_latest(merged), CONTENT_TYPE_LATEST


def count_error(exc: GatewayError) -> None:
    """Count the provider and store failures that reached a client."""
    if isinstance(exc, ProviderUnavailable):
        PROVIDER_ERRORS.inc()
    elif isinstance(exc, StoreUnavailable):
        STORE_ERRORS.inc()
