"""Prometheus metrics: counters move with real logins, API calls and upstream failures."""

from __future__ import annotations

import asyncio
import base64
import json
import signal
import sys
from typing import Any

import aiohttp
import pytest
import yaml
from cryptography import x509
from prometheus_client.parser import text_string_to_metric_families

from gateway import __version__, metrics
from gateway.errors import ConfigError
from gateway.web.handlers.metrics import parse_listen
from tests.support.gateway import REPO_ROOT, GatewayProcess
from tests.support.login import http_login
from tests.support.op import OidcProvider
from tests.support.ports import free_port
from tests.support.processes import ManagedProcess
from tests.support.tls import self_signed
from tests.web.login_setup import start_login_gateway

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Every sample of a scrape by (name, labels)."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value; 0 when the series does not exist (yet)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


async def scrape(url: str) -> Samples:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=")
        return parse(await response.text())


@pytest.mark.parametrize(
    ("method", "expected"),
    [("GET", "read"), ("head", "read"), ("OPTIONS", "read"), ("POST", "write"),
     ("DELETE", "write"), ("PROPFIND", "write")],
)  # fmt: skip
def test_method_class(method: str, expected: str) -> None:
    """Methods collapse into two classes, so a client cannot invent label values."""
    assert expected == metrics.method_class(method)


@pytest.mark.parametrize(
    ("status", "expected"), [(200, "2xx"), (302, "3xx"), (404, "4xx"), (503, "5xx"), (42, "other")]
)
def test_status_class(status: int, expected: str) -> None:
    """Statuses are counted by class."""
    assert expected == metrics.status_class(status)


def bearer_config(op: OidcProvider, resource_server: dict[str, Any]) -> dict[str, Any]:
    return {
        "issuers": [
            {
                "issuer": op.issuer,
                "audiences": ["urn:test:api"],
                "allow_insecure_http": True,
                "allow_private_network": True,
                "introspection": {
                    "client_id": resource_server["client_id"],
                    "client_secret": resource_server["client_secret"],
                },
            }
        ]
    }


def with_extra_config(factory: Any, **extra: Any) -> Any:
    """A gateway_factory that adds top-level config keys before the gateway starts."""

    def make(config: dict[str, Any], **kwargs: Any) -> GatewayProcess:
        gw: GatewayProcess = factory(config, **kwargs)
        gw.config.update(extra)
        return gw

    return make


async def get(session: aiohttp.ClientSession, url: str, token: str | None = None) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with session.get(url, headers=headers, allow_redirects=False) as response:
        await response.read()
        return response.status


async def test_counters_follow_a_login_api_calls_and_a_logout(
    gateway_factory: Any, oidc_provider: OidcProvider, upstream: str
) -> None:
    """After a scripted login, session and bearer API calls and a logout, each counter
    moved by exactly what happened; labels are route names, not paths."""
    rs = oidc_provider.register_client()
    routes: list[dict[str, Any]] = [
        {"name": "app", "path": "/app/", "upstream": upstream, "auth": "login"},
        {"name": "api", "path": "/api/", "upstream": upstream, "auth": "bearer"},
        {"name": "writer", "path": "/write/", "upstream": upstream, "auth": "bearer",
         "policy": {"scopes_all": ["api:write"]}},
    ]  # fmt: skip
    factory = with_extra_config(
        gateway_factory, bearer=bearer_config(oidc_provider, rs), metrics={"public": True}
    )
    gw, _ = start_login_gateway(factory, oidc_provider, upstream, routes=routes)
    jwt_token = oidc_provider.client_credentials_token(rs)
    opaque = oidc_provider.client_credentials_token(rs, resource="urn:test:api-opaque")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        assert (await http_login(browser, f"{gw.url}/app/start")).status == 200
        assert await get(browser, f"{gw.url}/app/again?q=secret-ish") == 200
        assert await get(browser, f"{gw.url}/_gateway/callback?code=x&state=forged") == 400
        page = await (await browser.get(f"{gw.url}/_gateway/logout")).text()
        csrf = page.split('name="csrf" value="')[1].split('"')[0]
        async with browser.post(
            f"{gw.url}/_gateway/logout", data={"csrf": csrf}, allow_redirects=False
        ) as out:
            assert out.status == 302
    async with aiohttp.ClientSession() as api:
        assert await get(api, f"{gw.url}/api/one", jwt_token) == 200
        assert await get(api, f"{gw.url}/api/two", opaque) == 200
        assert await get(api, f"{gw.url}/api/three", opaque) == 200
        assert await get(api, f"{gw.url}/write/x", jwt_token) == 403
        assert await get(api, f"{gw.url}/api/x", "eyJhbGciOiJub25lIn0.e30.x") == 401
        assert await get(api, f"{gw.url}/api/x") == 401
    s = await scrape(f"{gw.url}/_gateway/metrics")

    assert value(s, "gateway_logins_started_total", provider="op") == 1
    assert value(s, "gateway_logins_completed_total", provider="op") == 1
    assert value(s, "gateway_logins_failed_total", reason="refused") == 1
    assert value(s, "gateway_logins_failed_total", reason="provider_error") == 0
    assert value(s, "gateway_logouts_total", kind="rp") == 1
    # the landing request after the callback, the second page and the logout page
    assert value(s, "gateway_authentications_total", kind="session", outcome="ok") >= 2
    assert value(s, "gateway_authentications_total", kind="bearer", outcome="ok") == 4
    assert value(s, "gateway_authentications_total", kind="bearer", outcome="invalid") == 1
    assert value(s, "gateway_authentications_total", kind="bearer", outcome="missing") == 1
    assert (
        value(s, "gateway_authentications_total", kind="bearer", outcome="insufficient_scope") == 1
    )
    assert value(s, "gateway_introspection_cache_total", result="miss") == 1
    assert value(s, "gateway_introspection_cache_total", result="hit") == 1
    assert value(s, "gateway_requests_total", route="api", method="read", status="2xx") == 3
    assert value(s, "gateway_requests_total", route="api", method="read", status="4xx") == 2
    assert value(s, "gateway_requests_total", route="writer", method="read", status="4xx") == 1
    assert (
        value(s, "gateway_requests_total", route="gateway:logout", method="write", status="3xx")
        == 1
    )
    assert (
        value(s, "gateway_requests_total", route="gateway:callback", method="read", status="4xx")
        == 1
    )
    assert value(s, "gateway_upstream_duration_seconds_count", route="api") == 3
    assert value(s, "gateway_request_duration_seconds_count", route="api", method="read") == 5
    labels = {str(dict(key[1]).get("route")) for key in s if dict(key[1]).get("route")}
    assert not any("/" in label for label in labels)  # never a path


