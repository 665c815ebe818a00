"""Serving lifecycle of the real process: SIGTERM drain, SIGHUP reload, workers, TLS."""

from __future__ import annotations

import asyncio
import importlib.util
import signal
import ssl
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from aiohttp.test_utils import TestClient

from gateway.config import parse_config
from gateway.web.app import build_app
from gateway.web.keys import SERVICES
from tests.support.gateway import REPO_ROOT, GatewayProcess
from tests.support.processes import ManagedProcess
from tests.support.tls import self_signed

ClientFactory = Callable[..., Awaitable[TestClient[Any, Any]]]


def public(upstream: str, **extra: Any) -> dict[str, Any]:
    return {"routes": [{"path": "/", "upstream": upstream, "auth": "public"}], **extra}


async def wait_for(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def status_of(url: str, **kwargs: Any) -> int:
    connector = aiohttp.TCPConnector(force_close=True)
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.get(url, **kwargs) as response,
    ):
        await response.read()
        return response.status


async def refused(url: str) -> bool:
    """True when a new connection to the server is refused."""
    try:
        await status_of(url)
    except aiohttp.ClientConnectorError:
        return True
    return False


async def test_sigterm_finishes_in_flight_requests_and_refuses_new_ones(
    gateway_factory: Any, upstream: str
) -> None:
    """On SIGTERM a request in flight completes, new connections are refused, exit code 0."""
    gw = gateway_factory(public(upstream))
    slow = asyncio.create_task(status_of(f"{gw.url}/slow?seconds=5"))
    await asyncio.sleep(0.5)  # the request is now waiting on the upstream
    gw.send_signal(signal.SIGTERM)
    # Ordered, not timed: new connections are refused while that request is still in flight.
    while not await refused(f"{gw.url}/_gateway/healthz"):
        assert not slow.done(), "still accepting connections after SIGTERM"
        await asyncio.sleep(0.05)
    assert not slow.done()
    assert await slow == 200
    await wait_for(lambda: not gw.alive)
    assert gw.returncode == 0
    assert "draining" in gw.log_text()


async def test_readyz_fails_while_draining(aiohttp_client: ClientFactory, upstream: str) -> None:
    """readyz answers 503 'draining' once the process drains; healthz still 200."""
    app = build_app(parse_config(yaml.safe_dump(public(upstream))))
    client = await aiohttp_client(app)
    assert (await client.get("/_gateway/readyz")).status == 200
    app[SERVICES].draining = True
    response = await client.get("/_gateway/readyz")
    assert (response.status, (await response.json())["status"]) == (503, "draining")
    assert (await client.get("/_gateway/healthz")).status == 200


async def test_sighup_with_an_invalid_config_keeps_the_old_one(
    gateway_factory: Any, upstream: str
) -> None:
    """SIGHUP with a broken file: the errors are logged and the old routes keep serving;
    a later valid file is taken."""
    gw = gateway_factory(public(upstream))
    gw.config_path.write_text(
        yaml.safe_dump({"routes": [], "listen": gw.config["listen"], "colour": "blue"})
    )
    gw.send_signal(signal.SIGHUP)
    await wait_for(lambda: "reload refused" in gw.log_text())
    log = gw.log_text()
    assert "colour: unknown key" in log
    assert "routes:" in log
    assert await status_of(f"{gw.url}/still-here") == 200
    assert gw.alive

    valid = public(upstream)
    valid["routes"][0]["path"] = "/only/"
    gw.config_path.write_text(
        yaml.safe_dump({**valid, "listen": gw.config["listen"], "metrics": gw.config["metrics"]})
    )
    gw.send_signal(signal.SIGHUP)
    await wait_for(lambda: "configuration reloaded" in gw.log_text())
    assert await status_of(f"{gw.url}/still-here") == 404
    assert await status_of(f"{gw.url}/only/here") == 200


def parent_pid(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


def children_of(pid: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if parent_pid(int(stat.parent.name)) == pid:
                found.add(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue  # the process ended while we looked
    return found


async def test_workers_share_the_port(gateway_factory: Any, upstream: str) -> None:
    """listen.workers 2: two child processes listen on one port, each on uvloop when it is
    installed; SIGTERM stops all (0)."""
    gw = gateway_factory(public(upstream, listen={"workers": 2}))
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    listening = '"message":"listening"'

    def workers_listening() -> int:
        return sum(
            listening in line and f'"loop":"{loop}"' in line for line in gw.log_text().splitlines()
        )

    await wait_for(lambda: workers_listening() == 2)
    assert len(children_of(gw.pid)) == 2
    assert await status_of(f"{gw.url}/through-a-worker") == 200
    assert gw.stop() == 0
    assert workers_listening() == 2


async def test_tls_termination(gateway_factory: Any, upstream: str) -> None:
    """With listen.tls the gateway speaks HTTPS with the given certificate, not plain HTTP."""
    gw: GatewayProcess = gateway_factory(public(upstream), start=False)
    cert_file, key_file = self_signed(gw.workdir)
    gw.config["listen"]["tls"] = {"cert_file": str(cert_file), "key_file": str(key_file)}
    gw.process = ManagedProcess(
        gw.name,
        [sys.executable, "-m", "gateway", "run", "-c", str(gw.write_config())],
        log_path=gw.workdir / "gateway.log",
        env=gw.env,
        cwd=REPO_ROOT,
        ready_port=gw.port,
    )
    gw.process.start()
    https = f"https://127.0.0.1:{gw.port}"
    trusted = ssl.create_default_context(cafile=str(cert_file))
    assert await status_of(f"{https}/_gateway/healthz", ssl=trusted) == 200
    assert await status_of(f"{https}/over-tls", ssl=trusted) == 200
    try:
        plain = await status_of(f"{gw.url}/_gateway/healthz")
    except aiohttp.ClientError:
        plain = 0
    assert plain != 200
    try:
        await status_of(f"{https}/_gateway/healthz", ssl=ssl.create_default_context())
        raise AssertionError("an unknown certificate was accepted")
    except aiohttp.ClientConnectorCertificateError:
        pass
