"""Serving: one process or N workers on one port, graceful SIGTERM, SIGHUP reload."""

from __future__ import annotations

import asyncio
import errno
import gc
import logging
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
from pathlib import Path

from aiohttp import web
from cryptography import x509
from prometheus_client import multiprocess

from gateway import metrics
from gateway.config import load_config
from gateway.config.model import Config
from gateway.errors import ConfigError, StartupError
from gateway.web.app import build_app
from gateway.web.connections import bounded_site
from gateway.web.dispatch import proxied_paths_first
from gateway.web.keys import SERVICES
from gateway.web.rules import refuse_on_errors
from gateway.web.startup import startup_summary

log = logging.getLogger("gateway.server")
RESTART_KEYS = ("listen", "providers", "bearer", "sessions", "metrics", "admin", "tracing")


def install_fast_loop() -> bool:
    """Use uvloop when it is installed; it roughly halves the event loop's overhead."""
    try:
        import uvloop
    except ImportError:
        return False
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return True


def serve(config: Config, config_path: Path, *, reuse_port: bool = False) -> int:
    """Run one serving process until SIGTERM/SIGINT; return the exit code."""
    install_fast_loop()
    return asyncio.run(_serve(config, config_path, reuse_port))


async def _serve(config: Config, config_path: Path, reuse_port: bool) -> int:
    app = build_app(config)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=config.listen.shutdown_timeout)
    try:
        await _start(runner, config, reuse_port)
    except BaseException:
        # Close what start-up opened (client sessions, the internal listener) so the
        # one-line error is all the operator sees.
        await runner.cleanup()
        raise
    # Everything loaded so far lives as long as the process: keep it out of the
    # collector's generations so full collections (and their latency spikes) stay short.
    gc.freeze()
    loop = asyncio.get_running_loop()
    loop_name = type(loop).__module__.split(".")[0]  # uvloop or asyncio
    log.info("gateway started", extra=startup_summary(config, loop_name))
    log.info(
        "listening",
        extra={"host": config.listen.host, "port": config.listen.port, "loop": loop_name},
    )
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGHUP, lambda: _reload(app, config_path))
    await stop.wait()
    log.info("draining: no new connections, finishing in-flight requests")
    app[SERVICES].draining = True
    # runner.cleanup() stops listening, waits up to shutdown_timeout for handlers, then closes.
    await runner.cleanup()
    metrics.flush()  # the last requests' counts, before the worker's file is left behind
    log.info("stopped")
    return 0


async def _start(runner: web.AppRunner, config: Config, reuse_port: bool) -> None:
    listen = config.listen
    try:
        await runner.setup()  # also binds the internal listener (metrics.listen)
    except OSError as exc:
        raise StartupError([f"cannot start: {_os_reason(exc)}"]) from None
    server = runner.server
    assert server is not None
    server.request_handler = proxied_paths_first(
        runner.app, config.prefix, server.request_handler, direct=not config.tracing.enabled
    )
    # Our own site: aiohttp's TCPSite has no deadline for request heads and no bound on
    # connections (see connections.py); idle keep-alive time is aiohttp's own setting.
    site = bounded_site(
        runner,
        config,
        listen.host,
        listen.port,
        ssl_context=_server_tls(config),
        reuse_port=reuse_port,
    )
    try:
        await site.start()
    except OSError as exc:
        # A host that does not resolve, a port in use or reserved: the operator's input.
        hint = " (another process has it: stop that one or change listen.port)"
        busy = exc.errno == errno.EADDRINUSE
        problem = f"listen: cannot listen on {listen.host}:{listen.port}: {_os_reason(exc)}"
        raise StartupError([problem + (hint if busy else "")]) from None


def _os_reason(exc: OSError) -> str:
    """The operating system's reason, without Python's ``[Errno n]`` decoration."""
    if exc.errno is not None and exc.errno > 0:
        return os.strerror(exc.errno)
    return exc.strerror or str(exc) or type(exc).__name__  # e.g. a name that does not resolve