async def test_upstream_errors_by_kind(gateway_factory: Any, upstream: str) -> None:
    """A refused upstream counts as 'connect', a slow one as 'timeout', per route name."""
    dead = f"http://127.0.0.1:{free_port()}"
    gw = gateway_factory(
        {
            "routes": [
                {"name": "dead", "path": "/dead/", "upstream": dead, "auth": "public"},
                {
                    "name": "slow",
                    "path": "/slow",
                    "upstream": upstream,
                    "auth": "public",
                    "timeouts": {"read": 0.2},
                },
            ],
            "metrics": {"public": True},
        }
    )
    async with aiohttp.ClientSession() as session:
        assert await get(session, f"{gw.url}/dead/x") == 502
        assert await get(session, f"{gw.url}/slow?seconds=2") == 504
    s = await scrape(f"{gw.url}/_gateway/metrics")
    assert value(s, "gateway_upstream_errors_total", route="dead", kind="connect") == 1
    assert value(s, "gateway_upstream_errors_total", route="slow", kind="timeout") == 1
    assert value(s, "gateway_requests_total", route="dead", method="read", status="5xx") == 1


async def test_metrics_on_a_separate_listener(gateway_factory: Any, upstream: str) -> None:
    """With metrics.listen set, metrics are served there and not on the public port."""
    port = free_port()
    gw = gateway_factory(
        {
            "routes": [{"path": "/", "upstream": upstream, "auth": "public"}],
            "metrics": {"listen": f"127.0.0.1:{port}"},
        }
    )
    async with aiohttp.ClientSession() as session:
        assert await get(session, f"{gw.url}/_gateway/metrics") == 404
        assert await get(session, f"{gw.url}/hello") == 200
    s = await scrape(f"http://127.0.0.1:{port}/metrics")
    assert value(s, "gateway_requests_total", route="route0", method="read", status="2xx") == 1
    # the reserved prefix is never proxied: the public port answers 404 from no route
    assert value(s, "gateway_requests_total", route="unmatched", method="read", status="4xx") == 1


async def test_metrics_can_be_turned_off(gateway_factory: Any, upstream: str) -> None:
    """metrics.enabled false: no metrics endpoint at all."""
    gw = gateway_factory(
        {
            "routes": [{"path": "/", "upstream": upstream, "auth": "public"}],
            "metrics": {"enabled": False},
        }
    )
    async with aiohttp.ClientSession() as session:
        assert await get(session, f"{gw.url}/_gateway/metrics") == 404
        async with session.get(f"{gw.url}/_gateway/healthz") as response:
            assert json.loads(await response.text())["status"] == "ok"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("127.0.0.1:9090", ("127.0.0.1", 9090)), ("[::1]:9090", ("::1", 9090)),
     ("0.0.0.0:1", ("0.0.0.0", 1))],
)  # fmt: skip
def test_metrics_listen_parses(value: str, expected: tuple[str, int]) -> None:
    """metrics.listen takes host:port, IPv6 in brackets."""
    assert parse_listen(value) == expected


@pytest.mark.parametrize("value", ["9090", ":9090", "host:", "host:99999", "host:port"])
def test_metrics_listen_refuses_garbage(value: str) -> None:
    """A malformed metrics.listen is a config error naming the key, not a traceback."""
    with pytest.raises(ConfigError, match=r"metrics\.listen"):
        parse_listen(value)


async def wait_until(check: Any, patience: float = 10.0) -> None:
    for _ in range(int(patience / 0.05)):
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition never held")


async def test_reloads_websockets_and_provider_failures_are_counted(
    gateway_factory: Any, upstream: str
) -> None:
    """Config reloads count as applied or refused; an open WebSocket shows in the gauge
    until it closes; a provider that cannot be reached counts as a failed call of its
    host and endpoint, and the failing route's upstream series exist at 0 beforehand."""
    dead_issuer = f"http://127.0.0.1:{free_port()}"
    config = {
        "routes": [
            {"name": "open", "path": "/", "upstream": upstream, "auth": "public"},
            {"name": "api", "path": "/api/", "upstream": upstream, "auth": "bearer"},
        ],
        "bearer": {
            "issuers": [
                {"issuer": dead_issuer, "audiences": ["x"], "allow_insecure_http": True,
                 "allow_private_network": True}
            ]
        },
        "metrics": {"public": True},
    }  # fmt: skip
    gw = gateway_factory(config)
    url = f"{gw.url}/_gateway/metrics"
    async with aiohttp.ClientSession() as session:
        assert await get(session, f"{gw.url}/hello") == 200
        s = await scrape(url)
        assert value(s, "gateway_upstream_responses_total", route="open", status="2xx") == 1
        # made at 0 with the route's first use, so rate() sees the first failure
        assert (
            "gateway_upstream_responses_total",
            frozenset({("route", "open"), ("status", "5xx")}),
        ) in s
        assert (
            "gateway_upstream_errors_total",
            frozenset({("route", "open"), ("kind", "connect")}),
        ) in s
        assert value(s, "gateway_websockets_open") == 0
        async with session.ws_connect(f"{gw.url}/ws") as sock:
            await sock.send_str("ping")
            assert (await sock.receive_str()) == "ping"
            assert value(await scrape(url), "gateway_websockets_open") == 1
        await wait_until(lambda: _websockets_open_is(url, 0))

        claims = json.dumps({"iss": dead_issuer, "aud": "x", "exp": 2**40})
        token = ".".join(
            base64.urlsafe_b64encode(part.encode()).decode().rstrip("=")
            for part in ('{"alg":"RS256","kid":"k"}', claims, "sig")
        )
        assert await get(session, f"{gw.url}/api/x", token) == 503
        s = await scrape(url)
        assert value(
            s, "gateway_provider_calls_total",
            provider="127.0.0.1", endpoint="discovery", result="connect",
        ) >= 1  # fmt: skip
        assert value(
            s, "gateway_provider_call_duration_seconds_count",
            provider="127.0.0.1", endpoint="discovery",
        ) >= 1  # fmt: skip

    gw.send_signal(signal.SIGHUP)  # the same file: applied
    await wait_until(lambda: _logged(gw, "configuration reloaded"))
    gw.config_path.write_text(yaml.safe_dump({**gw.config, "colour": "blue"}))
    gw.send_signal(signal.SIGHUP)
    await wait_until(lambda: _logged(gw, "reload refused"))
    s = await scrape(url)
    assert value(s, "gateway_config_reloads_total", result="applied") == 1
    assert value(s, "gateway_config_reloads_total", result="refused") == 1
    build = [labels for (name, labels) in s if name == "gateway_build_info"]
    assert [("version", __version__)] == [kv for kv in build[0] if kv[0] == "version"]


async def _websockets_open_is(url: str, expected: float) -> bool:
    return value(await scrape(url), "gateway_websockets_open") == expected


async def _logged(gw: GatewayProcess, text: str) -> bool:
    return text in gw.log_text()


async def test_tls_certificate_expiry_is_exported(gateway_factory: Any, upstream: str) -> None:
    """A gateway terminating TLS exports its certificate's notAfter (the expiry alert's
    input) on the metrics listener; one without listen.tls exports no such series."""
    port = free_port()
    gw: GatewayProcess = gateway_factory(
        {
            "routes": [{"path": "/", "upstream": upstream, "auth": "public"}],
            "metrics": {"listen": f"127.0.0.1:{port}"},
        },
        start=False,
    )
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
    not_after = x509.load_pem_x509_certificate(cert_file.read_bytes()).not_valid_after_utc
    s = await scrape(f"http://127.0.0.1:{port}/metrics")
    name = "gateway_tls_certificate_expiry_timestamp_seconds"
    assert value(s, name, listener="main") == not_after.timestamp()

    plain_port = free_port()
    plain = gateway_factory(
        {
            "routes": [{"path": "/", "upstream": upstream, "auth": "public"}],
            "metrics": {"listen": f"127.0.0.1:{plain_port}"},
        },
        name="plain",
    )
    assert plain.port != gw.port
    s = await scrape(f"http://127.0.0.1:{plain_port}/metrics")
    assert not [key for key in s if key[0] == name]