def _reload(app: web.Application, config_path: Path) -> None:
    try:
        new = load_config(config_path)
        refuse_on_errors(new)
    except ConfigError as exc:
        log.error(
            "reload refused, keeping the running config: %s",
            "; ".join(exc.problems),
            extra={"problems": exc.problems},
        )
        metrics.CONFIG_RELOADS.labels("refused").inc()
        return
    # Providers, token issuers, the session store and the listener are opened once at
    # start: a reload cannot swap them, so it refuses rather than half-apply the file.
    running = app[SERVICES].config
    fixed = [key for key in RESTART_KEYS if getattr(new, key) != getattr(running, key)]
    if fixed:
        log.error(
            "reload refused, keeping the running config: %s change only with a restart",
            ", ".join(fixed),
        )
        metrics.CONFIG_RELOADS.labels("refused").inc()
        return
    try:
        app[SERVICES].reload(new)
    except (ConfigError, OSError, ValueError) as exc:  # e.g. an unreadable upstream CA file
        log.error("reload refused, keeping the running config: %s", exc)
        metrics.CONFIG_RELOADS.labels("refused").inc()
        return
    metrics.CONFIG_RELOADS.labels("applied").inc()
    log.info("configuration reloaded", extra={"routes": len(new.routes)})


def _server_tls(config: Config) -> ssl.SSLContext | None:
    tls = config.listen.tls
    if tls is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    for key, path in (("cert_file", tls.cert_file), ("key_file", tls.key_file)):
        try:
            Path(path).read_bytes()
        except OSError as exc:
            raise StartupError(
                [f"listen.tls.{key}: cannot read {path!r}: {exc.strerror}"]
            ) from None
    try:
        context.load_cert_chain(tls.cert_file, tls.key_file)
    except (ssl.SSLError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or str(exc)
        problem = f"listen.tls: cannot load the certificate and key: {reason}"
        raise StartupError([problem + " (a PEM chain and its unencrypted PEM key)"]) from None
    _export_expiry(tls.cert_file)
    if tls.client_ca_file:
        # Optional: browsers and plain clients connect as before; certificate-bound
        # tokens (RFC 8705) need a certificate this CA vouches for.
        context.verify_mode = ssl.CERT_OPTIONAL
        context.load_verify_locations(tls.client_ca_file)
    return context


def _export_expiry(cert_file: str) -> None:
    """The served (first) certificate's notAfter as a gauge, for the expiry alert."""
    try:
        cert = x509.load_pem_x509_certificate(Path(cert_file).read_bytes())
    except ValueError:  # loaded fine by ssl, so PEM; an oddity here must not stop the start
        log.warning("listen.tls.cert_file: cannot read its notAfter for the expiry gauge")
        return
    expiry = cert.not_valid_after_utc.timestamp()
    metrics.TLS_CERTIFICATE_EXPIRY.labels("main").set(expiry)


def serve_workers(config_path: Path, workers: int, extra_args: list[str]) -> int:
    """Start ``workers`` processes sharing the port (SO_REUSEPORT) and relay signals to them.

    The workers share a fresh metrics directory for this run, so any worker's /metrics
    answers with the sum over all of them; it is removed when the last worker has exited.
    """
    metrics_dir = tempfile.mkdtemp(prefix="gateway-metrics-")
    try:
        return _run_workers(config_path, workers, extra_args, metrics_dir)
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def _run_workers(config_path: Path, workers: int, extra_args: list[str], metrics_dir: str) -> int:
    cmd = [
        sys.executable,
        "-m",
        "gateway",
        "run",
        "-c",
        str(config_path),
        *extra_args,
        "--workers",
        "1",
        "--reuse-port",
    ]
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": metrics_dir}
    children = [subprocess.Popen(cmd, env=env) for _ in range(workers)]  # noqa: S603 - our argv

    def relay(signum: int, _frame: object) -> None:
        for child in children:
            if child.poll() is None:
                os.kill(child.pid, signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, relay)
    codes = []
    for child in children:
        codes.append(child.wait())
        multiprocess.mark_process_dead(child.pid, metrics_dir)  # type: ignore[no-untyped-call]
    return max(codes, default=0)
